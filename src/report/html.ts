// report.html: one self-contained page (styles and charts inline, no script, nothing fetched) that
// shows what a reproduction or a merge did: the run's facts, the results, accuracy
// against compression, units per layer, and for each merged layer a map of its units (their first two
// principal components) coloured by cluster with each merged unit marked, its dendrogram with the cut
// (agglomerative methods), and the first convolution's filters by cluster. The explain page is ./explain.ts.
import type { Merge } from '../compress/agglomerative.js';
import type { FilterView, LayerExplanation, UnitMap } from '../compress/explain.js';
import { rowLabel } from './plots.js';
import type { CompressionView, Report } from './types.js';
import { pct, tunedPct } from './format.js';


/** text for HTML (element content and attribute values) */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** a colour per cluster: hues spread by the golden angle, so neighbours differ */
function hue(g: number): string {
  return `hsl(${Math.round((g * 137.508) % 360)}, 65%, 45%)`;
}

/** the merged units' positions in a map: the mean of each group's members */
export function centroids(m: UnitMap): { x: number; y: number; group: number; size: number }[] {
  const acc = new Map<number, { x: number; y: number; size: number }>();
  m.group.forEach((g, i) => {
    const a = acc.get(g) ?? { x: 0, y: 0, size: 0 };
    a.x += m.x[i];
    a.y += m.y[i];
    a.size++;
    acc.set(g, a);
  });
  return [...acc.entries()].sort((p, q) => p[0] - q[0]).map(([group, a]) => ({ x: a.x / a.size, y: a.y / a.size, group, size: a.size }));
}

/** the range of `v` widened by 5% each side (a unit where all are equal), for a plot's axis */
export function paddedSpan(v: number[]): [number, number] {
  const lo = Math.min(...v), hi = Math.max(...v);
  const pad = (hi - lo || 1) * 0.05;
  return [lo - pad, hi + pad];
}

/** a scatter of one layer's units: a dot per unit coloured by its cluster, a cross per merged unit at
 * the mean of its members, both axes labelled with the variance they hold */
export function unitMapSvg(m: UnitMap, title: string): string {
  const W = 360, H = 310, L = 44, R = 10, T = 38, B = 40;
  const xs = m.x, ys = m.y;
  const [x0, x1] = paddedSpan(xs), [y0, y1] = paddedSpan(ys);
  const px = (x: number) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y: number) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  const f = (v: number) => v.toFixed(1);
  const dots = xs.map((x, i) => `<circle class="unit" data-unit="${i}" data-group="${m.group[i]}" cx="${f(px(x))}" cy="${f(py(ys[i]))}" r="3.5" fill="${hue(m.group[i])}" fill-opacity="0.75"><title>unit ${i}, cluster ${m.group[i]}</title></circle>`);
  // a rule that keeps a unit of each group (medoid, and the rules that keep L1 pruning's units) has it
  // ringed; the averaging rules' merged unit is a cross at the mean of its members
  const sizes = new Map<number, number>();
  m.group.forEach((g) => sizes.set(g, (sizes.get(g) ?? 0) + 1));
  const crosses = m.kept
    ? m.kept.map((u) => `<circle class="kept" data-unit="${u}" data-group="${m.group[u]}" cx="${f(px(xs[u]))}" cy="${f(py(ys[u]))}" r="7" fill="none" stroke="${hue(m.group[u])}" stroke-width="2"><title>unit ${u} kept for its group of ${sizes.get(m.group[u])}</title></circle>`)
    : centroids(m).filter((c) => c.size > 1).map((c) => {
      const cx = px(c.x), cy = py(c.y);
      return `<path class="merged" data-group="${c.group}" d="M${f(cx - 5)},${f(cy - 5)}L${f(cx + 5)},${f(cy + 5)}M${f(cx - 5)},${f(cy + 5)}L${f(cx + 5)},${f(cy - 5)}" stroke="${hue(c.group)}" stroke-width="2.2"><title>cluster ${c.group}: ${c.size} units merged</title></path>`;
    });
  const legend = m.kept
    ? `<circle cx="${L + 160}" cy="28" r="6" fill="none" stroke="#777" stroke-width="2"/><text x="${L + 170}" y="31">a kept unit</text>`
    : `<path d="M${L + 160},24L${L + 168},32M${L + 160},32L${L + 168},24" stroke="#777" stroke-width="2.2"/><text x="${L + 173}" y="31">a merged unit</text>`;
  const ticks = (lo: number, hi: number) => [0, 0.5, 1].map((t) => lo + t * (hi - lo));
  const xt = ticks(x0, x1).map((v) => `<text x="${f(px(v))}" y="${H - B + 14}" text-anchor="middle">${v.toPrecision(2)}</text>`);
  const yt = ticks(y0, y1).map((v) => `<text x="${L - 4}" y="${f(py(v) + 3)}" text-anchor="end">${v.toPrecision(2)}</text>`);
  return [
    `<svg class="unit-map" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-size="10" font-family="sans-serif">`,
    `<text x="${W / 2}" y="14" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="none" stroke="#999"/>`,
    `<g class="legend"><circle cx="${L + 6}" cy="28" r="3.5" fill="#777"/><text x="${L + 13}" y="31">a unit (colour: its ${m.kept ? 'group' : 'cluster'})</text>${legend}</g>`,
    ...xt, ...yt,
    `<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">first principal component (${(100 * m.explained[0]).toFixed(0)}% of the variance)</text>`,
    `<text transform="translate(11,${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">second (${(100 * m.explained[1]).toFixed(0)}%)</text>`,
    ...dots, ...crosses,
    '</svg>',
  ].join('\n');
}

