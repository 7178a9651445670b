// What a reproduction reports: the original's figures and, per merge ratio, the merged and pruned
// models before and after fine-tuning, their size, FLOPs and measured speed, and what merging did to
// each layer. Written by src/experiment/reproduce.ts, read by the writers in this folder.
import type { FilterView, LayerExplanation } from '../compress/explain.js';
import type { Merge } from '../compress/agglomerative.js';
import type { BatchNormSpread } from '../compress/stats.js';
import type { Arch } from '../models/index.js';

/** one compressed model fine-tuned once per seed from the same weights: each seed's test accuracy,
 * their sample standard deviation, the lowest and the highest */
export interface FinetuneSeeds {
  seeds: number[];
  accuracy: number[];
  std: number;
  min: number;
  max: number;
}

/** a published compression of the same network on the same data, for comparison: the share of the
 * parameters it removed and its accuracy change after fine-tuning, from its own original */
export interface PublishedPoint {
  /** the method and its paper */
  method: string;
  removed: number;
  /** accuracy after compression and fine-tuning minus its own original's (a fraction; negative: lost) */
  drop: number;
}

export interface RatioResult {
  /** the merge ratio of every layer (null for a budget's row: each layer has its own) */
  ratio: number | null;
  /** a budget's row: the fraction of parameters kept at most, how it was spread, and each layer's ratio
   * (merged and pruned models alike) */
  budget?: { fraction: number; allocate: 'uniform' | 'sensitivity'; ratios: number[] };
  units: { layer: string; before: number; after: number }[];
  params: { before: number; after: number };
  compressionRatio: number;
  flops: { before: number; after: number };
  bytes: { before: number; after: number };
  /** merged and finetuned: the first merging rule's (the paper's mean unless asked otherwise); after
   * fine-tuning with several seeds, finetuned and prunedFinetuned are their means */
  accuracy: { original: number; merged: number; finetuned: number; pruned: number; prunedFinetuned: number; repaired?: number };
  /** every merging rule reproduced, in the order asked, before and after fine-tuning (the seeds' mean,
   * and each seed's where there are several) */
  merges?: { rule: string; merged: number; finetuned: number; seeds?: FinetuneSeeds }[];
  /** fine-tuned with several seeds: the first rule's merged model's and the pruned twin's */
  seeds?: { finetuned: FinetuneSeeds; prunedFinetuned: FinetuneSeeds };
  /** the merged (first rule) and pruned models after fine-tuning, as checkpoints relative to the
   * report's folder */
  models?: { merged: string; pruned: string; rules?: Record<string, string> };
  speedup: { flops: number; measured: number };
  /** what merging did to each layer (the teaching view) */
  explain: LayerExplanation[];
  /** the first convolution's filters, grouped, and the merged ones (the first rule's merge) */
  filters?: FilterView | null;
}

export interface Report {
  /** the command as typed, after `neuronmerge` (`reproduce lenet --quick`) */
  command: string;
  /** reproduce --paper: the paper's setting (the mean rule, plain fine-tuning) */
  paper?: boolean;
  /** the training images the merged and pruned models' batch norms were re-estimated on (null: not done) */
  recalibrated: number | null;
  /** the side of the Cutout square those images had (absent: none) */
  recalibrateCutout?: number;
  /** each layer's units rounded to a multiple of this (merged and pruned alike) */
  multipleOf?: number;
  /** how the compressed models were fine-tuned */
  finetune?: { epochs: number; lr?: number; schedule: string; weightDecay?: number; distill: { temperature: number; weight: number } | null; cutout?: number };
  /** where a merging rule could not apply as asked (a scaling rule before a sigmoid) */
  notes?: string[];
  /** the model family (lenet5, dbn, vgg16), or the network's name for a sequential one (mlp) */
  model: string;
  data: string;
  quick: boolean;
  seed: number;
  /** the seeds each compressed model was fine-tuned with, where several were asked for */
  finetuneSeeds?: number[];
  machine: string;
  seconds: number;
  original: {
    accuracy: number; params: number; flops: number; epochs: number; arch: Arch;
    /** test accuracy per class, with the class names */
    perClass: { name: string; accuracy: number }[];
    /** per batch norm, the spread of its effective scales (none for networks without batch norm) */
    batchNorm: BatchNormSpread[];
  };
  results: RatioResult[];
  /** published compressions of the same network and data, drawn beside the results (drop from their
   * own original against the share removed) */
  published?: PublishedPoint[];
}

/** the facts a page of a merge starts with */
export interface PageFacts {
  /** the page's heading */
  title: string;
  /** the command as typed, after `neuronmerge` */
  command: string;
  checkpoint: string;
  model: string;
  data: string;
  /** the merging rule (the explain page: the one whose clusters the layers show) and clustering method */
  rule: string;
  method: string;
  seed: number;
  machine: string;
  seconds: number;
}

/** what `merge` shows of one compression: the run's facts, units per layer, and what merging did to
 * each layer */
export interface CompressionView extends PageFacts {
  /** the page's heading */
  /** the merged checkpoint written */
  out?: string;
  /** how the units per layer were chosen, in words */
  allocation: string;
  units: { layer: string; before: number; after: number }[];
  params: { before: number; after: number };
  flops: { before: number; after: number };
  /** test accuracy of the original and of the merged model before fine-tuning (null: not measured) */
  accuracy: { before: number | null; after: number | null };
  recalibrated: number | null;
  notes: string[];
  explain: LayerExplanation[];
  filters?: FilterView | null;
}

/** what the explain page shows: merging swept over ratios (src/experiment/explain.ts) */
export interface ExplainView extends PageFacts {
  original: { accuracy: number; params: number };
  /** the rules on the accuracy curve, in order */
  rules: string[];
  recalibrated: number | null;
  /** test images the output shift is measured on */
  images: number;
  notes: string[];
  /** per mergeable layer, what does not change with the ratio */
  layers: {
    layer: string;
    units: number;
    /** one unit's incoming weights: [channels, rows, columns] (a filter, or an image) or [inputs] */
    shape: number[];
    /** every unit's incoming weights, batch norm folded (units × fan-in) */
    weights: Float32Array;
    /** the units in the plane of their first two principal components */
    map: { x: number[]; y: number[]; explained: [number, number] };
    /** agglomerative methods: the dendrogram the ratios cut */
    tree?: Merge[];
  }[];
  ratios: {
    ratio: number;
    params: number;
    removed: number;
    accuracy: Record<string, number>;
    pruned: number;
    layers: {
      clusters: number;
      sizes: { min: number; median: number; max: number; singletons: number };
      spread: number;
      outputShift: number;
      /** each unit's group */
      group: number[];
      /** the rules that keep units: the unit each group keeps */
      kept?: number[];
      /** each group's replacing unit when this layer alone is merged (groups × fan-in) */
      replacement: Float32Array;
    }[];
  }[];
}
