// explain on a checkpoint file: merging swept over a range of ratios, each computed once. Per ratio:
// the accuracy of every merging rule and of L1 pruning before fine-tuning (batch norms re-estimated),
// and for one rule each layer's clusters, their sizes and spread, and how far merging that layer alone
// moves the next layer's output. The page (report/explain.ts) moves through the ratios with a slider.
import { explainMerge } from '../compress/explain.js';
import type { LayerExplanation } from '../compress/explain.js';
import { MERGE_RULES, siteActivations } from '../compress/merge.js';
import type { ClusterMethod, MergeReport, MergeRule } from '../compress/merge.js';
import { foldedUnits, mergeSites } from '../compress/sites.js';
import { modelStats } from '../compress/stats.js';
import { inputShape, modelName } from '../models/index.js';
import { Conv2d } from '../nn/layers.js';
import { writeExplainHtml } from '../report/explain.js';
import type { ExplainView } from '../report/types.js';
import { checkOutputFile } from '../runtime/files.js';
import { slice } from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { dataTitle } from './compress.js';
import { CompressionSamples, compressModel, recalibrationImages } from './pipeline.js';
import { accuracyOf, cloneModel, loadTask, machineDescription, modelFromCheckpoint } from './task.js';
import type { TaskLoadOptions } from './task.js';

/** the ratios explain sweeps unless given others */
export const EXPLAIN_RATIOS: readonly number[] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

export interface ExplainOptions {
  /** the merge ratios, every layer alike (default EXPLAIN_RATIOS); sorted, each in [0, 1) */
  ratios?: number[];
  /** the rule whose clusters the layers show (default 'mean', the paper's) */
  rule?: MergeRule;
  /** the rules whose accuracy is measured at each ratio (default every rule) */
  rules?: MergeRule[];
  method?: ClusterMethod;
  seed?: number;
  /** test images the output shift is measured on (default 256) */
  images?: number;
  /** list the clusters of this mergeable layer at each ratio */
  layer?: number;
  data?: TaskLoadOptions;
  /** the page to write (checked before any work) */
  report?: string;
  command?: string;
  log?: (line: string) => void;
}

/** one layer at one ratio, as the command prints it */
export type LayerFigures = Omit<LayerExplanation, 'map' | 'tree' | 'replacement'>;

export interface ExplainRatio {
  ratio: number;
  /** parameters of the model merged at this ratio (every rule merges to the same widths) */
  params: number;
  /** share of the parameters removed */
  removed: number;
  /** test accuracy before fine-tuning, per rule (in the order of `rules`) */
  accuracy: Record<string, number>;
  /** L1 pruning to the same widths, before fine-tuning */
  pruned: number;
  layers: LayerFigures[];
  /** with `layer`: that layer's clusters, largest first, as unit indices */
  clusters?: number[][];
}

export interface ExplainResult {
  checkpoint: string;
  rule: MergeRule;
  rules: MergeRule[];
  original: { accuracy: number; params: number };
  /** images the batch norms were re-estimated on (null: the model has none) */
  recalibrated: number | null;
  ratios: ExplainRatio[];
  layer?: number;
  notes: string[];
  /** the page written */
  report: string | null;
}

/** ratios as explain takes them: sorted, distinct, each in [0, 1) */
export function explainRatios(ratios: readonly number[]): number[] {
  if (ratios.length === 0) throw new Error('explain: no merge ratios given');
  for (const r of ratios) if (!(r >= 0 && r < 1)) throw new Error(`explain: ratio ${r} is out of range: merge ratios must be in [0, 1)`);
  return [...new Set(ratios)].sort((a, b) => a - b);
}

