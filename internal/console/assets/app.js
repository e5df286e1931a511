// berth console: one page, rendered from the daemon's API (under /api/),
// kept live by the server-sent events of /live and the API's own NDJSON
// streams (logs, events, task output). No framework, no build step.
'use strict';

const csrf = document.querySelector('meta[name="berth-csrf"]').content;
const main = document.getElementById('main');
const state = { status: null, history: null, revisions: null, tasks: null, edge: null };
let route = {};
let live = null;       // the EventSource of /live
let streams = [];      // AbortControllers of the page's NDJSON streams

// h builds an element: h('td', {class: 'num', text: '3'}, child...).
function h(tag, attrs, ...kids) {
  const svg = ['svg', 'path', 'line', 'text', 'g', 'polyline', 'rect'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function fill(el, ...kids) { el.replaceChildren(...kids.flat().filter(k => k !== null && k !== undefined && k !== false)); }
function badge(s) { return h('span', { class: 'badge ' + s, text: s }); }
function ago(t) {
  if (!t) return '-';
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return Math.round(s) + 's ago';
  if (s < 3600) return Math.round(s / 60) + 'm ago';
  if (s < 86400) return Math.round(s / 3600) + 'h ago';
  return Math.round(s / 86400) + 'd ago';
}
function fmt(n, d = 2) { return (n || 0).toFixed(d); }
function svcPath(app, svc) { return '/v1/apps/' + encodeURIComponent(app) + '/services/' + encodeURIComponent(svc); }
function svcHash(app, svc) { return '#/app/' + encodeURIComponent(app) + '/service/' + encodeURIComponent(svc); }

function toast(msg, bad) {
  const t = h('div', { class: 'toast' + (bad ? ' bad' : ''), role: 'status', text: msg });
  document.getElementById('toasts').append(t);
  setTimeout(() => t.remove(), bad ? 9000 : 5000);
}

// confirmAction opens the confirmation dialog; resolves true on Confirm.
function confirmAction(title, text, extra) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  fill(document.getElementById('confirm-extra'), extra || []);
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise(resolve => dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true }));
}

// readNDJSON calls onMsg for each line of a streamed answer.
async function readNDJSON(res, onMsg) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) onMsg(JSON.parse(line));
    }
  }
}

