// pycos.httpd: the single-page UI of a dispycos cluster client.
//
// Plain ES2017, no libraries.  Everything that comes from the server is put
// in the page with textContent / attributes, never parsed as HTML.  Views are
// built once per route and then updated in place (rows are kept by id), so
// buttons and checkboxes survive the live updates.
'use strict';

(function () {
  const NA = '\u2013';  // shown for null / unknown values
  const SVGNS = 'http://www.w3.org/2000/svg';
  const ACTIVE = ['Discovered', 'Initialized'];

  const token = (document.querySelector('meta[name="pycos-token"]') || {}).content || '';

  const state = {
    cluster: null,       // the last /api/cluster document
    version: null,
    skew: 0,             // server time - local time, seconds
    pollSec: 10,
    conn: 'offline',
    route: null,         // {view, id}
    view: null,          // the current view object
  };

  // ------------------------------------------------------------------
  // small helpers

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v == null || v === false) continue;
        if (k === 'text') e.textContent = v;
        else if (k === 'testid') e.setAttribute('data-testid', v);
        else if (k === 'cls') e.className = v;
        else if (k === 'on') {
          for (const ev of Object.keys(v)) e.addEventListener(ev, v[ev]);
        } else e.setAttribute(k, v === true ? '' : v);
      }
    }
    for (const c of children) {
      if (c == null) continue;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    }
    return e;
  }

  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k of Object.keys(attrs || {})) {
      if (k === 'text') e.textContent = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    return e;
  }

  function setText(e, text) {
    text = text == null ? NA : String(text);
    if (e.textContent !== text) e.textContent = text;
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function num(v) {
    return (typeof v === 'number' && isFinite(v)) ? v : null;
  }

  function now() {  // the server's clock, seconds
    return Date.now() / 1000 + state.skew;
  }

  function fmtInt(v) {
    v = num(v);
    return v == null ? NA : v.toLocaleString('en-US');
  }

  function fmtPct(v) {
    v = num(v);
    return v == null ? NA : v.toFixed(1) + ' %';
  }

  function fmtBytes(v) {
    v = num(v);
    if (v == null) return NA;
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(Math.round(v)) : v.toFixed(Math.abs(v) < 10 ? 2 : 1)) + ' ' + units[i];
  }

  function fmtDuration(s) {
    s = num(s);
    if (s == null) return NA;
    if (s < 0) s = 0;
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    const t = Math.floor(s);
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
    const pad = (x) => (x < 10 ? '0' : '') + x;
    if (h === 0) return m + ' m ' + pad(sec) + ' s';
    if (h < 48) return h + ' h ' + pad(m) + ' m';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }

  function fmtAgo(t) {
    t = num(t);
    if (t == null) return NA;
    const d = Math.max(0, Math.round(now() - t));
    if (d < 60) return d + ' s ago';
    if (d < 3600) return Math.floor(d / 60) + ' min ago';
    if (d < 86400) return Math.floor(d / 3600) + ' h ago';
    return Math.floor(d / 86400) + ' d ago';
  }

  function fmtTime(t, withDate) {
    t = num(t);
    if (t == null) return NA;
    const d = new Date((t - state.skew) * 1000);
    const today = new Date();
    const time = d.toLocaleTimeString([], {hour12: false});
    if (withDate || d.toDateString() !== today.toDateString()) {
      return d.toLocaleDateString() + ' ' + time;
    }
    return time;
  }

  function fmtClock(t) {  // short chart axis label
    const d = new Date((t - state.skew) * 1000);
    return d.toLocaleTimeString([], {hour12: false, hour: '2-digit', minute: '2-digit', second: '2-digit'});
  }

  function nodeHref(id) {
    return '#/node/' + encodeURIComponent(id);
  }

  function serverHref(id) {
    return '#/server/' + encodeURIComponent(id);
  }

  function findNode(id) {
    const c = state.cluster;
    if (!c || !Array.isArray(c.nodes)) return null;
    return c.nodes.find((n) => n.id === id) || null;
  }

  function statusBadge(e, status) {
    setText(e, status);
    const cls = 'status status-' + String(status || 'unknown').toLowerCase();
    if (e.className !== cls) e.className = cls;
  }

  function canAct() {
    if (!token) return false;
    return !(state.cluster && state.cluster.can_act === false);
  }

  // ------------------------------------------------------------------
  // HTTP

  function headers(extra) {
    const h = Object.assign({Accept: 'application/json'}, extra || {});
    if (token) h['X-Pycos-Token'] = token;
    return h;
  }

  async function getJSON(url) {
    const r = await fetch(url, {credentials: 'same-origin', cache: 'no-store', headers: headers()});
    if (r.status === 404) return {notFound: true};
    if (!r.ok) throw new Error(r.status + ' ' + r.statusText);
    return {doc: await r.json()};
  }

  let statusSeq = 0;

  function setStatus(text, kind) {
    const e = document.getElementById('action-status');
    e.textContent = text;
    e.className = 'action-status' + (kind ? ' ' + kind : '');
    statusSeq++;
  }

  async function act(label, url, body, button) {
    if (!canAct()) {
      setStatus(label + ': read-only page (no token)', 'error');
      return;
    }
    if (button) button.disabled = true;
    setStatus(label + ' \u2026', 'pending');
    const opts = {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: headers({'Content-Type': 'application/json'}),
    };
    if (body !== undefined) opts.body = JSON.stringify(body);
    try {
      const r = await fetch(url, opts);
      let data = null;
      try {
        data = await r.json();
      } catch (e) {
        data = null;
      }
      if (r.ok && data && data.ok) {
        let msg = label + ': ok';
        if (data.result !== undefined && data.result !== null) {
          msg += ' (result: ' + JSON.stringify(data.result) + ')';
        }
        setStatus(msg, 'ok');
      } else {
        const why = (data && data.error) ? data.error : ('HTTP ' + r.status + ' ' + r.statusText);
        setStatus(label + ': failed: ' + why, 'error');
      }
    } catch (e) {
      setStatus(label + ': failed: ' + e.message, 'error');
    } finally {
      if (button) button.disabled = false;
      if (state.view && state.view.refetch) state.view.refetch();
      if (state.conn !== 'live') poll();
    }
  }

  function nodeAction(id, what, button) {
    const name = (findNode(id) || {}).name || id;
    act(what + ' node ' + name, '/api/node/' + encodeURIComponent(id) + '/' + what, undefined, button);
  }

  function serverAction(id, what, button) {
    act(what + ' server ' + id, '/api/server/' + encodeURIComponent(id) + '/' + what, undefined, button);
  }

  function actionButton(label, testid, cls, onclick) {
    return el('button', {type: 'button', cls: 'btn ' + (cls || ''), testid: testid, text: label,
                         on: {click: (ev) => onclick(ev.currentTarget)}});
  }

  // Show / hide a row's buttons for the status; all hidden when read-only.
  function showButtons(buttons, status) {
    const may = canAct();
    const active = ACTIVE.indexOf(status) >= 0;
    const visible = {
      suspend: active,
      resume: status === 'Suspended',
      close: active || status === 'Suspended',
      restart: active || status === 'Suspended',
      terminate: true,
    };
    for (const k of Object.keys(buttons)) {
      const hide = !may || !visible[k];
      if (buttons[k].hidden !== hide) buttons[k].hidden = hide;
    }
  }

  // ------------------------------------------------------------------
  // keyed table rows: create missing rows, update all, drop the gone ones

  function syncRows(tbody, items, make, update, emptyText, columns) {
    const old = new Map();
    for (const tr of Array.from(tbody.children)) {
      if (tr.dataset.id !== undefined) old.set(tr.dataset.id, tr);
      else tbody.removeChild(tr);
    }
    let prev = null;
    for (const item of items) {
      const key = String(item.id);
      let tr = old.get(key);
      if (tr) old.delete(key);
      else {
        tr = make(item);
        tr.dataset.id = key;
      }
      update(tr, item);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const tr of old.values()) tbody.removeChild(tr);
    if (!items.length && emptyText) {
      tbody.appendChild(el('tr', {cls: 'empty'}, el('td', {colspan: columns, text: emptyText})));
    }
  }

  // ------------------------------------------------------------------
  // SVG charts

  // pts: [[x, y or null], ...] (x ascending).  opts: {kind: 'line'|'bars',
  // xmin, xmax, ymin, ymax (fixed bounds, optional), fmt (y label), label}
  function drawChart(svg, pts, opts) {
    svg._chart = {pts: pts, opts: opts};
    const W = Math.max(260, Math.round(svg.getBoundingClientRect().width || 600));
    const H = opts.height || 200;
    const m = {l: 64, r: 14, t: 24, b: 24};
    const pw = W - m.l - m.r, ph = H - m.t - m.b;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('height', H);
    clear(svg);
    svg.appendChild(svgEl('title', {text: opts.label}));

    const vals = pts.map((p) => p[1]).filter((v) => v != null);
    let xmin = opts.xmin != null ? opts.xmin : (pts.length ? pts[0][0] : 0);
    let xmax = opts.xmax != null ? opts.xmax : (pts.length ? pts[pts.length - 1][0] : 1);
    if (!(xmax > xmin)) {
      xmin -= 30;
      xmax += 30;
    }
    let ymin = opts.ymin != null ? opts.ymin : (vals.length ? Math.min(...vals) : 0);
    let ymax = opts.ymax != null ? opts.ymax : (vals.length ? Math.max(...vals) : 1);
    if (opts.ymax == null && vals.length) {
      if (opts.niceMax) ymax = niceCeil(ymax);
      else if (ymax > ymin) ymax += (ymax - ymin) * 0.1;
    }
    if (opts.ymin == null && vals.length && ymax > ymin) {
      ymin = Math.max(0, ymin - (ymax - ymin) * 0.1);
    }
    if (!(ymax > ymin)) {
      const pad = Math.abs(ymax) * 0.1 || 1;
      ymax += pad;
      ymin = Math.max(0, ymin - pad);
      if (!(ymax > ymin)) ymax = ymin + 1;
    }
    const X = (x) => m.l + (x - xmin) / (xmax - xmin) * pw;
    const Y = (y) => m.t + ph - (y - ymin) / (ymax - ymin) * ph;
    const r1 = (v) => Math.round(v * 10) / 10;

    // grid and y labels
    const grid = svgEl('g', {class: 'grid'});
    const ylab = svgEl('g', {class: 'ylabels'});
    const GRID = 4;
    for (let i = 0; i <= GRID; i++) {
      const v = ymin + (ymax - ymin) * i / GRID;
      const y = r1(Y(v));
      grid.appendChild(svgEl('line', {x1: m.l, x2: m.l + pw, y1: y, y2: y}));
      if (i === 0 || i === GRID || i === GRID / 2) {
        ylab.appendChild(svgEl('text', {x: m.l - 6, y: y + 4, 'text-anchor': 'end', text: opts.fmt(v)}));
      }
    }
    svg.appendChild(grid);
    svg.appendChild(ylab);

    // x axis: start, middle, end times
    const xlab = svgEl('g', {class: 'xlabels'});
    [[xmin, 'start'], [(xmin + xmax) / 2, 'middle'], [xmax, 'end']].forEach(([x, anchor]) => {
      xlab.appendChild(svgEl('text', {x: r1(X(x)), y: H - 6, 'text-anchor': anchor, text: fmtClock(x)}));
    });
    svg.appendChild(xlab);
    svg.appendChild(svgEl('line', {class: 'axis', x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph}));
    svg.appendChild(svgEl('line', {class: 'axis', x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph}));

    if (!vals.length) {
      svg.appendChild(svgEl('text', {class: 'nodata', x: m.l + pw / 2, y: m.t + ph / 2,
                                     'text-anchor': 'middle', text: 'no data yet'}));
      return;
    }

    const visible = pts.filter((p) => p[0] >= xmin && p[0] <= xmax);
    if (opts.kind === 'bars') {
      // one bar per x step (a second); all bars in one path
      const step = pw / Math.max(1, (xmax - xmin));
      const bw = Math.max(1, Math.min(step * 0.8, 12));
      let d = '';
      for (const [x, y] of visible) {
        if (y == null || y <= ymin) continue;
        const top = Y(Math.min(y, ymax)), base = Y(ymin);
        d += 'M' + r1(X(x) - bw / 2) + ' ' + r1(base) + 'V' + r1(top) + 'h' + r1(bw) + 'V' + r1(base) + 'Z';
      }
      if (d) svg.appendChild(svgEl('path', {class: 'bars', d: d}));
    } else {
      // polyline segments (a null breaks the line) with a light area below
      let seg = [];
      const segs = [];
      for (const [x, y] of visible) {
        if (y == null) {
          if (seg.length) segs.push(seg);
          seg = [];
        } else seg.push([r1(X(x)), r1(Y(Math.max(ymin, Math.min(ymax, y))))]);
      }
      if (seg.length) segs.push(seg);
      const base = r1(Y(ymin));
      for (const s of segs) {
        const line = s.map((p) => p[0] + ',' + p[1]).join(' ');
        if (s.length > 1) {
          svg.appendChild(svgEl('path', {class: 'area',
            d: 'M' + s[0][0] + ' ' + base + 'L' + line.replace(/ /g, 'L').replace(/,/g, ' ') +
               'L' + s[s.length - 1][0] + ' ' + base + 'Z'}));
        }
        svg.appendChild(svgEl('polyline', {class: 'line', points: line}));
      }
      const last = segs.length ? segs[segs.length - 1] : null;
      if (last) {
        const p = last[last.length - 1];
        svg.appendChild(svgEl('circle', {class: 'dot', cx: p[0], cy: p[1], r: 3}));
      }
    }
    // the latest value, top right
    const lastVal = vals[vals.length - 1];
    svg.appendChild(svgEl('text', {class: 'current', x: m.l + pw, y: m.t - 10, 'text-anchor': 'end',
                                   text: 'latest ' + opts.fmt(lastVal)}));
  }

  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const f of [1, 2, 2.5, 5, 10]) {
      if (f * p >= v) return f * p;
    }
    return 10 * p;
  }

  function chartBox(title, testid, note) {
    const svg = svgEl('svg', {'data-testid': testid, class: 'chart', role: 'img', 'aria-label': title,
                              preserveAspectRatio: 'xMinYMin meet'});
    const sub = el('span', {cls: 'chart-note', text: note || ''});
    const box = el('section', {cls: 'card chart-card'},
                   el('div', {cls: 'chart-head'}, el('h3', {text: title}), sub));
    box.appendChild(svg);
    return {box: box, svg: svg, note: sub};
  }

  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const svg of document.querySelectorAll('svg.chart')) {
        if (svg._chart) drawChart(svg, svg._chart.pts, svg._chart.opts);
      }
    }, 150);
  });

  // ------------------------------------------------------------------
  // the views

  function viewHeader(title, crumbs) {
    const nav = el('div', {cls: 'crumbs'});
    for (const c of crumbs || []) {
      const link = Array.isArray(c) ? el('a', {href: c[1], text: c[0]}) : c;
      const sep = el('span', {cls: 'sep', text: '\u203a'});
      link._sep = sep;
      nav.appendChild(link);
      nav.appendChild(sep);
    }
    const h = el('h1', {text: title});
    nav.appendChild(h);
    return {box: nav, title: h};
  }

  function notFound(what) {
    return el('div', {cls: 'card notfound', testid: 'not-found'},
              el('p', {text: what + ' not found (it may have gone).'}),
              el('p', null, el('a', {href: '#/', text: '\u2190 back to the cluster'})));
  }

  function table(cols) {
    const thead = el('thead', null, el('tr', null, ...cols.map((c) => {
      if (typeof c === 'string') return el('th', {text: c});
      return el('th', {cls: c.cls || null, title: c.title || null}, c.node || c.text);
    })));
    const tbody = el('tbody');
    const t = el('table', {cls: 'data'}, thead, tbody);
    return {table: el('div', {cls: 'table-wrap'}, t), tbody: tbody, thead: thead};
  }

  function kv(pairs) {
    // definition list; returns {box, cells: {key: dd}}
    const dl = el('dl', {cls: 'kv'});
    const cells = {};
    for (const [key, label] of pairs) {
      const dd = el('dd');
      cells[key] = dd;
      dl.appendChild(el('div', null, el('dt', {text: label}), dd));
    }
    return {box: dl, cells: cells};
  }

  // ---- cluster

  function clusterView() {
    const root = el('section', {cls: 'view', testid: 'view-cluster'});
    const head = viewHeader('Cluster');
    root.appendChild(head.box);

    const totals = el('div', {cls: 'totals'});
    const tcells = {};
    for (const [k, label] of [['nodes', 'Nodes'], ['servers', 'Servers'], ['running', 'Running jobs'],
                              ['done', 'Done'], ['failed', 'Failed']]) {
      const v = el('span', {cls: 'total-value', testid: 'total-' + k, text: '0'});
      tcells[k] = v;
      const card = el('div', {cls: 'card total total-' + k}, el('span', {cls: 'total-label', text: label}), v);
      totals.appendChild(k === 'failed' ? el('a', {href: '#/failures', cls: 'total-link'}, card) : card);
    }
    root.appendChild(totals);

    const chart = chartBox('Jobs finished per second', 'chart-rate', 'last 5 minutes, done + failed');
    root.appendChild(chart.box);

    const t = table([
      'Node', 'Address', 'Status', {text: 'CPUs', cls: 'num'}, {text: 'Servers', cls: 'num'},
      {text: 'Running', cls: 'num'}, {text: 'Done', cls: 'num'}, {text: 'Failed', cls: 'num'},
      {text: 'Idle CPU', cls: 'num'}, {text: 'Free memory', cls: 'num'}, {text: 'Free disk', cls: 'num'},
      {text: 'Free swap', cls: 'num'}, 'Updated', {text: '', cls: 'actions'}]);
    root.appendChild(el('section', {cls: 'card'}, el('h2', {text: 'Nodes'}), t.table));

    function makeRow(n) {
      const tr = el('tr', {testid: 'node-row'});
      const c = tr._c = {};
      c.link = el('a', {testid: 'node-link'});
      c.sub = el('span', {cls: 'sub'});
      tr.appendChild(el('td', {cls: 'name'}, c.link, c.sub));
      for (const k of ['addr']) tr.appendChild(c[k] = el('td', {cls: 'mono'}));
      tr.appendChild(el('td', null, c.status = el('span', {testid: 'node-status'})));
      for (const k of ['cpus', 'servers', 'running', 'done', 'failed', 'cpu', 'memory', 'disk', 'swap']) {
        tr.appendChild(c[k] = el('td', {cls: 'num'}));
      }
      tr.appendChild(c.updated = el('td', {cls: 'ago', 'data-tick': 'ago'}));
      c.buttons = {
        suspend: actionButton('Suspend', 'node-suspend', 'warn', (b) => nodeAction(tr.dataset.id, 'suspend', b)),
        resume: actionButton('Resume', 'node-resume', 'go', (b) => nodeAction(tr.dataset.id, 'resume', b)),
      };
      tr.appendChild(el('td', {cls: 'actions'}, c.buttons.suspend, c.buttons.resume));
      return tr;
    }

    function updateRow(tr, n) {
      const c = tr._c;
      const href = nodeHref(n.id);
      if (c.link.getAttribute('href') !== href) c.link.setAttribute('href', href);
      setText(c.link, n.name || n.id);
      setText(c.sub, n.name && n.name !== n.id ? n.id : '');
      setText(c.addr, n.addr);
      statusBadge(c.status, n.status);
      setText(c.cpus, fmtInt(n.cpus));
      setText(c.servers, fmtInt(n.servers));
      setText(c.running, fmtInt(n.running));
      setText(c.done, fmtInt(n.done));
      setText(c.failed, fmtInt(n.failed));
      c.failed.classList.toggle('bad', (n.failed || 0) > 0);
      const a = n.avail || {};
      setText(c.cpu, fmtPct(a.cpu));
      setText(c.memory, fmtBytes(a.memory));
      setText(c.disk, fmtBytes(a.disk));
      setText(c.swap, fmtPct(a.swap));
      c.updated.dataset.t = n.updated == null ? '' : n.updated;
      setText(c.updated, fmtAgo(n.updated));
      c.updated.title = fmtTime(n.updated, true);
      showButtons(c.buttons, n.status);
    }

    return {
      root: root,
      onCluster(c) {
        const tt = c.totals || {};
        for (const k of Object.keys(tcells)) setText(tcells[k], num(tt[k]) == null ? 0 : tt[k]);
        const rate = Array.isArray(c.rate) ? c.rate : [];
        const end = rate.length ? Math.max(rate[rate.length - 1][0], Math.floor(num(c.time) || 0))
                                : Math.floor(num(c.time) || now());
        const total = rate.reduce((s, p) => s + (num(p[1]) || 0), 0);
        chart.note.textContent = 'last 5 minutes \u00b7 ' + fmtInt(total) + ' finished \u00b7 avg ' +
                                 (total / 300).toFixed(2) + '/s';
        drawChart(chart.svg, rate, {kind: 'bars', xmin: end - 300, xmax: end, ymin: 0, niceMax: true,
                                    label: 'jobs finished per second',
                                    fmt: (v) => (Math.round(v * 100) / 100) + '/s'});
        const nodes = Array.isArray(c.nodes) ? c.nodes.slice() : [];
        syncRows(t.tbody, nodes, makeRow, updateRow, 'No nodes yet.', 14);
      },
    };
  }

  // ---- node

  function nodeView(id) {
    const root = el('section', {cls: 'view', testid: 'view-node'});
    const head = viewHeader(id, [['Cluster', '#/']]);
    root.appendChild(head.box);
    const body = el('div');
    root.appendChild(body);

    const buttons = {
      suspend: actionButton('Suspend node', 'node-suspend', 'warn', (b) => nodeAction(id, 'suspend', b)),
      resume: actionButton('Resume node', 'node-resume', 'go', (b) => nodeAction(id, 'resume', b)),
    };
    const status = el('span', {testid: 'node-status'});
    const info = kv([['id', 'Id'], ['addr', 'Address'], ['status', 'Status'], ['platform', 'Platform'],
                     ['cpus', 'CPUs'], ['servers', 'Servers'], ['running', 'Running'], ['done', 'Done'],
                     ['failed', 'Failed'], ['cpu', 'Idle CPU'], ['memory', 'Free memory'],
                     ['disk', 'Free disk'], ['swap', 'Free swap'], ['updated', 'Updated']]);
    info.cells.status.appendChild(status);
    info.cells.updated.setAttribute('data-tick', 'ago');
    const details = el('section', {cls: 'card'},
                       el('div', {cls: 'card-head'}, el('h2', {text: 'Node'}),
                          el('div', {cls: 'buttons'}, buttons.suspend, buttons.resume)),
                       info.box);
    const cpu = chartBox('CPU busy %', 'chart-cpu', '100 \u2212 idle CPU, per availability report');
    const mem = chartBox('Free memory', 'chart-mem', 'bytes available, per availability report');
    const charts = el('div', {cls: 'charts'}, cpu.box, mem.box);

    const t = table(['Server', 'Status', {text: 'Running', cls: 'num'}, {text: 'Done', cls: 'num'},
                     {text: 'Failed', cls: 'num'}, {text: '', cls: 'actions'}]);
    const servers = el('section', {cls: 'card'}, el('h2', {text: 'Servers'}), t.table);
    const content = el('div', {cls: 'view-body'}, details, charts, servers);

    function makeRow() {
      const tr = el('tr', {testid: 'server-row'});
      const c = tr._c = {};
      c.link = el('a', {testid: 'server-link', cls: 'mono'});
      tr.appendChild(el('td', {cls: 'name'}, c.link));
      tr.appendChild(el('td', null, c.status = el('span', {testid: 'server-status'})));
      for (const k of ['running', 'done', 'failed']) tr.appendChild(c[k] = el('td', {cls: 'num'}));
      c.buttons = serverButtons(() => tr.dataset.id);
      tr.appendChild(el('td', {cls: 'actions'}, ...Object.values(c.buttons)));
      return tr;
    }

    function updateRow(tr, s) {
      const c = tr._c;
      const href = serverHref(s.id);
      if (c.link.getAttribute('href') !== href) c.link.setAttribute('href', href);
      setText(c.link, s.id);
      statusBadge(c.status, s.status);
      setText(c.running, fmtInt(s.running));
      setText(c.done, fmtInt(s.done));
      setText(c.failed, fmtInt(s.failed));
      c.failed.classList.toggle('bad', (s.failed || 0) > 0);
      showButtons(c.buttons, s.status);
    }

    let lastDoc = null;

    function render(doc) {
      lastDoc = doc;
      if (content.parentNode !== body) {
        clear(body);
        body.appendChild(content);
      }
      setText(head.title, doc.name ? doc.name : doc.id);
      document.title = (doc.name || doc.id) + ' \u00b7 pycos';
      const a = doc.avail || {};
      setText(info.cells.id, doc.id);
      setText(info.cells.addr, doc.addr);
      statusBadge(status, doc.status);
      setText(info.cells.platform, doc.platform);
      for (const k of ['cpus', 'servers', 'running', 'done', 'failed']) setText(info.cells[k], fmtInt(doc[k]));
      setText(info.cells.cpu, fmtPct(a.cpu));
      setText(info.cells.memory, fmtBytes(a.memory));
      setText(info.cells.disk, fmtBytes(a.disk));
      setText(info.cells.swap, fmtPct(a.swap));
      info.cells.updated.dataset.t = doc.updated == null ? '' : doc.updated;
      setText(info.cells.updated, fmtAgo(doc.updated));
      showButtons(buttons, doc.status);

      const series = Array.isArray(doc.series) ? doc.series : [];
      drawChart(cpu.svg, series.map((p) => [p[0], num(p[1]) == null ? null : 100 - p[1]]),
                {kind: 'line', ymin: 0, ymax: 100, label: 'CPU busy percent',
                 fmt: (v) => Math.round(v) + ' %'});
      drawChart(mem.svg, series.map((p) => [p[0], num(p[2])]),
                {kind: 'line', label: 'free memory', fmt: fmtBytes});
      const list = Array.isArray(doc.server_list) ? doc.server_list : [];
      syncRows(t.tbody, list, makeRow, updateRow, 'No servers.', 6);
    }

    const loader = docLoader('/api/node/' + encodeURIComponent(id), render, () => {
      lastDoc = null;
      clear(body);
      body.appendChild(notFound('Node ' + id));
    });

    return {
      root: root,
      refetch: loader.refetch,
      onCluster(c, changed) {
        if (changed) loader.refetch();
        else if (lastDoc) showButtons(buttons, lastDoc.status);
      },
      start: loader.refetch,
    };
  }

  function serverButtons(getId) {
    return {
      suspend: actionButton('Suspend', 'server-suspend', 'warn', (b) => serverAction(getId(), 'suspend', b)),
      resume: actionButton('Resume', 'server-resume', 'go', (b) => serverAction(getId(), 'resume', b)),
      close: actionButton('Close', 'server-close', 'danger', (b) => serverAction(getId(), 'close', b)),
      restart: actionButton('Restart', 'server-restart', '', (b) => serverAction(getId(), 'restart', b)),
    };
  }

  // ---- server

  function serverView(id) {
    const root = el('section', {cls: 'view', testid: 'view-server'});
    const nodeCrumb = el('a', {href: '#/', text: 'node'});
    const head = viewHeader('Server ' + id, [['Cluster', '#/'], nodeCrumb]);
    nodeCrumb.hidden = nodeCrumb._sep.hidden = true;
    root.appendChild(head.box);
    const body = el('div');
    root.appendChild(body);

    const buttons = serverButtons(() => id);
    const status = el('span', {testid: 'server-status'});
    const nodeLink = el('a');
    const info = kv([['id', 'Id'], ['node', 'Node'], ['status', 'Status'], ['running', 'Running'],
                     ['done', 'Done'], ['failed', 'Failed']]);
    info.cells.status.appendChild(status);
    info.cells.node.appendChild(nodeLink);
    const details = el('section', {cls: 'card'},
                       el('div', {cls: 'card-head'}, el('h2', {text: 'Server'}),
                          el('div', {cls: 'buttons'}, ...Object.values(buttons))),
                       info.box);

    const selected = new Set();
    const selectAll = el('input', {type: 'checkbox', title: 'select all jobs', 'aria-label': 'select all jobs'});
    const termSel = el('button', {type: 'button', cls: 'btn danger', testid: 'terminate-selected',
                                  text: 'Terminate selected', disabled: true});
    const selCount = el('span', {cls: 'muted sel-count'});
    const argsNote = el('span', {cls: 'muted'});
    const t = table([{node: selectAll, cls: 'check'}, {text: 'Job', cls: 'num'}, 'Name', 'Task', 'Args',
                     'Kwargs', 'Started', {text: 'Run time', cls: 'num'}, {text: '', cls: 'actions'}]);
    const jobsHead = el('div', {cls: 'card-head'}, el('h2', {text: 'Running jobs'}), argsNote,
                        el('span', {cls: 'spacer'}), selCount, termSel);
    const jobs = el('section', {cls: 'card'}, jobsHead, t.table);
    const content = el('div', {cls: 'view-body'}, details, jobs);
    let lastDoc = null, fetchedAt = 0;

    function updateSelection() {
      const ids = Array.from(t.tbody.querySelectorAll('tr[data-id]')).map((tr) => tr.dataset.id);
      for (const s of Array.from(selected)) if (ids.indexOf(s) < 0) selected.delete(s);
      termSel.disabled = !selected.size;
      termSel.hidden = !canAct();
      selectAll.hidden = !canAct();
      selectAll.checked = ids.length > 0 && selected.size === ids.length;
      selectAll.indeterminate = selected.size > 0 && selected.size < ids.length;
      setText(selCount, selected.size ? selected.size + ' selected' : '');
    }

    selectAll.addEventListener('change', () => {
      for (const tr of t.tbody.querySelectorAll('tr[data-id]')) {
        if (selectAll.checked) selected.add(tr.dataset.id);
        else selected.delete(tr.dataset.id);
        tr._c.check.checked = selectAll.checked;
        tr.classList.toggle('selected', selectAll.checked);
      }
      updateSelection();
    });

    function jobIds(keys) {
      // ids are numbers in the API; send them back as they came
      return keys.map((k) => {
        const tr = t.tbody.querySelector('tr[data-id="' + CSS.escape(k) + '"]');
        return tr && tr._job ? tr._job.id : (isNaN(Number(k)) ? k : Number(k));
      });
    }

    function terminate(keys, button) {
      const ids = jobIds(keys);
      act('terminate job' + (ids.length > 1 ? 's ' : ' ') + ids.join(', '), '/api/jobs/terminate',
          {jobs: ids}, button).then(() => {
        for (const k of keys) selected.delete(k);
        for (const tr of t.tbody.querySelectorAll('tr[data-id]')) {
          tr._c.check.checked = selected.has(tr.dataset.id);
          tr.classList.toggle('selected', selected.has(tr.dataset.id));
        }
        updateSelection();
      });
    }

    termSel.addEventListener('click', () => terminate(Array.from(selected), termSel));

    function makeRow() {
      const tr = el('tr', {testid: 'job-row'});
      const c = tr._c = {};
      c.check = el('input', {type: 'checkbox', testid: 'job-select', 'aria-label': 'select job'});
      c.check.addEventListener('change', () => {
        if (c.check.checked) selected.add(tr.dataset.id);
        else selected.delete(tr.dataset.id);
        tr.classList.toggle('selected', c.check.checked);
        updateSelection();
      });
      tr.appendChild(el('td', {cls: 'check'}, c.check));
      tr.appendChild(c.id = el('td', {cls: 'num mono'}));
      tr.appendChild(c.name = el('td'));
      tr.appendChild(c.task = el('td', {cls: 'mono clip'}));
      tr.appendChild(c.args = el('td', {cls: 'mono clip', testid: 'job-args'}));
      tr.appendChild(c.kwargs = el('td', {cls: 'mono clip', testid: 'job-kwargs'}));
      tr.appendChild(c.start = el('td'));
      tr.appendChild(c.runtime = el('td', {cls: 'num', testid: 'job-runtime', 'data-tick': 'runtime'}));
      c.term = actionButton('Terminate', 'job-terminate', 'danger small', (b) => terminate([tr.dataset.id], b));
      tr.appendChild(el('td', {cls: 'actions'}, c.term));
      return tr;
    }

    function argCell(td, v, show) {
      const hidden = !show;
      td.classList.toggle('muted', hidden || v == null);
      setText(td, hidden ? 'hidden' : v);
      td.title = (hidden || v == null) ? '' : v;
    }

    function updateRow(tr, j) {
      const c = tr._c;
      tr._job = j;
      const show = !(state.cluster && state.cluster.show_task_args === false);
      setText(c.id, j.id);
      setText(c.name, j.name);
      setText(c.task, j.task);
      c.task.title = j.task || '';
      argCell(c.args, j.args, show);
      argCell(c.kwargs, j.kwargs, show);
      setText(c.start, fmtTime(j.start_time));
      c.start.title = fmtTime(j.start_time, true);
      c.runtime._job = j;
      setText(c.runtime, fmtDuration(jobRuntime(j)));
      c.check.checked = selected.has(tr.dataset.id);
      c.check.hidden = !canAct();
      c.term.hidden = !canAct();
      tr.classList.toggle('selected', c.check.checked);
    }

    function jobRuntime(j) {
      if (num(j.start_time) != null) return now() - j.start_time;
      if (num(j.run_time) != null) return j.run_time + (Date.now() / 1000 - fetchedAt);
      return null;
    }

    function render(doc) {
      lastDoc = doc;
      fetchedAt = Date.now() / 1000;
      if (num(doc.time) != null) state.skew = doc.time - fetchedAt;
      if (content.parentNode !== body) {
        clear(body);
        body.appendChild(content);
      }
      const node = doc.node ? findNode(doc.node) : null;
      const nodeName = node && node.name ? node.name : doc.node;
      if (doc.node) {
        nodeCrumb.setAttribute('href', nodeHref(doc.node));
        setText(nodeCrumb, nodeName);
        nodeLink.setAttribute('href', nodeHref(doc.node));
      } else nodeLink.removeAttribute('href');
      nodeCrumb.hidden = nodeCrumb._sep.hidden = !doc.node;
      setText(nodeLink, doc.node ? nodeName + (nodeName !== doc.node ? ' (' + doc.node + ')' : '') : null);
      document.title = 'server ' + doc.id + ' \u00b7 pycos';
      setText(info.cells.id, doc.id);
      statusBadge(status, doc.status);
      for (const k of ['running', 'done', 'failed']) setText(info.cells[k], fmtInt(doc[k]));
      showButtons(buttons, doc.status);
      const show = !(state.cluster && state.cluster.show_task_args === false);
      setText(argsNote, show ? '' : 'job arguments are hidden (show_task_args=False)');
      const list = Array.isArray(doc.jobs) ? doc.jobs : [];
      syncRows(t.tbody, list, makeRow, updateRow, 'No jobs running.', 9);
      for (const tr of t.tbody.querySelectorAll('tr[data-id]')) tr._c.runtime._fn = jobRuntime;
      updateSelection();
    }

    const loader = docLoader('/api/server/' + encodeURIComponent(id), render, () => {
      lastDoc = null;
      clear(body);
      body.appendChild(notFound('Server ' + id));
    });

    return {
      root: root,
      refetch: loader.refetch,
      onCluster(c, changed) {
        if (changed) loader.refetch();
        else if (lastDoc) showButtons(buttons, lastDoc.status);
      },
      start: loader.refetch,
    };
  }

  // ---- failures

  function failuresView() {
    const root = el('section', {cls: 'view', testid: 'view-failures'});
    const head = viewHeader('Failures', [['Cluster', '#/']]);
    root.appendChild(head.box);
    const note = el('p', {cls: 'muted', text: 'The last 100 failed jobs, newest first.'});
    root.appendChild(note);
    const list = el('div', {cls: 'failures'});
    root.appendChild(list);

    function nodeLabel(id) {
      const n = findNode(id);
      return n && n.name ? n.name : id;
    }

    function linkOrNA(href, text) {
      return text == null ? document.createTextNode(NA) : el('a', {href: href, cls: 'mono', text: text});
    }

    function card(f) {
      const show = !(state.cluster && state.cluster.show_task_args === false);
      const field = (label, ...value) => el('div', {cls: 'ff'}, el('span', {cls: 'fl', text: label}), ...value);
      const argsText = show ? (f.args == null ? NA : f.args) : 'hidden';
      const kwText = show ? (f.kwargs == null ? NA : f.kwargs) : 'hidden';
      const tb = el('pre', {cls: 'traceback', testid: 'failure-traceback', text: f.value == null ? NA : f.value});
      return el('article', {cls: 'card failure', testid: 'failure-row', 'data-id': String(f.id)},
        el('div', {cls: 'failure-head'},
           el('span', {cls: 'ftype', testid: 'failure-type', text: f.type == null ? 'error' : f.type}),
           el('strong', {text: (f.name == null ? 'job' : f.name) + (f.id == null ? '' : ' #' + f.id)}),
           el('span', {cls: 'spacer'}),
           el('time', {cls: 'muted', text: fmtTime(f.time, true)})),
        el('div', {cls: 'failure-fields'},
           field('task', el('span', {cls: 'mono', text: f.task == null ? NA : f.task})),
           field('server', linkOrNA(serverHref(f.server), f.server)),
           field('node', linkOrNA(nodeHref(f.node), f.node == null ? null : nodeLabel(f.node))),
           field('args', el('span', {cls: 'mono' + (show ? '' : ' muted'), testid: 'failure-args', text: argsText})),
           field('kwargs', el('span', {cls: 'mono' + (show ? '' : ' muted'), text: kwText}))),
        el('details', null, el('summary', {text: 'traceback'}), tb));
    }

    function render(doc) {
      const items = Array.isArray(doc) ? doc.slice() : [];
      items.sort((a, b) => (num(b.time) || 0) - (num(a.time) || 0));
      // keep the cards that are already there (and their open/closed state)
      const old = new Map();
      for (const c of Array.from(list.children)) {
        if (c.dataset.id !== undefined) old.set(c.dataset.id + '|' + c.dataset.time, c);
        else list.removeChild(c);
      }
      let prev = null;
      for (const f of items) {
        const key = String(f.id) + '|' + String(f.time);
        let c = old.get(key);
        if (c) old.delete(key);
        else {
          c = card(f);
          c.dataset.time = String(f.time);
        }
        const want = prev ? prev.nextSibling : list.firstChild;
        if (want !== c) list.insertBefore(c, want);
        prev = c;
      }
      for (const c of old.values()) list.removeChild(c);
      if (!items.length) list.appendChild(el('p', {cls: 'card empty-note', text: 'No failed jobs.'}));
    }

    const loader = docLoader('/api/failures', render, () => {
      clear(list);
      list.appendChild(notFound('The failures list'));
    });
    return {
      root: root,
      refetch: loader.refetch,
      onCluster(c, changed) {
        if (changed) loader.refetch();
      },
      start: loader.refetch,
    };
  }

  // Fetches a view's document, at most ~4 times a second, one at a time.
  function docLoader(url, onDoc, onNotFound) {
    let busy = false, again = false, last = 0, timer = null, dead = false;

    async function run() {
      timer = null;
      if (dead) return;
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      last = Date.now();
      try {
        const r = await getJSON(url);
        if (dead) return;
        if (r.notFound) onNotFound();
        else onDoc(r.doc);
      } catch (e) {
        if (!dead) setConnHint(e);
      } finally {
        busy = false;
        if (again && !dead) {
          again = false;
          refetch();
        }
      }
    }

    function refetch() {
      if (dead || timer) return;
      const wait = Math.max(0, 250 - (Date.now() - last));
      timer = setTimeout(run, wait);
    }

    refetch.stop = () => {
      dead = true;
      clearTimeout(timer);
    };
    return {refetch: refetch};
  }

  function setConnHint() {
    // a view's fetch failed: the poll / stream logic decides the state
    if (state.conn !== 'live') poll();
  }

  // ------------------------------------------------------------------
  // routing

  function parseRoute() {
    const h = (location.hash || '#/').replace(/^#\/?/, '');
    const parts = h.split('/');
    const dec = (s) => {
      try {
        return decodeURIComponent(s);
      } catch (e) {
        return s;
      }
    };
    if (parts[0] === 'node' && parts[1]) return {view: 'node', id: dec(parts.slice(1).join('/'))};
    if (parts[0] === 'server' && parts[1]) return {view: 'server', id: dec(parts.slice(1).join('/'))};
    if (parts[0] === 'failures') return {view: 'failures'};
    return {view: 'cluster'};
  }

  function route() {
    const r = parseRoute();
    if (state.view && state.view.refetch && state.view.refetch.stop) state.view.refetch.stop();
    state.route = r;
    let v;
    if (r.view === 'node') v = nodeView(r.id);
    else if (r.view === 'server') v = serverView(r.id);
    else if (r.view === 'failures') v = failuresView();
    else v = clusterView();
    state.view = v;
    if (r.view === 'cluster' || r.view === 'failures') {
      document.title = (r.view === 'failures' ? 'failures' : 'cluster') + ' \u00b7 pycos';
    }
    const main = document.getElementById('main');
    clear(main);
    main.appendChild(v.root);
    document.getElementById('nav-cluster').classList.toggle('active', r.view === 'cluster');
    document.getElementById('nav-failures').classList.toggle('active', r.view === 'failures');
    if (state.cluster) v.onCluster(state.cluster, false);
    if (v.start) v.start();
    window.scrollTo(0, 0);
  }

  // ------------------------------------------------------------------
  // the cluster document: live stream, with polling as a fallback

  function applyControls() {
    const may = canAct();
    document.getElementById('readonly-note').hidden = may;
    document.body.classList.toggle('readonly', !may);
  }

  function onCluster(c) {
    if (!c || typeof c !== 'object') return;
    const changed = c.version !== state.version;
    state.cluster = c;
    state.version = c.version;
    if (num(c.time) != null) state.skew = c.time - Date.now() / 1000;
    if (num(c.poll_sec) != null && c.poll_sec >= 1) state.pollSec = c.poll_sec;
    const cl = c.client || {};
    const name = document.getElementById('client-name');
    setText(name, cl.name || cl.location || '');
    name.title = 'dispycos client' + (cl.location ? ' at ' + cl.location : '') +
                 (cl.started ? ', started ' + fmtTime(cl.started, true) : '');
    const failed = (c.totals && num(c.totals.failed)) || 0;
    const badge = document.getElementById('nav-failed-count');
    setText(badge, failed);
    badge.classList.toggle('bad', failed > 0);
    applyControls();
    if (state.view) state.view.onCluster(c, changed);
  }

  let es = null, esRetry = null, esDelay = 2000;
  let pollTimer = null;

  function setConn(s) {
    state.conn = s;
    const e = document.getElementById('conn-state');
    setText(e, s);
    e.className = 'conn conn-' + s;
    e.title = {live: 'live updates from the server',
               polling: 'live stream down: polling every ' + state.pollSec + ' s',
               offline: 'cannot reach the server'}[s];
  }

  let pollPromise = null;

  function poll() {  // one fetch of /api/cluster (shared while in flight)
    if (!pollPromise) {
      pollPromise = (async () => {
        try {
          const r = await getJSON('/api/cluster');
          if (r.doc) {
            if (state.conn !== 'live' && pollTimer) setConn('polling');
            onCluster(r.doc);
          }
        } catch (e) {
          if (state.conn !== 'live' && !es) setConn('offline');
        } finally {
          pollPromise = null;
        }
      })();
    }
    return pollPromise;
  }

  function startPolling() {
    if (pollTimer) return;
    const tick = async () => {
      await poll();
      if (pollTimer) pollTimer = setTimeout(tick, state.pollSec * 1000);
    };
    pollTimer = setTimeout(tick, 0);
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  function connect() {
    clearTimeout(esRetry);
    esRetry = null;
    if (es) es.close();
    if (typeof EventSource === 'undefined') {
      startPolling();
      return;
    }
    const src = es = new EventSource('/api/events', {withCredentials: false});
    src.addEventListener('open', () => {
      if (src !== es) return;
      esDelay = 2000;
      setConn('live');
      stopPolling();
    });
    src.addEventListener('cluster', (ev) => {
      if (src !== es) return;
      let doc;
      try {
        doc = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      if (state.conn !== 'live') {
        setConn('live');
        stopPolling();
      }
      onCluster(doc);
    });
    src.addEventListener('error', () => {
      if (src !== es) return;
      src.close();
      es = null;
      if (state.conn === 'live') setConn('polling');
      startPolling();
      esRetry = setTimeout(connect, esDelay);
      esDelay = Math.min(esDelay * 2, 30000);
    });
  }

  // once a second: relative times and job run times
  function tick() {
    const main = document.getElementById('main');
    for (const e of main.querySelectorAll('[data-tick]')) {
      if (e.dataset.tick === 'ago') {
        if (e.dataset.t) setText(e, fmtAgo(Number(e.dataset.t)));
      } else if (e.dataset.tick === 'runtime' && e._job && e._fn) {
        setText(e, fmtDuration(e._fn(e._job)));
      }
    }
  }

  function start() {
    applyControls();
    setConn('offline');
    window.addEventListener('hashchange', route);
    route();
    poll();
    connect();
    setInterval(tick, 1000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