/** the teaching view of merging a checkpoint, swept over ratios: see the file's head */
export async function explainCheckpoint(file: string, o: ExplainOptions = {}): Promise<ExplainResult> {
  const ratios = explainRatios(o.ratios ?? EXPLAIN_RATIOS);
  const rule = o.rule ?? 'mean', seed = o.seed ?? 0, method = o.method ?? 'kmeans';
  const rules = o.rules ?? [...MERGE_RULES];
  if (rules.length === 0) throw new Error('explain: no merging rules given');
  if (o.report !== undefined) checkOutputFile(o.report, '{report}', [file]);
  const log = o.log ?? (() => {});
  const started = performance.now();
  const { model, arch } = modelFromCheckpoint(file, o.data?.dataset);
  const sites = mergeSites(model);
  if (o.layer !== undefined && o.layer >= sites.length) throw new Error(`explain: layer ${o.layer}: the model has ${sites.length} mergeable layers (0 to ${sites.length - 1})`);
  const data = await loadTask(arch, o.data);
  model.eval();
  const input = inputShape(arch);
  const before = modelStats(model, input).params;
  const accOriginal = accuracyOf(model, data).accuracy;
  const samples = new CompressionSamples(data, seed);
  const calibration = samples.recalibration(recalibrationImages(model, undefined));
  const fitRule = samples.fitFor(rule);
  const acts = fitRule ? siteActivations(model, fitRule) : null;
  const x = slice(data.ev.x, 0, Math.min(o.images ?? 256, data.ev.x.shape[0]));
  const reference = new Map<number, Tensor>();
  const notes = new Set<string>();
  const page = o.report !== undefined;
  const out: ExplainRatio[] = [];
  const shown: { layers: LayerExplanation[]; rep: MergeReport }[] = [];
  // the rule the layers show is merged at every ratio, measured or not
  const merged = [...new Set([rule, ...rules])];
  for (const [j, ratio] of ratios.entries()) {
    log(`explain: ratio ${ratio} (${j + 1} of ${ratios.length}): ${merged.join(', ')} and L1 pruning`);
    const accuracy: Record<string, number> = {};
    let params = 0, rep: MergeReport | null = null;
    for (const r of merged) {
      const m = cloneModel(model, arch);
      const got = compressModel(m, r, { ratio, seed, nInit: 3, method, fit: samples.fitFor(r), recalibration: calibration })!;
      got.notes.forEach((n) => notes.add(n));
      if (rules.includes(r)) accuracy[r] = accuracyOf(m, data).accuracy;
      if (r === rule) {
        rep = got;
        params = modelStats(m, input).params;
      }
    }
    const pruned = cloneModel(model, arch);
    compressModel(pruned, 'prune', { ratio, seed, recalibration: calibration });
    const accPruned = accuracyOf(pruned, data).accuracy;
    const layers = explainMerge(model, arch, rep!.sites.map((s) => s.labels), x, (q) => ({ rule, representatives: rep!.sites[q].representatives, activations: acts?.[q] }), { map: j === 0, replacements: page, reference });
    shown.push({ layers, rep: rep! });
    out.push({
      ratio, params, removed: 1 - params / before, accuracy, pruned: accPruned,
      layers: layers.map(({ map: _m, tree: _t, replacement: _r, ...l }) => l),
      ...(o.layer !== undefined ? { clusters: groupsOf(rep!.sites[o.layer].labels) } : {}),
    });
  }
  if (page) {
    const first = shown[0];
    const view: ExplainView = {
      title: `${modelName(arch)}: merging by the ${rule} rule at ratios ${ratios[0]} to ${ratios[ratios.length - 1]}`,
      command: o.command ?? `explain ${file}`, checkpoint: file, model: arch.model, data: dataTitle(data), rule, method, seed,
      machine: machineDescription(), seconds: (performance.now() - started) / 1000,
      original: { accuracy: accOriginal, params: before }, rules, recalibrated: calibration ? calibration.shape[0] : null, images: x.shape[0], notes: [...notes],
      layers: sites.map((site, q) => {
        const layer = model.layers[site.index];
        const { w, fanIn } = foldedUnits(model, site);
        const side = Math.round(Math.sqrt(fanIn));
        const shape = layer instanceof Conv2d ? layer.weight.shape.slice(1) : q === 0 && side * side === fanIn && side >= 8 ? [1, side, side] : [fanIn];
        const { x: mx, y: my, explained } = first.layers[q].map;
        const tree = first.rep.sites[q].tree;
        return { layer: layer.describe(), units: site.units, shape, weights: w, map: { x: mx, y: my, explained }, ...(tree ? { tree } : {}) };
      }),
      ratios: out.map((r, j) => ({
        ratio: r.ratio, params: r.params, removed: r.removed, accuracy: r.accuracy, pruned: r.pruned,
        layers: shown[j].layers.map((l, q) => {
          const kept = shown[j].rep.sites[q].representatives;
          return { ...out[j].layers[q], group: Array.from(shown[j].rep.sites[q].labels), ...(kept ? { kept: Array.from(kept) } : {}), replacement: l.replacement! };
        }),
      })),
    };
    log(`explain: writing ${o.report}`);
    await writeExplainHtml(o.report!, view);
  }
  return { checkpoint: file, rule, rules, original: { accuracy: accOriginal, params: before }, recalibrated: calibration ? calibration.shape[0] : null, ratios: out, ...(o.layer !== undefined ? { layer: o.layer } : {}), notes: [...notes], report: o.report ?? null };
}

/** members of each group, largest group first */
export function groupsOf(labels: Int32Array): number[][] {
  const m = new Map<number, number[]>();
  labels.forEach((g, u) => (m.get(g) ?? m.set(g, []).get(g)!).push(u));
  return [...m.values()].sort((a, b) => b.length - a.length || a[0] - b[0]);
}