/** where each unit of a dendrogram sits along the x axis: leaves in depth-first order from the root,
 * each merge at the mean of its two children; `first[id]` is a node's first leaf */
export function dendrogramLayout(tree: Merge[]): { order: number[]; x: Float64Array; first: Int32Array } {
  const n = tree.length + 1;
  const order: number[] = [];
  const stack = [2 * n - 2];
  while (stack.length) {
    const id = stack.pop()!;
    if (id < n) order.push(id);
    else stack.push(tree[id - n].b, tree[id - n].a);
  }
  const x = new Float64Array(2 * n - 1), first = new Int32Array(2 * n - 1);
  order.forEach((leaf, i) => {
    x[leaf] = i;
    first[leaf] = leaf;
  });
  tree.forEach((m, i) => {
    x[n + i] = (x[m.a] + x[m.b]) / 2;
    first[n + i] = x[first[m.a]] < x[first[m.b]] ? first[m.a] : first[m.b];
  });
  return { order, x, first };
}

/** the height a dendrogram of n leaves is cut at to leave k clusters: midway between the last merge
 * made and the first one not made */
export function cutHeight(tree: Merge[], k: number): number {
  const n = tree.length + 1, take = n - k;
  if (take <= 0) return (tree[0]?.height ?? 0) / 2;
  if (take >= n - 1) return tree[n - 2].height * 1.03;
  return (tree[take - 1].height + tree[take].height) / 2;
}

/** a layer's dendrogram: its units along x in tree order, each merge a link drawn at its height; links
 * below the cut coloured by the cluster they form (the unit map's colours), the others grey; the cut a
 * dashed line */
export function dendrogramSvg(tree: Merge[], labels: ArrayLike<number>, title: string, linkage = 'ward'): string {
  const n = tree.length + 1;
  if (labels.length !== n) throw new Error(`dendrogram: ${labels.length} labels for ${n} units`);
  const k = new Set(Array.from(labels)).size, take = n - k;
  const W = 720, H = 250, L = 50, R = 12, T = 30, B = 36;
  const { x, first } = dendrogramLayout(tree);
  const top = Math.max(1e-30, tree[n - 2]?.height ?? 0, cutHeight(tree, k)) * 1.04;
  const px = (i: number) => L + ((i + 0.5) / n) * (W - L - R);
  const py = (h: number) => H - B - (h / top) * (H - T - B);
  const f = (v: number) => v.toFixed(1);
  const height = (id: number) => (id < n ? 0 : tree[id - n].height);
  const links = tree.map((m, i) => {
    const below = i < take;
    const g = labels[first[n + i]];
    return `<path class="link${below ? ' merged' : ''}" data-height="${m.height.toPrecision(6)}"${below ? ` data-group="${g}"` : ''} d="M${f(px(x[m.a]))},${f(py(height(m.a)))}V${f(py(m.height))}H${f(px(x[m.b]))}V${f(py(height(m.b)))}" fill="none" stroke="${below ? hue(g) : '#888'}" stroke-width="${n > 300 ? 0.6 : 1.2}"/>`;
  });
  const cut = cutHeight(tree, k);
  const ticks = [0, 0.5, 1].map((t) => t * top).map((v) => `<text x="${L - 4}" y="${f(py(v) + 3)}" text-anchor="end">${v.toPrecision(2)}</text>`);
  return [
    `<svg class="dendrogram" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-size="10" font-family="sans-serif">`,
    `<text x="${W / 2}" y="14" text-anchor="middle" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#999"/>`, ...ticks,
    `<text transform="translate(12,${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">merge distance (${esc(linkage)})</text>`,
    `<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">${n} units in tree order; coloured: the ${k} clusters below the cut</text>`,
    ...links,
    `<line class="cut" data-height="${cut.toPrecision(6)}" x1="${L}" y1="${f(py(cut))}" x2="${W - R}" y2="${f(py(cut))}" stroke="#c00" stroke-dasharray="5,3"/>`,
    `<line x1="${W - R - 120}" y1="${T - 6}" x2="${W - R - 100}" y2="${T - 6}" stroke="#c00" stroke-dasharray="5,3"/><text x="${W - R - 96}" y="${T - 3}">cut: ${k} clusters</text>`,
    '</svg>',
  ].join('\n');
}

