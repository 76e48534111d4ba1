// The console's views. Each is (root element, path parts, query params) → a cleanup function.
// Tables are Grid.js; everything else is lit-html templates. Both set event text as text.

import { html, render, nothing } from '/vendor/lit-html.js';
import { api, go, setStatus, stream } from '/app.js';

const gridjs = window.gridjs;
const h = (...a) => gridjs.h(...a);

const SEVERITIES = ['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
const RUNTIMES = ['RUNC', 'CRUN', 'CONTAINERD', 'DOCKER', 'PODMAN', 'CRIO', 'UNKNOWN'];
const KINDS = [
  'containerCreated',
  'containerStarted',
  'containerExec',
  'containerExited',
  'detection',
  'sensorReady',
  'sensorStats',
  'sensorSilent',
];
const TECHNIQUES = ['T1610', 'T1611', 'T1613', 'T1053.007', 'T1543.005', 'T1204.003'];
const FILTERS = ['node', 'container', 'image', 'runtime', 'rule', 'technique', 'severity', 'kind', 'q', 'since', 'until'];

const when = (ms) =>
  ms
    ? new Date(ms)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z')
    : '';
const nsMs = (ns) => (ns ? Number(BigInt(ns) / 1000000n) : 0);
const ago = (ms, now = Date.now()) => (ms ? `${Math.max(0, Math.round((now - ms) / 1000))} s ago` : 'never');
const href = (name, parts = [], params = {}) => {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== '' && v !== null));
  return `#/${[name, ...parts].map(encodeURIComponent).join('/')}${q.size ? `?${q}` : ''}`;
};
const kindOf = (ev) => KINDS.find((k) => ev[k]) ?? 'other';
const containerOf = (ev) => ev[kindOf(ev)]?.container;

/** One line about an event, for the feed. */
function summary(ev) {
  const k = kindOf(ev);
  const b = ev[k] ?? {};
  if (k === 'detection') return `${b.ruleId}: ${b.message ?? ''}`;
  if (k === 'containerExec') return `exec ${(b.process?.argv ?? [b.process?.exe]).join(' ')}`;
  if (k === 'containerStarted') return `started ${(b.process?.argv ?? [b.process?.exe]).join(' ')}`;
  if (k === 'containerExited') return `exited, code ${b.exitCode ?? 0}${b.signal ? ` (signal ${b.signal})` : ''}`;
  if (k === 'containerCreated') return `created${b.container?.existing ? ' (already running)' : ''}`;
  if (k === 'sensorReady') return `sensor ${b.version} ready on ${b.kernelRelease}`;
  if (k === 'sensorStats') return `stats: ${b.eventsEmitted ?? 0} events, ${b.ringBufferDrops ?? 0} kernel drops`;
  if (k === 'sensorSilent') return `sensor silent for ${Math.round(Number(b.silentForMs ?? 0) / 1000)} s`;
  return k;
}

function feedRow(ev) {
  const c = containerOf(ev);
  const sev = ev.detection?.severity;
  return [
    ev.id,
    when(nsMs(ev.timeUnixNano)),
    ev.node,
    kindOf(ev),
    sev ?? '',
    summary(ev),
    c ? [ev.node, c.id, c.name] : null,
    c?.image ?? '',
  ];
}

const FEED_COLUMNS = [
  {
    name: '#',
    formatter: (id, row) => (row.cells[3].data === 'detection' ? h('a', { href: href('event', [String(id)]) }, String(id)) : String(id)),
  },
  'Time',
  'Node',
  'Kind',
  { name: 'Severity', formatter: (s) => (s ? h('span', { className: `sev-${s}` }, s) : '') },
  {
    name: 'What',
    formatter: (s, row) => (row.cells[3].data === 'detection' ? h('a', { href: href('event', [String(row.cells[0].data)]) }, s) : s),
  },
  { name: 'Container', formatter: (c) => (c ? h('a', { href: href('container', [c[0], c[1]]) }, c[2] || c[1].slice(0, 12)) : '') },
  'Image',
];

function filterForm(params, nodes, onSubmit) {
  const sel = (name, options) =>
    html`<label
      >${name}<select name=${name}>
        <option value="">any</option>
        ${options.map((o) => html`<option ?selected=${params[name] === o}>${o}</option>`)}
      </select></label
    >`;
  const text = (name, ph = '') => html`<label>${name}<input name=${name} .value=${params[name] ?? ''} placeholder=${ph} /></label>`;
  return html`<form class="filters" @submit=${onSubmit}>
    ${sel('node', nodes)} ${text('container', 'id')} ${text('image')} ${sel('runtime', RUNTIMES)} ${text('rule', 'escape.…')}
    ${sel('technique', TECHNIQUES)} ${sel('severity', SEVERITIES)} ${sel('kind', KINDS)} ${text('q', 'search text')}
    <button>Filter</button> <a href="#/feed">clear</a>
  </form>`;
}

