// The console page: a hash router (#/view?params: every view has its own URL), the API client
// (bearer token from this tab's sessionStorage) and the live feed's reader. Views: views.js.
// Text from events reaches the DOM only through lit-html and Grid.js (preact) templates, which
// set it as text: no innerHTML anywhere.

import { VIEWS } from '/views.js';

const TOKEN_KEY = 'ctrwatch-console-token';

export class Unauthorized extends Error {}

function headers() {
  const t = sessionStorage.getItem(TOKEN_KEY);
  return t ? { authorization: `Bearer ${t}` } : {};
}

function askToken() {
  const form = document.getElementById('token');
  form.hidden = false;
  form.onsubmit = (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, form.token.value.trim());
    form.hidden = true;
    route();
  };
}

/** GET /api/<path>: the JSON, or an Error with the server's message. */
export async function api(path, params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== ''));
  const res = await fetch(`/api/${path}${q.size ? `?${q}` : ''}`, { headers: headers() });
  if (res.status === 401) {
    askToken();
    throw new Unauthorized('a bearer token is needed');
  }
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body;
}

/**
 * The live feed: server-sent events read through fetch (EventSource cannot send a token).
 * Reconnects from the newest id seen. Returns a function that stops it.
 */
export function stream(params, onEvent, onState) {
  let stopped = false;
  let after = params.after ?? 0;
  const ctl = { abort: () => {} };
  const run = async () => {
    while (!stopped) {
      const ac = new AbortController();
      ctl.abort = () => ac.abort();
      try {
        const q = new URLSearchParams(Object.entries({ ...params, after }).filter(([, v]) => v !== undefined && v !== ''));
        const res = await fetch(`/api/stream?${q}`, { headers: headers(), signal: ac.signal });
        if (res.status === 401) return askToken();
        if (!res.ok) throw new Error((await res.json()).error);
        onState('live');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (!data) continue;
            const ev = JSON.parse(data.slice(6));
            after = Math.max(after, ev.id);
            onEvent(ev);
          }
        }
      } catch (err) {
        if (stopped) return;
        onState(`reconnecting (${err.message})`);
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 1000));
    }
  };
  void run();
  return () => {
    stopped = true;
    ctl.abort();
  };
}

let cleanup = () => {};

export function setStatus(text) {
  document.getElementById('status').textContent = text;
}

/** The current URL's view and parameters: #/container/NODE/ID?x=y → ['container', ['NODE', 'ID'], {x: 'y'}]. */
function current() {
  const h = location.hash.replace(/^#\/?/, '') || 'feed';
  const [p, q = ''] = h.split('?');
  const [name, ...rest] = p.split('/').map(decodeURIComponent);
  return [name, rest, Object.fromEntries(new URLSearchParams(q))];
}

export function go(name, parts = [], params = {}) {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== ''));
  location.hash = `#/${[name, ...parts].map(encodeURIComponent).join('/')}${q.size ? `?${q}` : ''}`;
}

async function route() {
  cleanup();
  cleanup = () => {};
  const [name, parts, params] = current();
  const view = VIEWS[name] ?? VIEWS.feed;
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === name);
  // A fresh element each time: lit-html and Grid.js keep state on the element they render into.
  const root = document.createElement('div');
  root.id = `view-${name}`;
  document.getElementById('view').replaceChildren(root);
  setStatus('');
  try {
    cleanup = (await view(root, parts, params)) ?? (() => {});
  } catch (err) {
    if (!(err instanceof Unauthorized)) setStatus(`error: ${err.message}`);
  }
}

window.addEventListener('hashchange', route);
route();
