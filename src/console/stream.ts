// GET /api/stream: the live feed as server-sent events. It subscribes before it catches up
// (events after `after`, the newest id the page already has), so nothing stored in between is
// missed, and sends each event once by id. A client that reads too slowly is cut off rather
// than buffered without bound; it reconnects with its newest id.

import type * as http from 'node:http';
import { eventFilter, FILTER_PARAMS, filterSql, int, params } from './filters';
import { filterMatches } from './filters';
import type { EventStore, StoredEvent } from './store';

const MAX_BUFFERED = 4 << 20;
const CATCH_UP = 500;

export function openStream(
  store: EventStore,
  sp: URLSearchParams,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  headers: Record<string, string>,
  streams: Set<http.ServerResponse>,
): void {
  const p = params(sp, [...FILTER_PARAMS, 'after']);
  const f = eventFilter(p);
  const after = int(p, 'after', 0, Number.MAX_SAFE_INTEGER, 0)!;
  res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
  res.write(': ctrwatch live feed\n\n');
  let last = after;
  const write = (id: number, json: string) => {
    if (id <= last) return;
    last = id;
    res.write(`id: ${id}\nevent: event\ndata: ${json.slice(0, -1)},"id":${id}}\n\n`);
    if (res.writableLength > MAX_BUFFERED) res.destroy();
  };
  const pending: StoredEvent[] = [];
  let caughtUp = false;
  const unsubscribe = store.subscribe((rows) => {
    for (const r of rows) {
      if (!filterMatches(f, r)) continue;
      if (caughtUp) write(r.id, r.json);
      else pending.push(r);
    }
  });
  const { where, args } = filterSql(f);
  where.push('e.id > ?');
  const old = store.db
    .prepare(`SELECT e.id, e.json FROM events e WHERE ${where.join(' AND ')} ORDER BY e.id LIMIT ${CATCH_UP}`)
    .all(...args, after) as { id: number; json: string }[];
  for (const r of old) write(r.id, r.json);
  for (const r of pending) write(r.id, r.json);
  caughtUp = true;
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
  streams.add(res);
  const done = () => {
    clearInterval(keepAlive);
    unsubscribe();
    streams.delete(res);
  };
  req.on('close', done);
  res.on('close', done);
}