const formParams = (form, names) => Object.fromEntries(names.map((n) => [n, form.elements[n]?.value.trim()]).filter(([, v]) => v));

async function feed(root, _parts, params) {
  const filter = Object.fromEntries(FILTERS.filter((k) => params[k]).map((k) => [k, params[k]]));
  const [{ nodes }, first] = await Promise.all([api('meta'), api('events', { ...filter, limit: 200 })]);
  const top = document.createElement('div');
  const table = document.createElement('div');
  table.id = 'feed';
  root.append(top, table);
  render(
    filterForm(params, nodes, (e) => {
      e.preventDefault();
      go(
        'feed',
        [],
        formParams(
          e.target,
          FILTERS.filter((k) => k !== 'since' && k !== 'until'),
        ),
      );
    }),
    top,
  );
  // Without a kind chosen, the sensors' periodic stats stay out of the feed (the fleet view has them).
  const shown = (ev) => filter.kind || !ev.sensorStats;
  let rows = first.events.filter(shown).map(feedRow);
  const grid = new gridjs.Grid({ columns: FEED_COLUMNS, data: rows, pagination: { limit: 100 }, sort: false });
  grid.render(table);
  let queued = false;
  const stop = stream(
    { ...filter, after: first.events[0]?.id ?? 0 },
    (ev) => {
      if (!shown(ev)) return;
      rows = [feedRow(ev), ...rows].slice(0, 1000);
      if (queued) return;
      queued = true;
      setTimeout(() => {
        queued = false;
        grid.updateConfig({ data: rows }).forceRender();
      }, 250);
    },
    (s) => setStatus(`feed: ${s}`),
  );
  return stop;
}

async function containers(root, _parts, params) {
  const [{ nodes }, { containers }] = await Promise.all([
    api('meta'),
    api('containers', { node: params.node, q: params.q, image: params.image, runtime: params.runtime, limit: 1000 }),
  ]);
  const top = document.createElement('div');
  const table = document.createElement('div');
  table.id = 'containers';
  root.append(top, table);
  render(
    html`<form
      class="filters"
      @submit=${(e) => {
        e.preventDefault();
        go('containers', [], formParams(e.target, ['node', 'q']));
      }}
    >
      <label
        >node<select name="node">
          <option value="">any</option>
          ${nodes.map((n) => html`<option ?selected=${params.node === n}>${n}</option>`)}
        </select></label
      >
      <label>search<input name="q" .value=${params.q ?? ''} placeholder="id, name, label" /></label>
      <button>Filter</button>
    </form>`,
    top,
  );
  new gridjs.Grid({
    columns: [
      'Node',
      { name: 'Container', formatter: (c) => h('a', { href: href('container', [c[0], c[1]]) }, c[1].slice(0, 24)) },
      'Name',
      'Image',
      'Runtime',
      { name: 'Privileged', formatter: (p) => (p ? h('span', { className: 'sev-HIGH' }, 'yes') : 'no') },
      'Created',
      'Started',
      'Exited',
      'Exit code',
      'Execs',
      { name: 'Detections', formatter: (n, row) => (n ? h('a', { href: href('container', row.cells[1].data) }, String(n)) : '0') },
    ],
    data: containers.map((c) => [
      c.node,
      [c.node, c.id],
      c.name ?? '',
      c.image ?? '',
      c.runtime ?? '',
      c.privileged,
      when(c.created_t),
      when(c.started_t),
      when(c.exited_t),
      c.exit_code ?? '',
      c.execs,
      c.detections,
    ]),
    pagination: { limit: 50 },
    sort: true,
    search: false,
  }).render(table);
}

function kv(pairs) {
  return html`<dl class="kv">
    ${pairs
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(
        ([k, v]) =>
          html`<dt>${k}</dt>
            <dd>${v}</dd>`,
      )}
  </dl>`;
}

