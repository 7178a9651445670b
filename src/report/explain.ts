// The explain page: one self-contained file (styles, data and script inline, nothing fetched) with a
// slider over the merge ratios explain computed. Moving it marks the ratio on the accuracy curve (each
// rule and L1 pruning, before fine-tuning), fills the clusters table with that ratio's figures,
// recolours each layer's unit map by its clusters (units still alone in grey), moves each dendrogram's
// cut, and clicking a unit shows its cluster's members' incoming weights beside the unit that replaced
// them (or the unit a kept-unit rule keeps).
import type { ExplainView } from './types.js';
import { cutHeight, dendrogramLayout, esc, paddedSpan, ruleText } from './html.js';
import { writeFileAtomic } from '../runtime/files.js';

/** most incoming weights the page embeds per layer (all units together); larger layers show a part */
export const WEIGHTS_PER_LAYER = 200_000;
/** most input channels drawn per convolution filter */
const MAX_CHANNELS = 16;
/** most inputs drawn as bars per linear unit */
const MAX_BARS = 512;

/** which incoming weights of a unit the page draws and how: `cols` index the fan-in */
export interface WeightDrawing {
  kind: 'tiles' | 'rgb' | 'bars';
  /** tiles: channels drawn, each rows × columns; rgb: one tile; bars: 1 × columns */
  channels: number;
  rows: number;
  cols: number;
  index: Int32Array;
  /** what part of the weights is shown ('' where all are) */
  part: string;
}

/** what of a layer's incoming weights the page draws, within WEIGHTS_PER_LAYER */
export function weightDrawing(shape: number[], units: number, budget = WEIGHTS_PER_LAYER): WeightDrawing {
  const range = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  if (shape.length === 3 && shape[0] === 3 && units * shape[0] * shape[1] * shape[2] <= budget) {
    return { kind: 'rgb', channels: 3, rows: shape[1], cols: shape[2], index: range(3 * shape[1] * shape[2]), part: '' };
  }
  if (shape.length === 3 && shape[0] === 1 && shape[1] === shape[2] && shape[1] >= 8) {
    // an image (a linear layer reading pixels): every t-th pixel each way
    const s = shape[1];
    let t = 1;
    while (units * Math.ceil(s / t) ** 2 > budget) t++;
    const keep = range(s).filter((i) => i % t === 0);
    const index = Int32Array.from(Array.from(keep).flatMap((i) => Array.from(keep, (j) => i * s + j)));
    return { kind: 'tiles', channels: 1, rows: keep.length, cols: keep.length, index, part: t > 1 ? `every ${t === 2 ? 'second' : `${t}th`} pixel each way of the ${s} × ${s} input` : '' };
  }
  if (shape.length === 3) {
    const [C, kh, kw] = shape;
    const c = Math.max(1, Math.min(C, MAX_CHANNELS, Math.floor(budget / (units * kh * kw))));
    return { kind: 'tiles', channels: c, rows: kh, cols: kw, index: range(c * kh * kw), part: c < C ? `the first ${c} of ${C} input channels` : '' };
  }
  const d = shape.reduce((a, b) => a * b, 1);
  const m = Math.min(d, MAX_BARS, Math.max(16, Math.floor(budget / units)));
  return { kind: 'bars', channels: 1, rows: 1, cols: m, index: range(m), part: m < d ? `the first ${m} of ${d} inputs` : '' };
}

/** rows of W (rows × d) at columns `index`, as int8 with a scale per row: w ≈ q · scale */
export function encodeRows(W: Float32Array, rows: number[], d: number, index: Int32Array): { q: string; s: number[] } {
  const q = new Int8Array(rows.length * index.length);
  const s = rows.map((u, r) => {
    let m = 0;
    for (const i of index) m = Math.max(m, Math.abs(W[u * d + i]));
    const scale = m / 127;
    if (m > 0) index.forEach((i, c) => (q[r * index.length + c] = Math.round(W[u * d + i] / scale)));
    return +scale.toPrecision(6);
  });
  return { q: Buffer.from(q.buffer).toString('base64'), s };
}