/** one filter as a small image: a square per weight, grey (one channel) or colour (three: red, green,
 * blue), each channel scaled by the filter's largest |weight| so 0 is mid-grey */
export function filterSvg(w: number[], shape: [number, number, number], px = 8, cls = 'filter'): string {
  const [C, kh, kw] = shape;
  const m = Math.max(1e-30, ...w.map(Math.abs));
  const level = (v: number) => Math.round(127.5 + 127.5 * (v / m));
  const cells: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const at = (c: number) => w[(c * kh + i) * kw + j];
      const fill = C === 3 ? `rgb(${level(at(0))},${level(at(1))},${level(at(2))})` : `rgb(${level(at(0))},${level(at(0))},${level(at(0))})`;
      cells.push(`<rect x="${j * px}" y="${i * px}" width="${px}" height="${px}" fill="${fill}"/>`);
    }
  }
  return `<svg class="${cls}" xmlns="http://www.w3.org/2000/svg" width="${kw * px}" height="${kh * px}">${cells.join('')}</svg>`;
}

/** the first convolution's clusters, largest first (up to `most`), each as its members' filters, an
 * arrow and the merged filter */
export function filtersHtml(f: FilterView, most = 12): string {
  const channels = f.shape[0];
  if (channels !== 1 && channels !== 3) return '';
  const groups = new Map<number, number[]>();
  f.group.forEach((g, u) => (groups.get(g) ?? groups.set(g, []).get(g)!).push(u));
  const order = [...groups.entries()].filter(([, m]) => m.length > 1).sort((a, b) => b[1].length - a[1].length || a[0] - b[0]).slice(0, most);
  const px = f.shape[1] <= 3 ? 12 : 8;
  const rows = order.map(([g, members]) => `<div class="cluster" data-group="${g}">${members.map((u) => filterSvg(f.units[u], f.shape, px)).join('')}<span class="arrow">→</span>${filterSvg(f.merged[g], f.shape, px, 'filter merged')}</div>`);
  return rows.join('\n');
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.maps{display:flex;flex-wrap:wrap;gap:8px}
.facts td{text-align:left}figure{margin:1em 0}figcaption{font-size:13px;color:#555;max-width:60em}
.cluster{display:flex;align-items:center;gap:4px;margin:4px 0}.cluster svg{border:1px solid #bbb}.arrow{margin:0 6px}
.cluster svg.merged{border:2px solid #222}.trees svg{display:block;margin:6px 0}`;

/** a table; `h` of empty names only: no header row (a list of facts) */
const table = (h: string[], rs: string[][], cls = '') => `<table${cls ? ` class="${cls}"` : ''}>${h.some((c) => c !== '') ? `<tr>${h.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>` : ''}${rs.map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;

/** what merging did to each layer: the table, the unit maps, the dendrograms (agglomerative methods)
 * and the first convolution's filters */
/** how a rule grouped the units and what stands for each group, in words for the pages */
export function ruleText(rule: string, method: string): { grouping: string; map: string } {
  const clusters = method === 'kmeans' ? 'k-means clusters' : `${method} linkage clusters`;
  switch (rule) {
    case 'compensate': case 'fitted': case 'lstsq': case 'refit': {
      const what = rule === 'compensate' ? 'every other unit folded into its most similar kept one (by cosine)'
        : rule === 'fitted' ? 'every other unit folded into its most similar kept one, fitted on calibration activations'
          : rule === 'lstsq' ? 'every other unit rebuilt from all the kept units by least squares on calibration activations'
            : 'layer by layer, every unit of the original rebuilt from the kept units as the merged network computes them';
      return {
        grouping: `no clustering: the units L1 pruning keeps stay, ${what}`,
        map: 'coloured by the kept unit each one is grouped with; a ring marks a kept unit (the units L1 pruning keeps: no k-means ran, nothing is averaged)',
      };
    }
    case 'medoid': return { grouping: `${clusters}, each replaced by its most representative member`, map: 'coloured by cluster; a ring marks the member each cluster keeps' };
    case 'scaled': return { grouping: `${clusters} by direction, each merged into one unit whose scale the next layer reads per member`, map: 'coloured by cluster; a cross marks where a merged unit sits (the mean of its members\' directions)' };
    default: return { grouping: `${clusters}, each merged into the mean of its members`, map: 'coloured by cluster; a cross marks where a merged unit sits (the mean of its members)' };
  }
}

function layersHtml(explain: LayerExplanation[], filters: FilterView | null | undefined, heading: string, method: string, rule = 'mean'): string {
  const rows = explain.map((e) => [e.layer, `${e.units} → ${e.clusters}`, `${e.sizes.min} / ${e.sizes.median} / ${e.sizes.max}`, String(e.sizes.singletons), `${(100 * e.spread).toFixed(1)}%`, `${(100 * e.outputShift).toFixed(1)}%`]);
  const maps = explain.map((e) => unitMapSvg(e.map, `${e.layer}: ${e.units} → ${e.clusters}`));
  const trees = explain.filter((e) => e.tree && e.tree.length > 0).map((e) => dendrogramSvg(e.tree!, e.map.group, `${e.layer}: ${e.units} → ${e.clusters}`, method));
  const firsts = filters ? filtersHtml(filters) : '';
  return `<h2>${esc(heading)}</h2>
${table(['layer', 'units → clusters', 'sizes min / median / max', 'singletons', 'spread', 'next output moved'], rows, 'layers')}
<p>Each map shows one layer's units in the plane of their first two principal components (of their incoming weights and bias, batch norm folded), ${esc(ruleText(rule, method).map)}. Spread: a unit's mean distance to its cluster's centre relative to the units' mean norm; output moved: ‖Δz‖/‖z‖ of the next layer when this layer alone is merged.</p>
<div class="maps">${maps.join('\n')}</div>
${trees.length ? `<h2>Dendrograms</h2>
<p>How ${esc(method)} linkage joined each layer's units, closest first: a link's height is the distance at which its two parts joined. The dashed line is the cut that leaves the clusters merged; the links below it are coloured as in the maps above.</p>
<div class="trees">${trees.join('\n')}</div>` : ''}
${firsts ? `<h2>The first convolution's filters</h2>
<p>Each row is one cluster of the first layer's filters (batch norm folded; grey: one channel, colour: red, green and blue; each filter scaled to its largest weight, 0 is mid-grey), then, framed, the filter that replaced them.</p>
${firsts}` : ''}`;
}

/** the page of `merge`: the run's facts, the units each layer kept, and what merging did
 * to each layer; `units` is the units-per-layer chart as SVG */
export function compressionHtml(v: CompressionView, charts: { units: string }): string {
  const removed = 1 - v.params.after / v.params.before;
  const facts: string[][] = [
    ['command', `neuronmerge ${v.command}`], ['checkpoint', v.checkpoint], ...(v.out ? [['merged checkpoint', v.out]] : []), ['model', v.model], ['data', v.data],
    ['merging', `${v.rule} rule: ${ruleText(v.rule, v.method).grouping}; ${v.allocation}`], ['seed', String(v.seed)], ['machine', v.machine], ['time', `${v.seconds.toFixed(1)} s`],
    ['parameters', `${v.params.before.toLocaleString('en')} → ${v.params.after.toLocaleString('en')} (${pct(removed)} removed)`],
    ['FLOPs per image', `${v.flops.before.toLocaleString('en')} → ${v.flops.after.toLocaleString('en')} (${(v.flops.before / Math.max(1, v.flops.after)).toFixed(2)}× fewer)`],
    ...(v.accuracy.before !== null ? [['test accuracy', `${pct(v.accuracy.before)} → ${v.accuracy.after === null ? 'not measured' : pct(v.accuracy.after)} (before fine-tuning)`]] : []),
    ['batch norms re-estimated on', v.recalibrated ? `${v.recalibrated} training images` : 'not re-estimated'],
  ];
  const units = table(['layer', 'units before', 'after', 'merge ratio'], v.units.map((u) => [u.layer, String(u.before), String(u.after), (1 - u.after / u.before).toFixed(3)]), 'units');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(v.title)}</title><style>${STYLE}</style></head>
<body>
<h1>${esc(v.title)}</h1>
${table(['', ''], facts, 'facts')}
${v.notes.length ? `<p>${v.notes.map((n) => `Note: ${esc(n)}.`).join('<br>')}</p>` : ''}
<h2>Units per layer</h2>
<figure>${charts.units}<figcaption>Units per layer before and after merging.</figcaption></figure>
${units}
${layersHtml(v.explain, v.filters, `What merging did to each layer (${v.rule} rule)`, v.method, v.rule)}
</body></html>
`;
}

/** report.html's text; `charts` are the accuracy, accuracy-change and units plots as SVG */
export function reportHtml(r: Report, charts: { accuracy: string; drop: string; units: string }): string {
  const rules = r.results[0]?.merges?.map((m) => m.rule) ?? ['mean'];
  const head = ['ratio', 'parameters kept', 'removed', 'FLOPs ratio', 'measured speedup', ...rules.flatMap((m) => [`merged (${m})`, `${m} + fine-tune`]), 'pruned', 'pruned + fine-tune'];
  const rows = r.results.map((x) => {
    const merged = rules.flatMap((m) => {
      const v = x.merges?.find((y) => y.rule === m) ?? { merged: x.accuracy.merged, finetuned: x.accuracy.finetuned, seeds: x.seeds?.finetuned };
      return [pct(v.merged), tunedPct(v.finetuned, v.seeds)];
    });
    return [rowLabel(x), x.params.after.toLocaleString('en'), pct(x.compressionRatio), `${x.speedup.flops.toFixed(2)}×`, `${x.speedup.measured.toFixed(2)}×`, ...merged, pct(x.accuracy.pruned), tunedPct(x.accuracy.prunedFinetuned, x.seeds?.prunedFinetuned)];
  });
  const facts: string[][] = [
    ['command', `neuronmerge ${r.command}`], ['data', r.data], ['seed', String(r.seed)],
    ...(r.finetuneSeeds && r.finetuneSeeds.length > 1 ? [['fine-tuning seeds', `${r.finetuneSeeds.join(', ')}: after fine-tuning, the mean ± the standard deviation (points)`]] : []), ['machine', r.machine], ['time', `${r.seconds.toFixed(0)} s`],
    ['original', `${pct(r.original.accuracy)} test accuracy, ${r.original.params.toLocaleString('en')} parameters, ${r.original.epochs} epochs`],
    ['batch norms re-estimated on', r.recalibrated ? `${r.recalibrated} training images${r.recalibrateCutout ? `, Cutout ${r.recalibrateCutout}` : ''}` : 'not re-estimated'],
    ...(r.multipleOf ? [['units per layer', `rounded to multiples of ${r.multipleOf}`]] : []),
    ...(r.finetune ? [['fine-tuning', `${r.finetune.epochs} epoch${r.finetune.epochs === 1 ? '' : 's'}, ${r.finetune.schedule}${r.finetune.distill ? `, distilled (T ${r.finetune.distill.temperature}, weight ${r.finetune.distill.weight})` : ''}${r.finetune.cutout ? `, Cutout ${r.finetune.cutout}` : ''}`]] : []),
  ];
  const first = r.results[0];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>neuronmerge ${esc(r.command)}</title><style>${STYLE}</style></head>
<body>
<h1>neuronmerge ${esc(r.command)}</h1>
${table(['', ''], facts, 'facts')}
<h2>Results</h2>
${table(head, rows, 'results')}
${r.notes?.length ? `<p>${r.notes.map((n) => `Note: ${esc(n)}.`).join('<br>')}</p>` : ''}
<figure class="accuracy">${charts.accuracy}<figcaption>Test accuracy against the share of parameters removed, for each merging rule and for L1 pruning: before fine-tuning (left) and after (right, its axis zoomed to the data); the grey line is the original.</figcaption></figure>
<figure class="drop">${charts.drop}<figcaption>The accuracy each compression kept after fine-tuning, in points from the original, against the share of parameters removed${r.results.some((x) => x.seeds) ? '; bars: ± one standard deviation over the fine-tuning seeds' : ''}${r.published?.length ? '; diamonds: published compressions of the same network, each from its own original' : ''}.</figcaption></figure>
<figure>${charts.units}<figcaption>Units per layer, before and after each compression (a logarithmic axis, so that small layers show).</figcaption></figure>
${first ? layersHtml(first.explain, first.filters, `What merging did to each layer (${rowLabel(first)}, ${rules[0]} rule)`, 'kmeans', rules[0]) : ''}
</body></html>
`;
}