// call sends one API request as the CLI would; a streamed answer is read to
// its result message. It throws with the API's one-line error.
async function call(method, path, body, onMsg) {
  const res = await fetch('/api' + path, {
    method,
    headers: { 'Content-Type': 'application/json', 'X-Berth-CSRF': csrf },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (!res.ok) {
    let msg = res.status + ' ' + res.statusText;
    try { const e = await res.json(); if (e.error) msg = e.error; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  if ((res.headers.get('Content-Type') || '').includes('ndjson')) {
    let result = null;
    await readNDJSON(res, m => { if (m.kind === 'result') result = m; else if (onMsg) onMsg(m); });
    if (result && !result.ok && result.error) throw new Error(result.error);
    return result;
  }
  if (res.status === 204) return null;
  return res.json();
}

// follow streams an NDJSON endpoint for the current page until it changes.
function follow(path, onMsg) {
  const ac = new AbortController();
  streams.push(ac);
  fetch('/api' + path, { signal: ac.signal, credentials: 'same-origin' })
    .then(res => { if (!res.ok) throw new Error(path + ': ' + res.status); return readNDJSON(res, onMsg); })
    .catch(err => { if (err.name !== 'AbortError') toast(String(err.message || err), true); });
  return ac;
}

function connectLive() {
  if (live) live.close();
  const q = new URLSearchParams();
  if (route.page === 'service') { q.set('app', route.app); q.set('service', route.service); }
  if (route.page === 'tasks') q.set('tasks', '1');
  if (route.page === 'edge') q.set('edge', '1');
  live = new EventSource('/live?' + q);
  const dot = document.getElementById('live');
  live.onopen = () => dot.classList.remove('off');
  live.onerror = () => {
    dot.classList.add('off');
    // A session that ended (expired, signed out, daemon restarted) says so
    // instead of retrying for ever.
    fetch('/api/v1/apps', { credentials: 'same-origin' }).then(r => {
      if (r.status !== 401) return;
      live.close();
      fill(main, h('div', { class: 'panel' }, h('p', { id: 'signed-out', text: 'The session has ended. Run "berth ui" for a new sign-in link.' })));
    }).catch(() => {});
  };
  for (const ev of ['status', 'history', 'revisions', 'tasks', 'edge']) {
    live.addEventListener(ev, e => {
      const v = JSON.parse(e.data);
      // An API error (a service not deployed yet) leaves that part empty.
      state[ev] = v && !Array.isArray(v) && v.error ? null : v;
      update();
    });
  }
}

// The environment picker: the local engine (this daemon), and the
// environments the apps' berth.yaml declare (the env page, below).
let environments = [];
async function loadEnvironments() {
  try {
    const apps = await call('GET', '/v1/apps');
    environments = apps.flatMap(a => (a.environments || []).map(e => ({ app: a.name, ...e })));
  } catch (_) { return; }
  const sel = document.getElementById('env');
  fill(sel, h('option', { value: '', text: 'local (this server)' }),
    environments.map(e => h('option', { value: e.name, text: e.app + ': ' + e.name + ' (' + e.engine + (e.region ? ' ' + e.region : '') + ')' })));
  sel.value = route.page === 'env' ? route.env : '';
}

// The page of an environment the apps' berth.yaml declare (AWS): this
// daemon reaches it under /v1/apps/{app}/envs/{env}/ with its own AWS
// credentials; it is polled (AWS has no live feed here), and steered with
// the same confirmed actions as the local engine. Graphs and logs stay on
// the CLI.
function envPath(app, env) { return '/v1/apps/' + encodeURIComponent(app) + '/envs/' + encodeURIComponent(env); }

const envPage = {
  build() {
    const envs = environments.filter(e => e.name === route.env);
    fill(main, h('div', { class: 'head' }, h('h1', { text: 'Environment ' + route.env }),
      h('span', { class: 'muted', text: 'refreshed every 10s; logs and graphs: berth --env ' + route.env + ' logs SERVICE -f' })),
      envs.length ? envs.map(e => h('div', { class: 'panel', 'data-env-app': e.app },
        h('div', { class: 'head' }, h('h2', { text: e.app }), h('span', { class: 'muted', text: e.engine + (e.region ? ' ' + e.region : '') })),
        h('p', { class: 'env-error bad', hidden: true }),
        h('table', { class: 'env-services' },
          h('tr', {}, ['Service', 'State', 'Revision', 'Tasks', 'URL', ''].map(t => h('th', { text: t })))),
        h('div', { class: 'grid2' },
          h('div', {}, h('h3', { text: 'Revisions' }), h('div', { class: 'env-revisions' })),
          h('div', {}, h('h3', { text: 'Events' }), h('div', { class: 'events env-events' })))))
        : h('div', { class: 'panel' }, h('p', { class: 'muted', text: 'Loading…' })),
      h('p', {}, h('a', { href: '#/', text: 'Back to the local engine' })));
    if (!envs.length) return;
    const refresh = () => { for (const e of envs) this.refresh(e.app); };
    refresh();
    const timer = setInterval(refresh, 10000);
    streams.push({ abort: () => clearInterval(timer) });
    this.refreshNow = refresh;
  },
  update() {},
  panel(app) { return main.querySelector('[data-env-app="' + CSS.escape(app) + '"]'); },
  async refresh(app) {
    const env = route.env, base = envPath(app, env);
    let st;
    try { st = await call('GET', base + '/status'); } catch (e) { this.error(app, e.message); return; }
    if (route.page !== 'env' || route.env !== env || !this.panel(app)) return;
    this.error(app, '');
    const a = (st.apps || []).find(x => x.name === app) || { services: [] };
    this.services(app, a.services || []);
    const revBox = this.panel(app).querySelector('.env-revisions');
    const revs = await Promise.all((a.services || []).map(s => call('GET', base + '/services/' + encodeURIComponent(s.name) + '/revisions').then(r => [s.name, r], () => [s.name, []])));
    envRevisions[app] = Object.fromEntries(revs);
    if (!this.panel(app)) return;
    fill(revBox, h('table', {},
      h('tr', {}, ['Service', 'Rev', 'Status', 'Image', 'When', 'Who', 'Why'].map(t => h('th', { text: t }))),
      revs.flatMap(([svc, rs]) => rs.slice(0, 8).map(r => h('tr', { 'data-rev': svc + ':' + r.number },
        h('td', { text: svc }), h('td', { text: r.number }), h('td', {}, badge(r.status)), h('td', { class: 'mono', title: r.image, text: shortImage(r.image) }),
        h('td', { class: 'nowrap', title: r.created_at, text: ago(r.created_at) }), h('td', { class: 'nowrap', text: r.by || '-' }), h('td', { text: r.message || '' }))))));
    try {
      const evs = await call('GET', base + '/events?limit=50');
      if (!this.panel(app)) return;
      fill(this.panel(app).querySelector('.env-events'), evs.slice().reverse().map(e =>
        h('div', {}, h('span', { class: 'muted', text: new Date(e.time).toLocaleString() + '  ' }), badge(e.kind), ' ', e.service ? e.service + ': ' : '', e.message)));
    } catch (_) { /* the status's error says it */ }
  },
  error(app, msg) {
    const p = this.panel(app);
    if (!p) return;
    const el = p.querySelector('.env-error');
    el.textContent = msg;
    el.hidden = !msg;
  },
  // services updates each service's row in place, building its buttons
  // once: a button redrawn under the pointer would lose the click.
  services(app, svcs) {
    const table = this.panel(app).querySelector('.env-services');
    for (const s of svcs) {
      let row = table.querySelector('tr[data-service="' + CSS.escape(s.name) + '"]');
      if (!row) {
        row = h('tr', { 'data-service': s.name }, h('td', { class: 'name', text: s.name }), h('td', { class: 'state' }), h('td', { class: 'rev' }),
          h('td', { class: 'tasks' }), h('td', { class: 'url' }), h('td', {}, h('div', { class: 'actions' })));
        table.append(row);
        this.actions(app, s.name, row.querySelector('.actions'));
      }
      fill(row.querySelector('.state'), badge(s.state), s.message ? h('div', { class: 'muted', text: s.message }) : null);
      row.querySelector('.rev').textContent = s.revision;
      row.dataset.revision = s.revision;
      row.dataset.state = s.state;
      fill(row.querySelector('.tasks'), s.running + '/' + s.desired,
        (s.instances || []).length ? h('div', { class: 'muted mono', text: s.instances.map(i => i.id.slice(0, 12) + ' ' + i.state).join(', ') }) : null);
      fill(row.querySelector('.url'), (s.urls || []).slice(0, 1).map(u => h('a', { href: u, target: '_blank', rel: 'noopener', class: 'mono', text: u })));
      row.querySelector('.env-pause').hidden = s.state === 'paused';
      row.querySelector('.env-resume').hidden = s.state !== 'paused';
      const n = row.querySelector('.env-scale-n');
      if (!n.dataset.edited && document.activeElement !== n) n.value = s.desired;
    }
  },
  actions(app, svc, box) {
    const env = route.env, base = envPath(app, env), sp = base + '/services/' + encodeURIComponent(svc);
    const what = app + '/' + svc + ' in ' + env;
    const after = () => this.refresh(app);
    const scaleInput = h('input', { class: 'env-scale-n', type: 'number', min: 0 });
    scaleInput.addEventListener('input', () => { scaleInput.dataset.edited = '1'; });
    fill(box,
      h('button', { class: 'env-rollback', onclick: async () => {
        const row = box.closest('tr');
        const cur = parseInt(row.dataset.revision, 10);
        const revs = ((envRevisions[app] || {})[svc] || []).filter(r => r.number !== cur && r.status !== 'failed');
        const pick = h('select', { id: 'rollback-to' }, h('option', { value: '0', text: 'the previous revision' }),
          revs.map(r => h('option', { value: r.number, text: 'revision ' + r.number + ' (' + r.image + ')' })));
        if (!await confirmAction('Roll back ' + what, 'Move all traffic from revision ' + cur + ' back to an earlier revision, on AWS.', [h('label', {}, 'To ', pick)])) return;
        toast('Rolling back ' + what + '…');
        try {
          const res = await call('POST', sp + '/rollback', { to: parseInt(pick.value, 10) || 0 });
          const d = res && res.deployed && res.deployed[0];
          toast('Rolled back: ' + svc + ' now serves revision ' + (d ? d.revision : '?'));
        } catch (e) { toast('Rollback failed: ' + e.message, true); }
        after();
      } }, 'Roll back…'),
      h('button', { class: 'env-pause', onclick: () => act('Pause ' + what, 'Stop its tasks on AWS; requests fail until it is resumed.', 'Paused', () => call('POST', sp + '/pause')).then(after) }, 'Pause…'),
      h('button', { class: 'env-resume', onclick: () => act('Resume ' + what, 'Start its tasks again on AWS and route traffic to them.', 'Resumed', () => call('POST', sp + '/resume')).then(after) }, 'Resume…'),
      scaleInput,
      h('button', { class: 'env-scale', onclick: () => {
        const n = parseInt(scaleInput.value, 10);
        act('Scale ' + what, 'Run ' + n + ' task(s) on AWS.', 'Scaled to ' + n, () => call('POST', base + '/scale', { counts: { [svc]: n } }))
          .then(() => { delete scaleInput.dataset.edited; after(); });
      } }, 'Scale…'));
  },
};

// shortImage is an image's last path part with a short digest; the full
// reference is the cell's title.
function shortImage(ref) {
  const last = (ref || '').split('/').pop();
  return last.replace(/@sha256:([0-9a-f]{12})[0-9a-f]+$/, '@$1');
}

// envRevisions are the env page's revisions: app -> service -> []Revision.
let envRevisions = {};

function parseRoute() {
  const p = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (p[0] === 'env' && p[1]) return { page: 'env', env: p[1] };
  if (p[0] === 'app' && p[2] === 'service' && p[3]) return { page: 'service', app: p[1], service: p[3] };
  if (p[0] === 'tasks') return { page: 'tasks', id: p[1] || '' };
  if (p[0] === 'edge') return { page: 'edge' };
  return { page: 'apps' };
}

// navigate builds the page's skeleton; update fills it from state.
function navigate() {
  for (const ac of streams) ac.abort();
  streams = [];
  const prev = route;
  route = parseRoute();
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('on', a.dataset.nav === route.page || (route.page === 'service' && a.dataset.nav === 'apps'));
  }
  state.history = state.revisions = null;
  const sel = document.getElementById('env');
  if (sel) sel.value = route.page === 'env' ? route.env : '';
  if (route.page !== prev.page || route.app !== prev.app || route.service !== prev.service) connectLive();
  pages[route.page].build();
  update();
}

function update() { if (state.status) pages[route.page].update(); }

function findService(app, svc) {
  for (const a of (state.status && state.status.apps) || []) {
    if (a.name !== app) continue;
    for (const s of a.services) if (s.name === svc) return s;
  }
  return null;
}

function servingRate(s) {
  const t = (s.traffic || []).find(t => t.revision === s.revision);
  return t ? t.requests_per_second : 0;
}

// ---------------------------------------------------------------- apps

const appsPage = {
  build() {
    fill(main, h('h1', { text: 'Apps and services' }), h('div', { id: 'apps' }));
  },
  update() {
    const apps = state.status.apps;
    if (!apps.length) {
      fill(document.getElementById('apps'), h('div', { class: 'panel' },
        h('p', { text: 'Nothing deployed yet.' }),
        h('p', { class: 'muted', text: 'Run "berth deploy" next to a berth.yaml; its services appear here at once.' })));
      return;
    }
    fill(document.getElementById('apps'), apps.map(a => h('div', { class: 'panel', 'data-app': a.name },
      h('h2', { text: a.name }),
      h('table', {},
        h('tr', {}, ['Service', 'State', 'Revision', 'Instances', 'URL', 'Requests/s', 'p99'].map((t, i) => h('th', { class: i >= 5 ? 'num' : null, text: t }))),
        a.services.map(s => {
          const tr = (s.traffic || []).find(t => t.revision === s.revision) || {};
          return h('tr', { 'data-service': s.name },
            h('td', {}, h('a', { href: svcHash(a.name, s.name), text: s.name })),
            h('td', {}, badge(s.state), s.message ? h('div', { class: 'muted', text: s.message }) : null),
            h('td', { class: 'rev', text: s.revision }),
            h('td', { text: s.running + '/' + s.desired }),
            h('td', {}, (s.urls || []).slice(0, 1).map(u => h('a', { href: u, target: '_blank', rel: 'noopener', class: 'mono', text: u }))),
            h('td', { class: 'num rps', text: fmt(tr.requests_per_second) }),
            h('td', { class: 'num', text: tr.latency_p99_ms ? fmt(tr.latency_p99_ms, 1) + ' ms' : '-' }));
        })),
      (a.entrypoints || []).length ? h('p', { class: 'muted' }, 'Entrypoints: ',
        a.entrypoints.map(e => h('a', { href: '#/edge', text: e.name + ' (' + e.hosts.join(', ') + ') ' }))) : null)));
  },
};

// ---------------------------------------------------------------- service

const servicePage = {
  build() {
    const { app, service } = route;
    const filter = h('input', { id: 'log-filter', type: 'search', placeholder: 'filter' });
    const followBox = h('input', { id: 'log-follow', type: 'checkbox', checked: true });
    fill(main,
      h('p', { class: 'muted' }, h('a', { href: '#/', text: 'Apps' }), ' / ' + app),
      h('div', { class: 'head' }, h('h1', { id: 'svc-title', text: app + '/' + service }), h('span', { id: 'svc-state' })),
      h('div', { class: 'actions', id: 'svc-actions' }),
      h('div', { class: 'panel', id: 'svc-stats' }),
      h('div', { class: 'grid2' },
        h('div', { class: 'panel chart' }, h('h3', { text: 'Requests per second, last hour' }), h('div', { id: 'chart-requests' })),
        h('div', { class: 'panel chart' }, h('h3', { text: 'Latency (ms), last hour' }), h('div', { id: 'chart-latency' }))),
      h('div', { class: 'grid2' },
        h('div', { class: 'panel' }, h('h3', { text: 'Instances' }), h('div', { id: 'svc-instances' })),
        h('div', { class: 'panel' }, h('h3', { text: 'Revisions' }), h('div', { id: 'svc-revisions' }))),
      h('div', { class: 'panel' },
        h('div', { class: 'logbar' }, h('h3', { text: 'Logs' }),
          h('label', {}, followBox, ' follow'), filter),
        h('div', { class: 'logs', id: 'logs' })),
      h('div', { class: 'panel' }, h('h3', { text: 'Events' }), h('div', { class: 'events', id: 'events' })));
    const logs = document.getElementById('logs');
    const applyFilter = () => {
      const f = filter.value.toLowerCase();
      for (const l of logs.children) l.hidden = f !== '' && !l.textContent.toLowerCase().includes(f);
    };
    filter.addEventListener('input', applyFilter);
    let logStream = null;
    const startLogs = () => {
      logs.replaceChildren();
      logStream = follow(svcPath(app, service) + '/logs?follow=1&tail=200', m => {
        if (m.kind !== 'log') return;
        const line = h('div', { class: m.stream === 'stderr' ? 'stderr' : null },
          h('span', { class: 'ts', text: new Date(m.time).toLocaleTimeString() + ' ' }),
          h('span', { class: 'src', text: (m.source || '') + ' ' }), m.text);
        const f = filter.value.toLowerCase();
        line.hidden = f !== '' && !line.textContent.toLowerCase().includes(f);
        const atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 20;
        logs.append(line);
        while (logs.childElementCount > 2000) logs.firstChild.remove();
        if (atEnd) logs.scrollTop = logs.scrollHeight;
      });
    };
    followBox.addEventListener('change', () => {
      if (followBox.checked) startLogs(); else if (logStream) logStream.abort();
    });
    startLogs();
    const events = document.getElementById('events');
    revisionEvents = {};
    follow('/v1/events?follow=1&app=' + encodeURIComponent(app), m => {
      const e = m.event;
      if (!e || (e.service && e.service !== service)) return;
      // What last happened to each revision, for the revisions' "why".
      const n = /revision (\d+)/.exec(e.message);
      if (n) { revisionEvents[n[1]] = { kind: e.kind, message: e.message, time: e.time }; soon(update); }
      events.prepend(h('div', {}, h('span', { class: 'muted', text: new Date(e.time).toLocaleString() + '  ' }), badge(e.kind), ' ', e.message));
    });
  },
  update() {
    const s = findService(route.app, route.service);
    if (!s) {
      fill(document.getElementById('svc-state'), h('span', { class: 'muted', text: 'not deployed' }));
      return;
    }
    fill(document.getElementById('svc-state'), badge(s.state), ' ', h('span', { id: 'svc-revision', 'data-revision': s.revision, text: 'revision ' + s.revision }),
      s.message ? h('span', { class: 'muted', text: ' ' + s.message }) : null);
    this.actions(s);
    const tr = (s.traffic || []).find(t => t.revision === s.revision) || {};
    fill(document.getElementById('svc-stats'),
      h('span', { class: 'stat' }, 'Requests/s', h('b', { id: 'stat-rps', text: fmt(tr.requests_per_second) })),
      h('span', { class: 'stat' }, 'p50', h('b', { text: fmt(tr.latency_p50_ms, 1) + ' ms' })),
      h('span', { class: 'stat' }, 'p99', h('b', { text: fmt(tr.latency_p99_ms, 1) + ' ms' })),
      h('span', { class: 'stat' }, 'Instances', h('b', { text: s.running + '/' + s.desired })),
      h('span', { class: 'stat' }, 'Image', h('b', { class: 'mono', text: s.image || '-' })),
      (s.urls || []).map(u => h('span', { class: 'stat' }, 'URL', h('b', {}, h('a', { href: u, target: '_blank', rel: 'noopener', class: 'mono', text: u })))));
    fill(document.getElementById('svc-instances'), (s.instances || []).length ? h('table', {},
      h('tr', {}, ['Instance', 'Rev', 'State', 'Restarts', 'Started', 'Address'].map(t => h('th', { text: t }))),
      s.instances.map(i => h('tr', {},
        h('td', { class: 'mono', text: i.id }), h('td', { text: i.revision }), h('td', {}, badge(i.state)),
        h('td', { text: i.restarts }), h('td', { text: ago(i.started_at) }), h('td', { class: 'mono', text: i.addr || '-' })))) :
      h('p', { class: 'muted', text: 'No instances.' }));
    if (state.revisions) {
      fill(document.getElementById('svc-revisions'), h('table', {},
        h('tr', {}, ['Rev', 'Status', 'Image', 'When', 'Who', 'Why'].map(t => h('th', { text: t }))),
        state.revisions.slice(0, 15).map(r => h('tr', { 'data-rev': r.number },
          h('td', { text: r.number }), h('td', {}, badge(r.status)), h('td', { class: 'mono', text: r.image }),
          h('td', { class: 'nowrap', title: r.created_at, text: ago(r.created_at) }), h('td', { class: 'nowrap', text: r.by || '-' }), h('td', { text: r.message || why(r.number) })))));
    }
    if (state.history) drawCharts(state.history, s.revision);
  },
  // actions builds the buttons once per page and then only updates them:
  // a button redrawn under the pointer would lose the user's click.
  actions(s) {
    const box = document.getElementById('svc-actions');
    const { app, service } = route;
    if (!box.firstChild) {
      const scaleInput = h('input', { id: 'scale-n', type: 'number', min: 0, value: s.desired });
      scaleInput.addEventListener('input', () => { scaleInput.dataset.edited = '1'; });
      const path = svcPath(app, service);
      fill(box,
        h('button', { id: 'act-rollback', onclick: () => rollback(findService(app, service) || s) }, 'Roll back…'),
        h('button', { id: 'act-pause', onclick: () => act('Pause ' + app + '/' + service, 'Stop its instances; requests get 503 until it is resumed.', 'Paused', () => call('POST', path + '/pause')) }, 'Pause…'),
        h('button', { id: 'act-resume', onclick: () => act('Resume ' + app + '/' + service, 'Start its instances again and route traffic to them.', 'Resumed', () => call('POST', path + '/resume')) }, 'Resume…'),
        h('span', { class: 'muted', text: 'Instances' }), scaleInput,
        h('button', { id: 'act-scale', onclick: () => {
          const n = parseInt(scaleInput.value, 10);
          act('Scale ' + app + '/' + service, 'Run ' + n + ' instance(s).', 'Scaled to ' + n,
            () => call('POST', '/v1/apps/' + encodeURIComponent(app) + '/scale', { counts: { [service]: n } }))
            .then(() => { delete scaleInput.dataset.edited; });
        } }, 'Scale…'));
    }
    const paused = s.state === 'paused';
    document.getElementById('act-pause').hidden = paused;
    document.getElementById('act-resume').hidden = !paused;
    const n = document.getElementById('scale-n');
    if (!n.dataset.edited && document.activeElement !== n) n.value = s.desired;
  },
};

// soon runs fn once at the next frame, however often it is asked.
const pending = new Set();
function soon(fn) {
  if (pending.has(fn)) return;
  pending.add(fn);
  requestAnimationFrame(() => { pending.delete(fn); fn(); });
}

// revisionEvents are the service page's last event per revision number.
let revisionEvents = {};
function why(n) {
  const e = revisionEvents[n];
  return e ? e.kind + ': ' + e.message : '';
}

async function act(title, text, done, fn) {
  if (!await confirmAction(title, text)) return;
  try { await fn(); toast(done); } catch (e) { toast(e.message, true); }
}

async function rollback(s) {
  const { app, service } = route;
  const revs = (state.revisions || []).filter(r => r.number !== s.revision && r.status !== 'failed').reverse();
  const pick = h('select', { id: 'rollback-to' }, h('option', { value: '0', text: 'the previous revision' }),
    revs.map(r => h('option', { value: r.number, text: 'revision ' + r.number + ' (' + r.image + ')' })));
  if (!await confirmAction('Roll back ' + app + '/' + service,
    'Move all traffic from revision ' + s.revision + ' back to an earlier revision.', [h('label', {}, 'To ', pick)])) return;
  toast('Rolling back ' + app + '/' + service + '…');
  try {
    const res = await call('POST', svcPath(app, service) + '/rollback', { to: parseInt(pick.value, 10) || 0 });
    const d = res && res.deployed && res.deployed[0];
    toast('Rolled back: ' + service + ' now serves revision ' + (d ? d.revision : '?'));
  } catch (e) { toast('Rollback failed: ' + e.message, true); }
}

// drawCharts draws the request rate (errors dashed) and the p50 (solid) and
// p99 (dashed) latencies per revision, by hand in SVG.
function drawCharts(hist, serving) {
  const pts = hist.points || [];
  const revs = [...new Set(pts.flatMap(p => (p.revisions || []).map(r => r.revision)))].sort((a, b) => b - a).slice(0, 5);
  const series = (pick) => revs.map(rev => ({ rev, values: pts.map(p => { const r = (p.revisions || []).find(r => r.revision === rev); return { t: new Date(p.time).getTime(), v: r ? pick(r) : 0 }; }) }));
  const reqs = series(r => r.requests_per_second);
  const errs = series(r => r.errors_per_second).filter(s => s.values.some(v => v.v > 0));
  const last = pts.length ? (pts[pts.length - 1].revisions || []).reduce((a, r) => a + r.requests_per_second, 0) : 0;
  const total = pts.reduce((a, p) => a + (p.revisions || []).reduce((b, r) => b + r.requests_per_second, 0), 0);
  const rq = document.getElementById('chart-requests');
  rq.dataset.points = pts.length;
  rq.dataset.total = total.toFixed(3);
  rq.dataset.last = last.toFixed(3);
  fill(rq, chart(pts, [
    ...reqs.map((s, i) => ({ cls: 'c' + i, values: s.values })),
    ...errs.map(s => ({ cls: 'err dash', values: s.values })),
  ]), legend(revs, serving, errs.length ? 'errors (5xx/s) dashed red' : ''));
  const lat = [
    ...series(r => r.latency_p50_ms).map((s, i) => ({ cls: 'c' + i, values: s.values })),
    ...series(r => r.latency_p99_ms).map((s, i) => ({ cls: 'c' + i + ' dash', values: s.values })),
  ];
  fill(document.getElementById('chart-latency'), chart(pts, lat), legend(revs, serving, 'p50 solid, p99 dashed'));
}

function legend(revs, serving, note) {
  return h('div', { class: 'legend' }, revs.map((r, i) => h('span', {}, h('i', { class: 'c' + i }), 'rev ' + r + (r === serving ? ' (serving)' : ''))), note ? h('span', { text: note }) : null);
}

function chart(pts, lines) {
  const W = 600, H = 180, L = 44, R = 8, T = 8, B = 22;
  const svg = h('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img' });
  if (pts.length < 2) {
    svg.append(h('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', text: 'Collecting… (a point every ' + (state.history ? state.history.every : '5s') + ')' }));
    return svg;
  }
  const t0 = new Date(pts[0].time).getTime(), t1 = new Date(pts[pts.length - 1].time).getTime();
  let max = 0;
  for (const l of lines) for (const v of l.values) max = Math.max(max, v.v);
  max = max > 0 ? niceMax(max) : 1;
  const x = t => L + (W - L - R) * (t - t0) / Math.max(1, t1 - t0);
  const y = v => T + (H - T - B) * (1 - v / max);
  for (const f of [0, 0.5, 1]) {
    svg.append(h('line', { class: f === 0 ? 'axis' : 'grid', x1: L, x2: W - R, y1: y(max * f), y2: y(max * f) }));
    svg.append(h('text', { x: L - 4, y: y(max * f) + 4, 'text-anchor': 'end', text: fmtAxis(max * f) }));
  }
  svg.append(h('text', { x: L, y: H - 6, text: new Date(t0).toLocaleTimeString() }));
  svg.append(h('text', { x: W - R, y: H - 6, 'text-anchor': 'end', text: new Date(t1).toLocaleTimeString() }));
  for (const l of lines) {
    svg.append(h('polyline', { class: 'line ' + l.cls, points: l.values.map(v => x(v.t).toFixed(1) + ',' + y(v.v).toFixed(1)).join(' ') }));
  }
  return svg;
}

function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
function fmtAxis(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }

// ---------------------------------------------------------------- tasks

const tasksPage = {
  build() {
    fill(main, h('h1', { text: 'Tasks' }), h('div', { class: 'panel', id: 'tasks' }, h('p', { class: 'muted', text: 'Loading…' })),
      h('div', { class: 'panel', id: 'task-out', hidden: !route.id }));
    if (route.id) {
      const out = h('pre', { class: 'out', id: 'task-output' });
      fill(document.getElementById('task-out'), h('h3', { text: 'Output of ' + route.id }), out);
      follow('/v1/tasks/' + encodeURIComponent(route.id) + '/logs?follow=1', m => {
        if (m.kind === 'log') out.append((m.text || '') + '\n');
      });
    }
  },
  update() {
    if (!state.tasks) return;
    const box = document.getElementById('tasks');
    if (box.matches(':hover') && box.querySelector('button')) return; // keep a Stop button under the pointer
    if (!state.tasks.length) { fill(box, h('p', { class: 'muted', text: 'No tasks yet. Run one with "berth task run".' })); return; }
    fill(box, h('table', {},
      h('tr', {}, ['Task', 'App/service', 'Name or command', 'Kind', 'Status', 'Exit', 'Started', ''].map(t => h('th', { text: t }))),
      state.tasks.map(t => h('tr', { class: 'click' + (t.id === route.id ? ' sel' : ''), 'data-task': t.id, onclick: () => { location.hash = '#/tasks/' + t.id; } },
        h('td', { class: 'mono', text: t.id.slice(0, 12) }), h('td', { text: t.app + '/' + t.service }),
        h('td', { class: 'mono', text: t.name || (t.command || []).join(' ') }), h('td', { text: t.kind }),
        h('td', {}, badge(t.status), t.message ? h('div', { class: 'muted', text: t.message }) : null),
        h('td', { text: t.status === 'running' ? '' : t.exit_code }), h('td', { text: ago(t.started_at) }),
        h('td', {}, t.status === 'running' ? h('button', { onclick: ev => {
          ev.stopPropagation();
          act('Stop task ' + t.id.slice(0, 12), 'SIGTERM, then SIGKILL after the grace period.', 'Stopped', () => call('POST', '/v1/tasks/' + encodeURIComponent(t.id) + '/stop'));
        } }, 'Stop…') : null)))));
  },
};

// ---------------------------------------------------------------- edge

const edgePage = {
  build() { fill(main, h('h1', { text: 'Edge entrypoints' }), h('div', { id: 'edge' }, h('p', { class: 'muted', text: 'Loading…' }))); },
  update() {
    if (!state.edge) return;
    const box = document.getElementById('edge');
    // Not redrawn under the user's typing or pointer: a button redrawn
    // between press and release would lose the click.
    if (box.querySelector('input:focus') || box.matches(':hover')) return;
    if (!state.edge.length) { fill(box, h('div', { class: 'panel' }, h('p', { class: 'muted', text: 'No entrypoints. Declare them under edge: in berth.yaml.' }))); return; }
    fill(box, state.edge.map(e => {
      const app = ((state.status && state.status.apps) || []).find(a => a.name === e.app);
      const listID = 'origins-' + e.name;
      const origin = h('input', { type: 'text', value: e.origin, size: 28, list: listID, 'aria-label': 'origin' });
      return h('div', { class: 'panel', 'data-entrypoint': e.name },
        h('div', { class: 'head' }, h('h2', { text: e.name }), h('span', { class: 'muted', text: 'app ' + e.app }), e.maintenance ? badge('maintenance') : null),
        h('datalist', { id: listID }, ((app && app.services) || []).map(s => h('option', { value: s.name }))),
        h('table', { class: 'kv' },
          h('tr', {}, h('th', { text: 'Hosts' }), h('td', { class: 'mono', text: (e.hosts || []).join(', ') })),
          h('tr', {}, h('th', { text: 'Origin' }), h('td', { class: 'mono', text: e.origin + (e.spec_origin && e.spec_origin !== e.origin ? '  (spec: ' + e.spec_origin + ')' : '') })),
          (e.shares || []).length ? h('tr', {}, h('th', { text: 'Shares' }), h('td', { class: 'mono', text: e.shares.map(s => s.origin + ' ' + s.percent + '%').join(', ') })) : null,
          e.cache ? h('tr', {}, h('th', { text: 'Cache' }), h('td', { text: `ttl ${e.cache.default_ttl}, ${e.cache.hits} hits, ${e.cache.misses} misses, ${e.cache.objects} objects, ${e.cache.bytes} bytes` })) : null,
          e.rollback ? h('tr', {}, h('th', { text: 'Guard' }), h('td', { text: 'rolled back ' + ago(e.rollback.time) + ': ' + e.rollback.reason })) : null),
        h('div', { class: 'actions' }, h('span', { class: 'muted', text: 'Switch origin to' }), origin,
          h('button', { onclick: () => act('Switch ' + e.name, 'Send all of ' + e.name + "'s traffic to " + origin.value + '.', 'Switched ' + e.name,
            () => call('POST', '/v1/edge/' + encodeURIComponent(e.name) + '/switch', { origin: origin.value })) }, 'Switch…')));
    }));
  },
};

const pages = { apps: appsPage, service: servicePage, tasks: tasksPage, edge: edgePage, env: envPage };

document.getElementById('signout').addEventListener('click', async () => {
  await fetch('/signout', { method: 'POST', headers: { 'X-Berth-CSRF': csrf } });
  if (live) live.close();
  fill(main, h('p', { text: 'Signed out. Run "berth ui" for a new sign-in link.' }));
});
document.getElementById('env').addEventListener('change', e => {
  location.hash = e.target.value ? '#/env/' + encodeURIComponent(e.target.value) : '#/';
});
window.addEventListener('hashchange', navigate);
navigate();
loadEnvironments().then(() => { if (route.page === 'env') navigate(); });