const pct = (x: number) => (100 * x).toFixed(2) + '%';
const f1 = (v: number) => v.toFixed(1);

const RULE_COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22'];

/** the accuracy curve: a line per rule and one for pruning against the ratio, the original as a grey
 * line, and the marker the slider moves (to `x[i]` at the i-th ratio) */
function curveSvg(v: ExplainView): { svg: string; x: number[] } {
  const W = 640, H = 300, L = 50, R = 150, T = 20, B = 42;
  const rs = v.ratios.map((r) => r.ratio);
  const x0 = rs[0], x1 = rs.length > 1 ? rs[rs.length - 1] : rs[0] + 0.1;
  const px = (x: number) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (y: number) => H - B - y * (H - T - B);
  const series = [...v.rules.map((rule, i) => ({ name: `merged (${rule})`, colour: RULE_COLOURS[i % RULE_COLOURS.length], dash: '', ys: v.ratios.map((r) => r.accuracy[rule]) })),
    { name: 'pruned (L1)', colour: '#222', dash: ' stroke-dasharray="5,3"', ys: v.ratios.map((r) => r.pruned) }];
  const lines = series.map((s, i) => {
    const pts = s.ys.map((y, j) => `${f1(px(rs[j]))},${f1(py(y))}`);
    return `<polyline class="series" data-name="${esc(s.name)}" points="${pts.join(' ')}" fill="none" stroke="${s.colour}" stroke-width="1.8"${s.dash}/>`
      + s.ys.map((y, j) => `<circle class="point" data-series="${i}" data-ratio="${j}" cx="${f1(px(rs[j]))}" cy="${f1(py(y))}" r="2.5" fill="${s.colour}"><title>${esc(s.name)} at ratio ${rs[j]}: ${pct(y)}</title></circle>`).join('')
      + `<line x1="${W - R + 10}" y1="${T + 8 + 16 * i}" x2="${W - R + 30}" y2="${T + 8 + 16 * i}" stroke="${s.colour}" stroke-width="2"${s.dash}/><text x="${W - R + 34}" y="${T + 11 + 16 * i}">${esc(s.name)}</text>`;
  });
  const yt = [0, 0.25, 0.5, 0.75, 1].map((t) => `<line x1="${L - 3}" x2="${W - R}" y1="${f1(py(t))}" y2="${f1(py(t))}" stroke="#eee"/><text x="${L - 5}" y="${f1(py(t) + 3)}" text-anchor="end">${100 * t}%</text>`);
  const xt = rs.map((r) => `<text x="${f1(px(r))}" y="${H - B + 14}" text-anchor="middle">${r}</text>`);
  const svg = [
    `<svg class="curve" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-size="10" font-family="sans-serif">`,
    ...yt, ...xt,
    `<line x1="${L}" x2="${W - R}" y1="${f1(py(v.original.accuracy))}" y2="${f1(py(v.original.accuracy))}" stroke="#999" stroke-width="1"/><text x="${L + 4}" y="${f1(py(v.original.accuracy) - 4)}" fill="#777">original ${pct(v.original.accuracy)}</text>`,
    `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">merge ratio (the share of units removed in every layer)</text>`,
    `<text transform="translate(12,${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">test accuracy before fine-tuning</text>`,
    `<line class="marker" x1="${f1(px(rs[0]))}" x2="${f1(px(rs[0]))}" y1="${T}" y2="${H - B}" stroke="#c00" stroke-width="1.5"/>`,
    ...lines,
    '</svg>',
  ].join('\n');
  return { svg, x: rs.map((r) => +px(r).toFixed(1)) };
}

/** a layer's map: a dot per unit at its place in the plane of the first two principal components; the
 * script colours them and draws the merged units */