function containerMeta(node, c) {
  return html`${kv([
    ['node', node],
    ['id', html`<code>${c.id}</code>`],
    ['name', c.name],
    ['image', c.image],
    ['image digest', c.imageDigest],
    ['runtime', c.runtime],
    ['privileged', c.privileged ? html`<span class="sev-HIGH">yes</span>` : 'no'],
    ['user', c.user],
    ['init pid', c.initPid],
    ['cgroup', c.cgroupPath],
    ['capabilities', (c.capabilities ?? []).join(' ')],
    ['host namespaces', (c.hostNamespaces ?? []).join(' ')],
    ['pod', c.podName ? `${c.podNamespace ?? ''}/${c.podName}` : ''],
    ['restart policy', c.restartPolicy],
  ])}
  ${
    c.mounts?.length
      ? html`<h4>Mounts</h4>
          <table class="plain">
            <tr>
              <th>source</th>
              <th>destination</th>
              <th>type</th>
              <th>ro</th>
            </tr>
            ${c.mounts.map(
              (m) =>
                html`<tr>
                  <td class="mono">${m.source}</td>
                  <td class="mono">${m.destination}</td>
                  <td>${m.type}</td>
                  <td>${m.readOnly ? 'ro' : 'rw'}</td>
                </tr>`,
            )}
          </table>`
      : nothing
  }
  ${
    c.labels && Object.keys(c.labels).length
      ? html`<h4>Labels</h4>
          <table class="plain labels">
            ${Object.entries(c.labels).map(
              ([k, v]) =>
                html`<tr>
                  <td class="mono">${k}</td>
                  <td class="mono">${v}</td>
                </tr>`,
            )}
          </table>`
      : nothing
  }`;
}

function timelineEntry(ev) {
  const k = kindOf(ev);
  const b = ev[k];
  const label = { containerCreated: 'created', containerStarted: 'started', containerExec: 'exec', containerExited: 'exited' }[k];
  const argv = (b.process?.argv ?? [b.process?.exe ?? '']).join(' ');
  const detail = k === 'containerExited' ? `exit code ${b.exitCode ?? 0}${b.signal ? `, signal ${b.signal}` : ''}` : argv;
  return html`<li class="tl-${label}">
    <span class="when">${when(nsMs(ev.timeUnixNano))}</span><strong>${label}</strong>
    <span class="mono">${detail}</span> ${b.process?.pid ? html`<span class="muted">pid ${b.process.pid}</span>` : nothing}
  </li>`;
}

async function container(root, [node, id]) {
  const d = await api(`containers/${encodeURIComponent(node)}/${encodeURIComponent(id)}`);
  render(
    html`<h2>Container <code>${d.container.name || id}</code> on ${node}</h2>
      <div class="cols">
        <section>
          <h3>Timeline</h3>
          <ol class="timeline">
            ${d.timeline.map(timelineEntry)}
          </ol>
        </section>
        <section>
          <h3>Metadata</h3>
          ${containerMeta(node, d.container.container)}
        </section>
        <section>
          <h3>Detections (${d.detections.length})</h3>
          <ul class="detections">
            ${d.detections.map(
              (e) =>
                html`<li>
                  <span class="sev-${e.detection.severity}">${e.detection.severity}</span>
                  <a href=${href('event', [String(e.id)])}>${e.detection.ruleId}</a> ${(e.detection.techniques ?? []).join(' ')} —
                  ${e.detection.message}
                </li>`,
            )}
          </ul>
        </section>
      </div>`,
    root,
  );
}

const WINDOWS = ['15m', '1h', '6h', '24h', '7d', '30d', 'all'];

async function attack(root, _parts, params) {
  const window = params.window ?? '24h';
  const draw = async () => {
    const m = await api('attack', { window, node: params.node });
    const total = (t) => Object.values(m.counts).reduce((s, c) => s + (c[t] ?? 0), 0);
    const cell = (node, t, n) =>
      n
        ? html`<td>
            <a href=${href('feed', [], { kind: 'detection', technique: t, node: node ?? undefined, since: m.since ?? undefined })}>${n}</a>
          </td>`
        : html`<td class="zero">0</td>`;
    render(
      html`<h2>MITRE ATT&CK, data source DS0032 (Container)</h2>
        <p>
          Window:
          ${WINDOWS.map((w) => (w === window ? html`<strong>${w}</strong> ` : html`<a href=${href('attack', [], { window: w, node: params.node })}>${w}</a> `))}
        </p>
        <table class="plain matrix" id="matrix">
          <tr>
            <th>node</th>
            ${m.techniques.map((t) => html`<th title=${t.name}>${t.id}<br /><span class="muted">${t.name}</span></th>`)}
          </tr>
          ${m.nodes.map(
            (n) =>
              html`<tr data-node=${n}>
                <th>${n}</th>
                ${m.techniques.map((t) => cell(n, t.id, m.counts[n][t.id] ?? 0))}
              </tr>`,
          )}
          <tr class="total">
            <th>all nodes</th>
            ${m.techniques.map((t) => cell(null, t.id, total(t.id)))}
          </tr>
        </table>`,
      root,
    );
  };
  await draw();
  const t = setInterval(() => draw().catch((e) => setStatus(`error: ${e.message}`)), 10_000);
  return () => clearInterval(t);
}

