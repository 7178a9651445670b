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
  return {
    title: `${r.model}: test accuracy against compression (original ${(100 * r.original.accuracy).toFixed(2)}%, grey line)`,
    width: 420, height: 260,
    layer: [
      { data: { values }, mark: { type: 'line', point: true }, encoding: {
        x: { field: 'compression', type: 'quantitative', title: 'parameters removed (1 - after / before)', axis: { format: '%' } },
        y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', axis: { format: '%' } },
        color: { field: 'method', type: 'nominal', title: 'method', sort: methods },
        strokeDash: { field: 'stage', type: 'nominal', title: 'stage', sort: ['after fine-tuning', 'before fine-tuning'], legend: { symbolType: 'stroke', encode: { symbols: { update: { stroke: { value: '#333' }, strokeWidth: { value: 2 } } } } } },
        tooltip: [{ field: 'method' }, { field: 'stage' }, { field: 'ratio', title: 'merge ratio or budget' }, { field: 'accuracy', format: '.2%' }],
      } },
      { data: { values: [{ accuracy: r.original.accuracy }] }, mark: { type: 'rule', color: 'gray' }, encoding: { y: { field: 'accuracy', type: 'quantitative' } } },
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
      y: { field: 'units', type: 'quantitative', title: 'units' },
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
