// The dashboard's only script (embedded in the binary; the CSP allows no
// other). It polls the daemon and updates the page with DOM calls and
// textContent only: data from the daemon is never parsed as HTML.
'use strict';

const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || '';

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

async function getJson(url) {
  const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (r.status === 401) { window.location.assign('/ui/login'); throw new Error('logged out'); }
  if (!r.ok) throw new Error(url + ': ' + r.status);
  return r.json();
}

// Elements with data-live="a.b" show the value at that path.
function fillLive(data) {
  for (const e of document.querySelectorAll('[data-live]')) {
    let v = data;
    for (const k of e.dataset.live.split('.')) v = v == null ? v : v[k];
    if (v !== undefined) e.textContent = v === null ? '–' : String(v);
  }
}

const COLOURS = ['#2456c7', '#b3261e', '#1b7d3a', '#b86e00', '#7b3fb8', '#00838f', '#c2185b',
  '#5d6b00', '#6d4c41', '#455a64', '#ef6c00', '#3949ab', '#00897b', '#8e24aa', '#43a047', '#d81b60'];

// Draws series (arrays of [t, value]) on a canvas over the last hour.
function draw(canvas, legend, names, series) {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, pad = 40;
  ctx.clearRect(0, 0, W, H);
  let tmax = 0, vmax = 1;
  for (const s of series) for (const [t, v] of s) { tmax = Math.max(tmax, t); vmax = Math.max(vmax, v); }
  const tmin = tmax - 3600;
  ctx.strokeStyle = '#d9dde4'; ctx.fillStyle = '#5b6475'; ctx.font = '11px sans-serif';
  for (let i = 0; i <= 4; i++) {
    const y = H - pad / 2 - (H - pad) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(W - 5, y); ctx.stroke();
    ctx.fillText(fmt(vmax * i / 4), 2, y + 4);
  }
  ctx.fillText('-60 min', pad, H - 3); ctx.fillText('now', W - 30, H - 3);
  legend.replaceChildren();
  series.forEach((s, i) => {
    if (!s.some(([, v]) => v > 0)) return;
    const colour = COLOURS[i % COLOURS.length];
    ctx.strokeStyle = colour; ctx.lineWidth = 1.5; ctx.beginPath();
    s.forEach(([t, v], j) => {
      const x = pad + (W - pad - 5) * (t - tmin) / 3600;
      const y = H - pad / 2 - (H - pad) * v / vmax;
      if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
    const li = el('li');
    const sw = el('span', { class: 'swatch' }); sw.style.background = colour;
    li.append(sw, document.createTextNode(names[i] + ': ' + fmt(s.length ? s[s.length - 1][1] : 0) + '/s'));
    legend.append(li);
  });
  if (!legend.children.length) legend.append(el('li', {}, 'nothing counted in the last hour'));
}

function fmt(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (v >= 1e3) return (v / 1e3).toFixed(1) + 'k';
  return v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(1);
}

function fillRows(tbody, rows, cells) {
  tbody.replaceChildren(...rows.map(r => {
    const tr = el('tr');
    for (const c of cells(r)) tr.append(el('td', {}, c));
    return tr;
  }));
}

// The overview: every second, the points after the last one it has.
function overview(root) {
  let points = [], since = 0, seq = 0, changes = [], findings = null;
  const windowPick = document.getElementById('tops-window');
  // The findings' tops of the window chosen (the last hour or five minutes).
  const showFindings = () => {
    if (!findings) return;
    const w = windowPick && windowPick.value === 'short' ? 'short' : 'hour';
    const t = findings[w];
    document.getElementById('tops-summary').textContent = findings.summary[w];
    for (const [id, rows] of [['top-rules', t.rules], ['top-paths', t.paths],
      ['top-finding-sources', t.sources], ['top-kinds', t.kinds]]) {
      fillRows(document.querySelector('#' + id + ' tbody'), rows, r => r);
    }
  };
  if (windowPick) windowPick.addEventListener('change', showFindings);
  const tick = async () => {
    try {
      const d = await getJson(root.dataset.poll + '?since=' + since + '&seq=' + seq);
      points = points.concat(d.points).filter(p => p.t > d.now - 3600);
      if (points.length) since = points[points.length - 1].t;
      fillLive(d);
      const v = d.verdicts;
      const pick = dropped => v.map((x, i) => [x, i]).filter(([x]) => x.dropped === dropped);
      for (const [id, dropped] of [['dropped', true], ['passed', false]]) {
        const chosen = pick(dropped);
        draw(document.getElementById('chart-' + id), document.getElementById('legend-' + id),
          chosen.map(([x]) => x.name), chosen.map(([, i]) => points.map(p => [p.t, p.packets[i]])));
      }
      draw(document.getElementById('chart-requests'), document.getElementById('legend-requests'),
        d.requests_names.concat(d.inspection_names),
        d.requests_names.map((_, i) => points.map(p => [p.t, p.requests[i]])).concat(
          d.inspection_names.map((_, i) => points.map(p => [p.t, (p.inspection || [])[i] || 0]))));
      findings = d.findings;
      showFindings();
      if (d.changes.length) { seq = d.changes[0].seq; changes = d.changes.concat(changes).slice(0, 20); }
      fillRows(document.querySelector('#recent tbody'), changes,
        c => [new Date(c.t * 1000).toLocaleTimeString(), c.what, c.addr, c.reason, c.source]);
      fillRows(document.querySelector('#top-sources tbody'), d.tops.sources, r => r);
      fillRows(document.querySelector('#top-reasons tbody'), d.tops.reasons, r => r);
    } catch (e) { console.warn(e); }
  };
  tick(); setInterval(tick, 1000);
}

function hidden(name, value) { return el('input', { type: 'hidden', name, value }); }

function banRow(b, back) {
  const tr = el('tr', { 'data-addr': b.addr });
  const source = b.origin ? b.source + ' (' + b.origin + ')' : b.source;
  const expires = b.expires ? b.expires.replace('T', ' ') + ' (' + b.remaining_s + 's left)' : 'permanent';
  tr.append(el('td', { class: 'mono' }, b.addr), el('td', {}, b.reason), el('td', {}, source),
    el('td', {}, b.created.replace('T', ' ')), el('td', {}, expires), el('td', {}, b.offence));
  const td = el('td');
  const lift = el('form', { method: 'post', action: '/ui/bans/remove', class: 'inline' });
  lift.append(hidden('csrf', csrf()), hidden('addr', b.addr), hidden('back', back),
    el('button', { type: 'submit' }, 'Lift'));
  const ext = el('form', { method: 'post', action: '/ui/bans/extend', class: 'inline extend' });
  ext.append(hidden('csrf', csrf()), hidden('addr', b.addr), hidden('back', back),
    el('input', { name: 'duration', value: '24h', size: '5', 'aria-label': 'duration' }),
    el('input', { name: 'reason', value: b.reason, size: '14', 'aria-label': 'reason' }),
    el('button', { type: 'submit' }, 'Extend'));
  td.append(lift, ext);
  tr.append(td);
  return tr;
}

// The bans page: its own search again every two seconds (rows being
// edited are left alone).
function bans(root) {
  const url = root.dataset.poll;
  const back = url.replace('/ui/bans.json?', '/ui/bans?');
  const tbody = document.querySelector('#bans tbody');
  const tick = async () => {
    if (document.activeElement && document.activeElement.closest('#bans')) return;
    try {
      const d = await getJson(url);
      tbody.replaceChildren(...d.bans.map(b => banRow(b, back)));
      const summary = document.getElementById('bans-summary');
      if (summary) summary.firstChild.textContent = summary.firstChild.textContent.replace(/^\d+/, d.total);
    } catch (e) { console.warn(e); }
  };
  setInterval(tick, 2000);
}

document.addEventListener('DOMContentLoaded', () => {
  const o = document.getElementById('overview');
  if (o) overview(o);
  const b = document.getElementById('bans-poll');
  if (b) bans(b);
});