function mapSvg(l: ExplainView['layers'][number], q: number): { svg: string; x: number[]; y: number[] } {
  const W = 340, H = 300, L = 40, R = 10, T = 26, B = 34;
  const [x0, x1] = paddedSpan(l.map.x), [y0, y1] = paddedSpan(l.map.y);
  const X = l.map.x.map((x) => +(L + ((x - x0) / (x1 - x0)) * (W - L - R)).toFixed(1));
  const Y = l.map.y.map((y) => +(H - B - ((y - y0) / (y1 - y0)) * (H - T - B)).toFixed(1));
  const r = l.units > 400 ? 2.2 : 3.5;
  const dots = X.map((x, u) => `<circle class="unit" data-unit="${u}" cx="${x}" cy="${Y[u]}" r="${r}" fill="#bbb"/>`);
  return {
    x: X, y: Y,
    svg: [
      `<svg class="unit-map" data-layer="${q}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-size="10" font-family="sans-serif">`,
      `<text x="${W / 2}" y="13" text-anchor="middle" font-weight="bold">${esc(l.layer)}</text>`,
      `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`,
      `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">first principal component (${(100 * l.map.explained[0]).toFixed(0)}%)</text>`,
      `<text transform="translate(12,${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">second (${(100 * l.map.explained[1]).toFixed(0)}%)</text>`,
      `<g class="dots">${dots.join('')}</g><g class="marks"></g>`,
      '</svg>',
    ].join('\n'),
  };
}

/** a layer's dendrogram: links in tree order, each knowing its merge's rank and first leaf; the script
 * colours those below the cut and moves the cut to each ratio's */
