// SVG plots of a reproduction report, drawn with vega-lite compiled to vega and rendered headless
// (no canvas needed for SVG): accuracy against the share of parameters removed (merged and pruned by
// colour, before and after fine-tuning by dash, each with its legend) and units per layer.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { CompressionView, Report } from './types.js';

/** how a row names its compression: the ratio, or the budget and how it was spread */
export function rowLabel(x: Report['results'][number]): string {
  return x.budget ? `budget ${x.budget.fraction} (${x.budget.allocate})` : String(x.ratio);
}

type Spec = Record<string, unknown>;

export function accuracySpec(r: Report): Spec {
  const row = (x: Report['results'][number], method: string, stage: string, accuracy: number) => ({ compression: x.compressionRatio, ratio: rowLabel(x), accuracy, method, stage });
  const merges = (x: Report['results'][number]) => x.merges && x.merges.length > 1
    ? x.merges.flatMap((m) => [row(x, `merged (${m.rule})`, 'before fine-tuning', m.merged), row(x, `merged (${m.rule})`, 'after fine-tuning', m.finetuned)])
    : [row(x, 'merged', 'before fine-tuning', x.accuracy.merged), row(x, 'merged', 'after fine-tuning', x.accuracy.finetuned)];
  const methods = [...new Set(r.results.flatMap((x) => merges(x).map((v) => v.method))), 'pruned (L1)'];
  const values = r.results.flatMap((x) => [
    ...merges(x),
    row(x, 'pruned (L1)', 'before fine-tuning', x.accuracy.pruned),
    row(x, 'pruned (L1)', 'after fine-tuning', x.accuracy.prunedFinetuned),
  ]);
  // before and after fine-tuning side by side: after it the methods lie within a point or two of each
  // other, so its axis is zoomed to the data (the original's line included) instead of 0–100%
  const panel = (stage: string, zoom: boolean) => {
    const vs = values.filter((v) => v.stage === stage);
    const ys = [...vs.map((v) => v.accuracy), r.original.accuracy];
    const lo = Math.min(...ys), hi = Math.max(...ys), pad = Math.max(0.002, (hi - lo) * 0.08);
    const scale = zoom ? { domain: [Math.max(0, lo - pad), Math.min(1, hi + pad)], zero: false } : { domain: [0, 1] };
    return {
      title: { text: stage, fontSize: 12 },
      width: 300, height: 240,
      layer: [
        { data: { values: vs }, mark: { type: 'line', point: true }, encoding: {
          x: { field: 'compression', type: 'quantitative', title: 'parameters removed', scale: { zero: false }, axis: { format: '%', titlePadding: 8 } },
          y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', scale, axis: { format: zoom ? '.1%' : '%', titlePadding: 10 } },
          color: { field: 'method', type: 'nominal', title: 'method', sort: methods, scale: { domain: methods } },
          tooltip: [{ field: 'method' }, { field: 'stage' }, { field: 'ratio', title: 'merge ratio or budget' }, { field: 'accuracy', format: '.2%' }],
        } },
        { data: { values: [{ accuracy: r.original.accuracy }] }, mark: { type: 'rule', color: 'gray' }, encoding: { y: { field: 'accuracy', type: 'quantitative' } } },
      ],
    };
  };
  return {
    title: `${r.model}: test accuracy against compression (original ${(100 * r.original.accuracy).toFixed(2)}%, grey line)`,
    hconcat: [panel('before fine-tuning', false), panel('after fine-tuning', true)],
    resolve: { scale: { y: 'independent' } },
  };
}

/**
 * The accuracy each compression lost (or gained) after fine-tuning, in points from its original, against
 * the share of parameters removed: each merging rule and L1 pruning as a line (a bar of ± one standard
 * deviation where several fine-tuning seeds were run), the published compressions of the same network
 * as labelled diamonds, each from its own original.
 */