function proc(p, acting) {
  return html`<div class="proc ${acting ? 'acting' : ''}">
    <strong>pid ${p.pid}</strong> <code>${p.exe ?? p.comm ?? ''}</code>
    <div class="mono argv">${(p.argv ?? []).join(' ')}</div>
    <div class="muted">uid ${p.uid ?? 0} euid ${p.euid ?? 0} gid ${p.gid ?? 0}</div>
    ${
      p.capEffective?.length
        ? html`<details class="caps">
            <summary>${p.capEffective.length} capabilities</summary>
            <span class="mono">${p.capEffective.join(' ')}</span>
          </details>`
        : nothing
    }
  </div>`;
}

/** The chain (acting process first, then its ancestors) as a tree from the oldest ancestor down. */
function chainTree(chain) {
  const down = [...chain].reverse();
  const level = (i) =>
    i >= down.length
      ? nothing
      : html`<ul>
          <li>${proc(down[i], i === down.length - 1)}${level(i + 1)}</li>
        </ul>`;
  return down.length
    ? html`<ul class="tree" id="chain">
        <li>${proc(down[0], down.length === 1)}${level(1)}</li>
      </ul>`
    : html`<p>no process chain</p>`;
}

async function event(root, [id]) {
  const { event: ev, container: c } = await api(`events/${encodeURIComponent(id)}`);
  const d = ev.detection;
  if (!d) {
    render(
      html`<h2>Event ${id}</h2>
        <pre class="mono">${JSON.stringify(ev, null, 2)}</pre>`,
      root,
    );
    return;
  }
  render(
    html`<h2><span class="sev-${d.severity}">${d.severity}</span> ${d.ruleId}</h2>
      <p>${d.message}</p>
      <div class="cols">
        <section>
          <h3>Detection</h3>
          ${kv([
            ['time', when(nsMs(ev.timeUnixNano))],
            ['node', ev.node],
            ['techniques', (d.techniques ?? []).join(' ')],
            ['containment', d.containment ? `${d.containment.outcome} ${d.containment.reason ?? ''}` : ''],
            ...Object.entries(d.attributes ?? {}),
          ])}
          <h3>Process chain</h3>
          ${chainTree(d.chain ?? [])}
        </section>
        <section>
          <h3>Container ${c ? html`<a href=${href('container', [c.node, c.id])}>(timeline)</a>` : nothing}</h3>
          ${d.container ? containerMeta(ev.node, c?.container ?? d.container) : html`<p>not in a container</p>`}
        </section>
      </div>`,
    root,
  );
}

async function fleet(root) {
  const top = document.createElement('div');
  const table = document.createElement('div');
  table.id = 'fleet';
  root.append(top, table);
  const rowsOf = (s) =>
    s.sensors.map((r) => [
      r.silent,
      r.node,
      ago(r.lastSeenMs, s.now),
      r.eventsPerSecond ?? '',
      r.kernelDrops ?? '',
      r.sinkDrops ?? '',
      r.spoolEvents ?? '',
      r.version ?? '',
      r.kernel ?? '',
    ]);
  const banner = (s) => {
    const silent = s.sensors.filter((r) => r.silent);
    render(silent.length ? html`<div class="banner">Silent sensors: ${silent.map((r) => r.node).join(', ')}</div>` : nothing, top);
  };
  const first = await api('sensors');
  banner(first);
  const grid = new gridjs.Grid({
    columns: [
      {
        name: 'Status',
        formatter: (silent) => (silent ? h('span', { className: 'silent' }, 'SILENT') : h('span', { className: 'ok' }, 'ok')),
      },
      'Node',
      'Last seen',
      'Events/s',
      'Kernel drops',
      'Sink drops',
      'Spool (events)',
      'Version',
      'Kernel',
    ],
    data: rowsOf(first),
    sort: true,
  });
  grid.render(table);
  const t = setInterval(async () => {
    try {
      const s = await api('sensors');
      banner(s);
      grid.updateConfig({ data: rowsOf(s) }).forceRender();
    } catch (e) {
      setStatus(`error: ${e.message}`);
    }
  }, 5000);
  return () => clearInterval(t);
}

export const VIEWS = { feed, containers, container, attack, event, fleet };
