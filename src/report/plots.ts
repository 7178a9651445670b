// SVG plots of a reproduction report, drawn with vega-lite compiled to vega and rendered headless
// (no canvas needed for SVG): accuracy against compression ratio (merge and prune, before and after
// fine-tuning) and units per layer before and after merging.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { Report } from '../cli/reproduce.js';

type Spec = Record<string, unknown>;

export function accuracySpec(r: Report): Spec {
  const values = r.results.flatMap((x) => [
    { compression: x.compressionRatio, accuracy: x.accuracy.merged, series: 'merged' },
    { compression: x.compressionRatio, accuracy: x.accuracy.finetuned, series: 'merged + fine-tune' },
    { compression: x.compressionRatio, accuracy: x.accuracy.pruned, series: 'pruned' },
    { compression: x.compressionRatio, accuracy: x.accuracy.prunedFinetuned, series: 'pruned + fine-tune' },
  ]);
  return {
    title: `${r.model}: test accuracy against compression (original ${(100 * r.original.accuracy).toFixed(2)}%)`,
    width: 420, height: 260,
    data: { values },
    layer: [
      { mark: { type: 'line', point: true }, encoding: {
        x: { field: 'compression', type: 'quantitative', title: 'compression ratio (1 - params after / before)', axis: { format: '%' } },
        y: { field: 'accuracy', type: 'quantitative', title: 'test accuracy', axis: { format: '%' } },
        color: { field: 'series', type: 'nominal', title: null },
        strokeDash: { field: 'series', type: 'nominal', legend: null },
      } },
      { data: { values: [{ accuracy: r.original.accuracy }] }, mark: { type: 'rule', color: 'gray' }, encoding: { y: { field: 'accuracy', type: 'quantitative' } } },
    ],
  };
}

export function unitsSpec(r: Report): Spec {
  const values = r.results.flatMap((x) => x.units.flatMap((u, i) => [
    ...(x === r.results[0] ? [{ layer: `${i + 1}: ${u.layer}`, units: u.before, version: 'original' }] : []),
    { layer: `${i + 1}: ${u.layer}`, units: u.after, version: `merged at ${x.ratio}` },
  ]));
  return {
    title: `${r.model}: units per layer`,
    width: 420, height: 260,
    data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'layer', type: 'nominal', title: null, sort: null },
      xOffset: { field: 'version', sort: null },
      y: { field: 'units', type: 'quantitative', title: 'units' },
      color: { field: 'version', type: 'nominal', title: null, sort: null },
    },
  };
}

export async function renderSvg(spec: Spec): Promise<string> {
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  return view.toSVG();
}