export function dropSpec(r: Report): Spec {
  type Point = { compression: number; drop: number; lo: number; hi: number; method: string; ratio: string; accuracy: number };
  const point = (x: Report['results'][number], method: string, accuracy: number, std = 0): Point => {
    const drop = 100 * (accuracy - x.accuracy.original);
    return { compression: x.compressionRatio, drop, lo: drop - 100 * std, hi: drop + 100 * std, method, ratio: rowLabel(x), accuracy };
  };
  const values = r.results.flatMap((x) => [
    ...(x.merges && x.merges.length > 0 ? x.merges.map((m) => point(x, `merged (${m.rule})`, m.finetuned, m.seeds?.std)) : [point(x, 'merged', x.accuracy.finetuned, x.seeds?.finetuned.std)]),
    point(x, 'pruned (L1)', x.accuracy.prunedFinetuned, x.seeds?.prunedFinetuned.std),
  ]);
  const methods = [...new Set(values.map((v) => v.method))];
  const published = (r.published ?? []).map((p) => ({ compression: p.removed, drop: 100 * p.drop, method: p.method }));
  const xs = [...values.map((v) => v.compression), ...published.map((p) => p.compression)];
  const ys = [0, ...values.flatMap((v) => [v.lo, v.hi]), ...published.map((p) => p.drop)];
  const xPad = Math.max(0.01, (Math.max(...xs) - Math.min(...xs)) * 0.08), yPad = Math.max(0.1, (Math.max(...ys) - Math.min(...ys)) * 0.1);
  const x = { field: 'compression', type: 'quantitative', title: 'parameters removed', scale: { domain: [Math.max(0, Math.min(...xs) - xPad), Math.min(1, Math.max(...xs) + xPad)], zero: false }, axis: { format: '%', titlePadding: 8 } };
  const y = { field: 'drop', type: 'quantitative', title: 'accuracy change after fine-tuning (points)', scale: { domain: [Math.min(...ys) - yPad, Math.max(...ys) + yPad], zero: false }, axis: { titlePadding: 10 } };
  const color = { field: 'method', type: 'nominal', title: 'this run', sort: methods, scale: { domain: methods } };
  return {
    title: `${r.model}: accuracy change from the original against compression (original ${(100 * r.original.accuracy).toFixed(2)}%)`,
    width: 480, height: 300,
    layer: [
      { data: { values: [{ drop: 0 }] }, mark: { type: 'rule', color: 'gray' }, encoding: { y: { field: 'drop', type: 'quantitative' } } },
      { data: { values }, mark: { type: 'line', point: true }, encoding: {
        x, y, color,
        tooltip: [{ field: 'method' }, { field: 'ratio', title: 'merge ratio or budget' }, { field: 'compression', title: 'removed', format: '.2%' }, { field: 'accuracy', title: 'accuracy', format: '.2%' }, { field: 'drop', title: 'change (points)', format: '+.2f' }],
      } },
      { data: { values: values.filter((v) => v.hi > v.lo) }, mark: { type: 'rule' }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color } },
      ...(published.length ? [
        { data: { values: published }, mark: { type: 'point', shape: 'diamond', filled: true, size: 70, color: '#333' }, encoding: { x, y, tooltip: [{ field: 'method' }, { field: 'compression', title: 'removed', format: '.1%' }, { field: 'drop', title: 'change from its own original (points)', format: '+.2f' }] } },
        { data: { values: published }, mark: { type: 'text', align: 'right', dx: -7, dy: -7, fontSize: 10, color: '#333' }, encoding: { x, y, text: { field: 'method' } } },
      ] : []),
    ],
  };
}

export function unitsSpec(r: Report): Spec {
  const values = r.results.flatMap((x) => x.units.flatMap((u, i) => [
    ...(x === r.results[0] ? [{ layer: `${i + 1}: ${u.layer}`, units: u.before, version: 'original' }] : []),
    { layer: `${i + 1}: ${u.layer}`, units: u.after, version: x.budget ? `merged to budget ${x.budget.fraction}` : `merged at ${x.ratio}` },
  ]));
  return unitBars(`${r.model}: units per layer`, values, 420, 260);
}

/** one compression's units per layer, before and after (merge and explain pages) */
export function compressionUnitsSpec(v: CompressionView): Spec {
  const values = v.units.flatMap((u, i) => [
    { layer: `${i + 1}: ${u.layer}`, units: u.before, version: 'original' },
    { layer: `${i + 1}: ${u.layer}`, units: u.after, version: 'merged' },
  ]);
  return unitBars(`${v.model}: units per layer`, values, Math.max(240, 36 * v.units.length), 220);
}

/** grouped bars: units per layer, a bar per version (original, each compression) side by side */
function unitBars(title: string, values: { layer: string; units: number; version: string }[], width: number, height: number): Spec {
  return {
    title, width, height,
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'layer', type: 'nominal', title: null, sort: null },
      xOffset: { field: 'version', sort: null },
      // a logarithmic axis: a 2000-unit layer beside a 10-unit one leaves the small one visible
      y: { field: 'units', type: 'quantitative', title: 'units (log scale)', scale: { type: 'symlog' }, axis: { titlePadding: 10, values: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].filter((v) => v <= 2 * Math.max(...values.map((x) => x.units))) } },
      color: { field: 'version', type: 'nominal', title: null, sort: null },
      tooltip: [{ field: 'layer' }, { field: 'version' }, { field: 'units' }],
    },
  };
}

export async function renderSvg(spec: Spec): Promise<string> {
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  return view.toSVG();
}