function treeSvg(l: ExplainView['layers'][number], q: number, ks: number[]): { svg: string; first: number[]; cutY: number[] } {
  const tree = l.tree!;
  const n = tree.length + 1;
  const W = 720, H = 230, L = 50, R = 12, T = 24, B = 30;
  const { x, first } = dendrogramLayout(tree);
  const top = Math.max(1e-30, tree[n - 2]?.height ?? 0, ...ks.map((k) => cutHeight(tree, k))) * 1.04;
  const px = (i: number) => L + ((i + 0.5) / n) * (W - L - R);
  const py = (h: number) => H - B - (h / top) * (H - T - B);
  const height = (id: number) => (id < n ? 0 : tree[id - n].height);
  const links = tree.map((m, i) => `<path class="link" data-rank="${i}" d="M${f1(px(x[m.a]))},${f1(py(height(m.a)))}V${f1(py(m.height))}H${f1(px(x[m.b]))}V${f1(py(height(m.b)))}" fill="none" stroke="#999" stroke-width="${n > 300 ? 0.6 : 1.2}"/>`);
  return {
    first: tree.map((_, i) => first[n + i]),
    cutY: ks.map((k) => +py(cutHeight(tree, k)).toFixed(1)),
    svg: [
      `<svg class="dendrogram" data-layer="${q}" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-size="10" font-family="sans-serif">`,
      `<text x="${W / 2}" y="13" text-anchor="middle" font-weight="bold">${esc(l.layer)}</text>`,
      `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#999"/>`,
      `<text transform="translate(12,${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">merge distance</text>`,
      `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">${n} units in tree order; coloured: the clusters below the cut</text>`,
      ...links,
      `<line class="cut" x1="${L}" x2="${W - R}" y1="0" y2="0" stroke="#c00" stroke-dasharray="5,3"/>`,
      '</svg>',
    ].join('\n'),
  };
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:1150px;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.8em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.facts td{text-align:left}
#control{position:sticky;top:0;background:#fff;padding:.6em 0;border-bottom:1px solid #ddd;z-index:2}
#control input{width:420px;vertical-align:middle}#where{margin-left:1em;font-weight:bold}
.maps{display:flex;flex-wrap:wrap;gap:8px}.unit-map circle.unit{cursor:pointer}
#members{border:1px solid #bbb;padding:.6em 1em;margin:1em 0;min-height:3em;background:#fafafa}
#members canvas{border:1px solid #bbb;margin:2px;image-rendering:pixelated;vertical-align:middle}
#members canvas.replacement{border:2px solid #222}.arrow{margin:0 8px;font-size:18px}
.unitrow{display:inline-block;text-align:center;font-size:11px;margin:2px}figcaption,.note{font-size:13px;color:#555;max-width:62em}`;

/** the page's script: reads the embedded data and draws the ratio the slider is at */
const SCRIPT = String.raw`
const D = JSON.parse(document.getElementById('data').textContent);
const hue = (key) => 'hsl(' + Math.round((key * 137.508) % 360) + ', 65%, 45%)';
const pct = (x) => (100 * x).toFixed(2) + '%';
const SVG = 'http://www.w3.org/2000/svg';
const slider = document.getElementById('ratio');
let selected = null; // [layer, unit]
function decode(e, len) {
  const raw = atob(e.q), bytes = new Int8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = (raw.charCodeAt(i) << 24) >> 24;
  return e.s.map((s, r) => Array.from(bytes.subarray(r * len, (r + 1) * len), (v) => v * s));
}
const weights = D.layers.map((l) => decode(l.w, l.draw.index));
const replacements = new Map(); // 'ratio,layer' → the decoded replacing units
function replacing(i, q) {
  const key = i + ',' + q, e = D.ratios[i].layers[q].rep;
  if (!e) return null;
  if (!replacements.has(key)) replacements.set(key, decode(e, D.layers[q].draw.index));
  return replacements.get(key);
}
function groupsOf(g) {
  const m = new Map();
  g.forEach((k, u) => { if (!m.has(k)) m.set(k, []); m.get(k).push(u); });
  return m;
}
function draw(i) {
  const r = D.ratios[i];
  slider.value = i;
  document.getElementById('where').textContent = 'ratio ' + r.ratio + ': ' + (100 * r.removed).toFixed(1) + '% of the parameters removed (' + r.params.toLocaleString('en') + ' left)';
  const marker = document.querySelector('svg.curve line.marker');
  const px = D.curveX[i];
  marker.setAttribute('x1', px); marker.setAttribute('x2', px);
  document.querySelectorAll('svg.curve circle.point').forEach((c) => c.setAttribute('r', Number(c.dataset.ratio) === i ? 4.5 : 2.5));
  const acc = document.getElementById('accuracies');
  acc.textContent = D.rules.map((rule) => rule + ' ' + pct(r.accuracy[rule])).join(', ') + '; pruned ' + pct(r.pruned);
  r.layers.forEach((l, q) => {
    const row = document.querySelector('table.clusters tr[data-layer="' + q + '"]');
    const cells = [l.units + ' → ' + l.clusters, l.sizes.min + ' / ' + l.sizes.median + ' / ' + l.sizes.max, String(l.sizes.singletons), (100 * l.spread).toFixed(1) + '%', (100 * l.outputShift).toFixed(1) + '%'];
    cells.forEach((t, c) => { row.cells[c + 1].textContent = t; });
    const groups = groupsOf(l.group);
    const key = new Map([...groups].map(([g, ms]) => [g, ms[0]]));
    const svg = document.querySelector('svg.unit-map[data-layer="' + q + '"]');
    svg.querySelectorAll('circle.unit').forEach((c) => {
      const u = Number(c.dataset.unit), g = l.group[u], size = groups.get(g).length;
      c.setAttribute('fill', size > 1 ? hue(key.get(g)) : '#bbb');
      c.classList.toggle('in-cluster', size > 1);
      c.dataset.group = String(key.get(g));
    });
    const marks = svg.querySelector('g.marks');
    marks.textContent = '';
    const L = D.layers[q];
    for (const [g, ms] of groups) {
      if (ms.length < 2) continue;
      if (l.kept) {
        const u = l.kept[g], c = document.createElementNS(SVG, 'circle');
        c.setAttribute('class', 'kept'); c.setAttribute('cx', L.x[u]); c.setAttribute('cy', L.y[u]); c.setAttribute('r', 7);
        c.setAttribute('fill', 'none'); c.setAttribute('stroke', hue(key.get(g))); c.setAttribute('stroke-width', 2);
        marks.appendChild(c);
      } else {
        const cx = ms.reduce((a, u) => a + L.x[u], 0) / ms.length, cy = ms.reduce((a, u) => a + L.y[u], 0) / ms.length;
        const p = document.createElementNS(SVG, 'path');
        p.setAttribute('class', 'merged');
        p.setAttribute('d', 'M' + (cx - 5) + ',' + (cy - 5) + 'L' + (cx + 5) + ',' + (cy + 5) + 'M' + (cx - 5) + ',' + (cy + 5) + 'L' + (cx + 5) + ',' + (cy - 5));
        p.setAttribute('stroke', hue(key.get(g))); p.setAttribute('stroke-width', 2.2);
        marks.appendChild(p);
      }
    }
    const tree = document.querySelector('svg.dendrogram[data-layer="' + q + '"]');
    if (tree) {
      const take = L.units - l.clusters;
      tree.querySelectorAll('path.link').forEach((p) => {
        const k = Number(p.dataset.rank), below = k < take;
        const g = l.group[L.first[k]];
        p.setAttribute('stroke', below ? hue(key.get(g)) : '#999');
        p.setAttribute('class', below ? 'link merged' : 'link');
      });
      const cut = tree.querySelector('line.cut');
      cut.setAttribute('y1', L.cutY[i]); cut.setAttribute('y2', L.cutY[i]);
    }
  });
  if (selected) show(selected[0], selected[1]);
}
function paint(canvas, values, drawing, m) {
  const px = drawing.kind === 'bars' ? 1 : Math.max(2, Math.min(10, Math.floor(96 / Math.max(drawing.rows, drawing.cols))));
  const ctx = canvas.getContext('2d');
  const level = (v) => Math.round(127.5 + 127.5 * (v / m));
  if (drawing.kind === 'bars') {
    const w = Math.max(1, Math.floor(256 / drawing.cols)), h = 40;
    canvas.width = w * drawing.cols; canvas.height = h;
    values.forEach((v, j) => { ctx.fillStyle = v >= 0 ? '#1f77b4' : '#d62728'; const b = Math.abs(v) / m * (h / 2); ctx.fillRect(j * w, v >= 0 ? h / 2 - b : h / 2, w, Math.max(b, 0.5)); });
    return;
  }
  const tiles = drawing.kind === 'rgb' ? 1 : drawing.channels, area = drawing.rows * drawing.cols;
  canvas.width = tiles * (drawing.cols * px + 2); canvas.height = drawing.rows * px;
  for (let t = 0; t < tiles; t++) {
    for (let i = 0; i < drawing.rows; i++) for (let j = 0; j < drawing.cols; j++) {
      const at = (c) => values[(c * drawing.rows + i) * drawing.cols + j];
      ctx.fillStyle = drawing.kind === 'rgb' ? 'rgb(' + level(at(0)) + ',' + level(at(1)) + ',' + level(at(2)) + ')' : 'rgb(' + level(at(t)) + ',' + level(at(t)) + ',' + level(at(t)) + ')';
      ctx.fillRect(t * (drawing.cols * px + 2) + j * px, i * px, px, px);
    }
  }
}
function unitBox(label, cls) {
  const box = document.createElement('span'); box.className = 'unitrow';
  const c = document.createElement('canvas'); c.className = cls;
  box.appendChild(c); box.appendChild(document.createElement('br')); box.appendChild(document.createTextNode(label));
  return [box, c];
}
function show(q, u) {
  selected = [q, u];
  document.querySelectorAll('svg.unit-map circle.selected').forEach((c) => { c.classList.remove('selected'); c.removeAttribute('stroke'); });
  const dot = document.querySelector('svg.unit-map[data-layer="' + q + '"] circle.unit[data-unit="' + u + '"]');
  dot.classList.add('selected'); dot.setAttribute('stroke', '#000'); dot.setAttribute('stroke-width', 2);
  const i = Number(slider.value), l = D.ratios[i].layers[q], L = D.layers[q];
  const g = l.group[u], ms = l.group.map((k, v) => (k === g ? v : -1)).filter((v) => v >= 0);
  const panel = document.getElementById('members');
  panel.textContent = '';
  const h = document.createElement('p');
  panel.appendChild(h);
  const most = 24, shownMembers = ms.slice(0, most);
  const what = ms.length === 1 ? 'unit ' + u + ' of ' + L.name + ' stays alone at ratio ' + D.ratios[i].ratio + '.'
    : L.name + ', ratio ' + D.ratios[i].ratio + ': unit ' + u + ' is in a cluster of ' + ms.length + ' units: ';
  h.appendChild(document.createTextNode(what));
  if (ms.length > 1) {
    const list = document.createElement('span'); list.className = 'members'; list.textContent = ms.join(' ');
    h.appendChild(list);
  }
  const row = document.createElement('div');
  panel.appendChild(row);
  let rep = null, repLabel = '';
  if (l.kept && ms.length > 1) {
    rep = weights[q][l.kept[g]];
    repLabel = 'kept: unit ' + l.kept[g];
  } else if (ms.length > 1 && l.rep) {
    const at = l.rep.g.indexOf(g);
    if (at >= 0) rep = replacing(i, q)[at];
    repLabel = 'the merged unit';
  }
  const vals = shownMembers.map((v) => weights[q][v]);
  const m = Math.max(1e-30, ...vals.flat().map(Math.abs), ...(rep ? rep.map(Math.abs) : []));
  for (const [j, v] of shownMembers.entries()) {
    const [box, c] = unitBox('unit ' + v, 'member'); paint(c, vals[j], L.draw, m); row.appendChild(box);
  }
  if (rep) {
    const arrow = document.createElement('span'); arrow.className = 'arrow'; arrow.textContent = '→'; row.appendChild(arrow);
    const [box, c] = unitBox(repLabel, 'replacement'); paint(c, rep, L.draw, m); row.appendChild(box);
  }
  const note = document.createElement('p'); note.className = 'note';
  note.textContent = (ms.length > most ? 'The first ' + most + ' of its ' + ms.length + ' members are drawn. ' : '') + D.drawn + (L.draw.part ? ' Shown: ' + L.draw.part + '.' : '');
  panel.appendChild(note);
}
document.querySelectorAll('svg.unit-map').forEach((svg) => svg.addEventListener('click', (e) => {
  const c = e.target.closest('circle.unit');
  if (c) show(Number(svg.dataset.layer), Number(c.dataset.unit));
}));
slider.addEventListener('input', () => draw(Number(slider.value)));
draw(Number(slider.value));
`;

/** the page's text */
export function explainHtml(v: ExplainView): string {
  const n = v.ratios.length;
  const start = Math.max(0, v.ratios.findIndex((r) => r.ratio >= 0.5));
  const drawings = v.layers.map((l) => weightDrawing(l.shape, l.units));
  const maps = v.layers.map((l, q) => mapSvg(l, q));
  const trees = v.layers.map((l, q) => (l.tree && l.tree.length ? treeSvg(l, q, v.ratios.map((r) => r.layers[q].clusters)) : null));
  const curve = curveSvg(v);
  const data = {
    rules: v.rules,
    curveX: curve.x,
    drawn: 'Each unit\'s incoming weights, batch norm folded (the bias is not drawn), on one scale for the cluster: ' + (drawings.some((d) => d.kind === 'bars') ? 'bars up (blue) for positive weights, down (red) for negative; ' : '') + 'in tiles, mid-grey is 0.',
    layers: v.layers.map((l, q) => {
      const d = drawings[q];
      const fan = l.weights.length / l.units;
      return {
        name: l.layer, units: l.units, x: maps[q].x, y: maps[q].y,
        draw: { kind: d.kind, channels: d.channels, rows: d.rows, cols: d.cols, index: d.index.length, part: d.part },
        w: encodeRows(l.weights, Array.from({ length: l.units }, (_, u) => u), fan, d.index),
        ...(trees[q] ? { first: trees[q]!.first, cutY: trees[q]!.cutY } : {}),
      };
    }),
    ratios: v.ratios.map((r) => ({
      ratio: r.ratio, removed: r.removed, params: r.params, accuracy: r.accuracy, pruned: r.pruned,
      layers: r.layers.map((l, q) => {
        const fan = v.layers[q].weights.length / v.layers[q].units;
        const sizes = new Map<number, number>();
        l.group.forEach((g) => sizes.set(g, (sizes.get(g) ?? 0) + 1));
        // the replacing units worth embedding: of clusters, and not a kept unit unchanged
        const groups = [...sizes.entries()].filter(([g, s]) => s > 1 && !l.kept).map(([g]) => g).sort((a, b) => a - b);
        return {
          units: v.layers[q].units, clusters: l.clusters, sizes: l.sizes, spread: l.spread, outputShift: l.outputShift, group: l.group,
          ...(l.kept ? { kept: l.kept } : {}), ...(groups.length ? { rep: { g: groups, ...encodeRows(l.replacement, groups, fan, drawings[q].index) } } : {}),
        };
      }),
    })),
  };
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const facts: string[][] = [
    ['command', `neuronmerge ${v.command}`], ['checkpoint', v.checkpoint], ['model', v.model], ['data', v.data],
    ['merging', `${v.rule} rule: ${ruleText(v.rule, v.method).grouping}`], ['seed', String(v.seed)], ['machine', v.machine], ['time', `${v.seconds.toFixed(1)} s`],
    ['original', `${pct(v.original.accuracy)} test accuracy, ${v.original.params.toLocaleString('en')} parameters`],
    ['batch norms re-estimated on', v.recalibrated ? `${v.recalibrated} training images, after every merge and prune` : 'not re-estimated (none in the model)'],
  ];
  const parts = drawings.map((d, q) => (d.part ? `${v.layers[q].layer}: ${d.part}` : '')).filter(Boolean);
  const row = (cells: string[], tag = 'td') => `<tr>${cells.map((c) => `<${tag}>${esc(c)}</${tag}>`).join('')}</tr>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(v.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${esc(v.title)}</h1>
<table class="facts">${facts.map((f) => row(f)).join('')}</table>
${v.notes.length ? `<p class="note">${v.notes.map((t) => `Note: ${esc(t)}.`).join('<br>')}</p>` : ''}
<div id="control"><label for="ratio">merge ratio</label> <input type="range" id="ratio" min="0" max="${n - 1}" step="1" value="${start}"><span id="where"></span><div class="note" id="accuracies"></div></div>
<h2>Accuracy against the ratio</h2>
<figure>${curve.svg}<figcaption>Test accuracy of the model merged at each ratio, by each rule, and of L1 pruning to the same units, all before fine-tuning${v.recalibrated ? ', batch norms re-estimated' : ''}; the red line is the slider's ratio.</figcaption></figure>
<h2>The clusters of each layer</h2>
<table class="clusters">${row(['layer', 'units → clusters', 'sizes min / median / max', 'singletons', 'spread', 'next output moved'], 'th')}${v.layers.map((l, q) => `<tr data-layer="${q}"><td>${esc(l.layer)}</td><td></td><td></td><td></td><td></td><td></td></tr>`).join('')}</table>
<p class="note">Spread: a unit's mean distance to its cluster's centre relative to the units' mean norm. Next output moved: ‖Δz‖/‖z‖ of the next layer's output on ${v.images} test images when this layer alone is merged.</p>
<h2>Units</h2>
<p class="note">Each map shows one layer's units in the plane of their first two principal components (incoming weights and bias, batch norm folded), ${esc(ruleText(v.rule, v.method).map)}; grey units are still alone. Click a unit to see its cluster.</p>
<div id="members"><p>Click a unit in a map to see its cluster's members and the unit that replaced them.</p></div>
<div class="maps">${maps.map((m) => m.svg).join('\n')}</div>
${parts.length ? `<p class="note">Weights drawn for the largest layers: ${esc(parts.join('; '))}.</p>` : ''}
${trees.some(Boolean) ? `<h2>Dendrograms</h2>
<p class="note">How ${esc(v.method)} linkage joined each layer's units, closest first: a link's height is the distance at which its two parts joined. The dashed line is the slider's cut; the links below it are coloured as in the maps.</p>
${trees.filter(Boolean).map((t) => t!.svg).join('\n')}` : `<p class="note">${esc(v.method === 'kmeans' ? 'k-means draws no dendrogram: its clusters at one ratio need not nest in those at the next. An agglomerative method (ward, average or complete linkage) draws each layer\'s tree and the cut the slider moves.' : '')}</p>`}
<script type="application/json" id="data">${json}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}

/** the explain page, written to `file` whole or not at all */
export async function writeExplainHtml(file: string, v: ExplainView): Promise<void> {
  writeFileAtomic(file, explainHtml(v));
}
