// A checkpoint (or a model in memory) written as ONNX, with what its input must be recorded in the
// file (what `neuronmerge export` and `--format onnx` do), or as a checkpoint of the model alone, its
// weights float32 or float16 (how a trained model is shipped).
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inputShape, modelName } from '../models/index.js';
import type { Arch } from '../models/index.js';
import type { Sequential } from '../nn/layers.js';
import { toOnnx } from '../onnx/export.js';
import { checkOutputFile, writeFileAtomic } from '../runtime/files.js';
import { checkFinite, saveCheckpoint, storedAsHalf } from '../train/checkpoint.js';
import type { CheckpointKind } from '../train/checkpoint.js';
import { roundHalf } from '../tensor/half.js';
import { networkOf } from './networks.js';
import { accuracyOf, loadTask, modelFromCheckpoint } from './task.js';
import type { TaskLoadOptions } from './task.js';
import { OptionError, quote } from '../runtime/errors.js';

/** how a model's output is written: a neuronmerge checkpoint or an ONNX file */
export type ModelFormat = 'safetensors' | 'onnx';

/** the format asked for, else the one the file name says (.onnx or .safetensors), else `otherwise`
 * (merge, prune and finetune write a checkpoint; export writes ONNX) */
export function formatFor(out: string, asked?: string, otherwise: ModelFormat = 'safetensors'): ModelFormat {
  if (asked !== undefined && asked !== 'safetensors' && asked !== 'onnx') throw new OptionError(`{format} must be safetensors or onnx, got '${quote(asked)}'`);
  return (asked as ModelFormat | undefined) ?? (/\.onnx$/i.test(out) ? 'onnx' : /\.safetensors$/i.test(out) ? 'safetensors' : otherwise);
}

const version = (): string => {
  try {
    return (JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string }).version;
  } catch {
    return '';
  }
};

/** what the exported model takes: the images as neuronmerge feeds its models */
function inputText(arch: Arch): string {
  const s = networkOf(arch);
  const shape = inputShape(arch).join(' × ');
  return s.normalization === 'unit'
    ? `batch × ${shape}: pixels / 255${s.flat ? ', each image flattened row by row' : ''}`
    : `batch × ${shape}: pixels / 255, then per channel minus the training set's mean and over its standard deviation (neuronmerge.mean, neuronmerge.std when recorded)`;
}

export interface OnnxExport {
  out: string;
  bytes: number;
  foldBatchNorm: boolean;
  input: string;
}

/** write `model` (of architecture `arch`) as ONNX to `out`, whole or not at all */
export function writeOnnx(out: string, m: { model: Sequential; arch: Arch; kind: CheckpointKind }, o: { foldBatchNorm?: boolean; normalization?: { mean: number[]; std: number[] } } = {}): OnnxExport {
  const input = inputText(m.arch);
  const metadata: Record<string, string> = { 'neuronmerge.arch': JSON.stringify(m.arch), 'neuronmerge.kind': m.kind, 'neuronmerge.input': input };
  if (o.normalization) {
    metadata['neuronmerge.mean'] = JSON.stringify(o.normalization.mean);
    metadata['neuronmerge.std'] = JSON.stringify(o.normalization.std);
  }
  const bytes = toOnnx(m.model, inputShape(m.arch), { foldBatchNorm: o.foldBatchNorm, name: `${modelName(m.arch)} (${m.kind})`, version: version(), metadata, doc: `${modelName(m.arch)} (${m.kind}) from neuronmerge; input ${input}; output batch × classes, the logits` });
  writeFileAtomic(out, bytes);
  return { out, bytes: bytes.length, foldBatchNorm: o.foldBatchNorm === true, input };
}

/** what exportCheckpoint wrote */
export interface ModelExport {
  from: string;
  out: string;
  format: ModelFormat;
  bytes: number;
  arch: Arch;
  kind: CheckpointKind;
  /** ONNX: whether batch norms were folded; a checkpoint: false */
  foldBatchNorm: boolean;
  /** what the model takes */
  input: string;
  /** a checkpoint's weight tensors: float32, or float16 */
  weights: 'float32' | 'float16';
  /** the moving average of the weights written in their place (training's --ema), where asked */
  averaged?: { decay: number; updates: number; since: number };
  /** float16: test accuracy before and after rounding the weights (they differ by at most `tolerance`) */
  accuracy?: { float32: number; float16: number; images: number };
}

/** the largest change of test accuracy float16 weights may bring unless told: 0.05 points */
export const FLOAT16_TOLERANCE = 0.0005;

/**
 * `neuronmerge export`: a checkpoint (or an ONNX model) written for other runtimes or for shipping.
 * ONNX: for networks whose input is standardised per channel (VGG-16 on CIFAR-10) the training set's
 * mean and standard deviation, as the checkpoint records them (read from the dataset for a checkpoint
 * that does not), are recorded in the file. A checkpoint (`format: 'safetensors'`): the model alone,
 * with its kind, training record and input statistics, no optimizer state or generator states (what
 * a trained original is shipped as); `float16` stores the weights of convolutions and linear layers in
 * half precision, after measuring the test accuracy before and after rounding them: a change larger
 * than `tolerance` (a fraction; default 0.0005) writes nothing.
 */
export async function exportCheckpoint(file: string, out: string, o: { format?: ModelFormat; float16?: boolean; tolerance?: number; foldBatchNorm?: boolean; ema?: boolean; data?: TaskLoadOptions; log?: (line: string) => void } = {}): Promise<ModelExport> {
  const format = formatFor(out, o.format, 'onnx');
  if (o.float16 && format !== 'safetensors') throw new OptionError(`{float16} stores a checkpoint's weights in half precision: it needs {format} safetensors (or {out} ending in .safetensors)`);
  if (o.foldBatchNorm && format !== 'onnx') throw new OptionError('{foldBatchNorm} applies to ONNX only: a checkpoint keeps its batch norms');
  const tolerance = o.tolerance ?? FLOAT16_TOLERANCE;
  if (!(tolerance >= 0 && tolerance <= 1)) throw new OptionError(`{tolerance} must be a fraction from 0 to 1, got ${tolerance}`);
  checkOutputFile(out, '{out}', [file]);
  const c = modelFromCheckpoint(file, o.data?.dataset);
  c.model.eval();
  // the moving average of the weights a training run kept beside them, in their place
  let averaged: ModelExport['averaged'];
  if (o.ema) {
    const saved = c.average;
    if (!saved) throw new OptionError(`{ema}: ${quote(file)} holds no moving average of its weights (training keeps one where asked to average them)`);
    c.model.loadStateDict(saved.values, `${quote(file)}: averaged weights`);
    checkFinite(file, c.model.stateDict());
    averaged = saved.state;
    c.train = c.train ? { ...c.train, extra: { ...c.train.extra, averaged } } : null;
  }
  const channel = networkOf(c.arch).normalization === 'channel';
  // the dataset is read only where it is needed: input statistics a file lacks, or the float16 check
  const task = o.float16 || (channel && !c.normalization) ? await loadTask(c.arch, o.data) : undefined;
  // recorded in the checkpoint since training; read from the dataset for files written before that
  const normalization = channel ? c.normalization ?? task!.norm : undefined;
  const base = { from: file, arch: c.arch, kind: c.kind, input: inputText(c.arch), ...(averaged ? { averaged } : {}) };
  if (format === 'onnx') return { ...base, ...writeOnnx(out, c, { foldBatchNorm: o.foldBatchNorm, normalization }), format, weights: 'float32' };
  let accuracy: ModelExport['accuracy'];
  if (o.float16) {
    o.log?.(`${file}: measuring the test accuracy (${task!.test.count} images) in float32 and with float16 weights`);
    const before = accuracyOf(c.model, task!).accuracy;
    for (const t of c.model.stateDict().values()) if (storedAsHalf(t)) (t.data as Float32Array).set(roundHalf(t.data as Float32Array));
    const after = accuracyOf(c.model, task!).accuracy;
    accuracy = { float32: before, float16: after, images: task!.test.count };
    if (Math.abs(after - before) > tolerance + 1e-12) {
      throw new Error(`${file}: with float16 weights the test accuracy moves from ${(100 * before).toFixed(2)}% to ${(100 * after).toFixed(2)}% (${(100 * (after - before)).toFixed(2)} points, more than the ${(100 * tolerance).toFixed(2)} allowed); nothing written. Export it as float32`);
    }
  }
  saveCheckpoint(out, { arch: c.arch, model: c.model, kind: c.kind, train: c.train ?? undefined, normalization: normalization ?? c.normalization, weights: o.float16 ? 'float16' : 'float32' });
  return { ...base, out, format, bytes: statSync(out).size, foldBatchNorm: false, weights: o.float16 ? 'float16' : 'float32', ...(accuracy ? { accuracy } : {}) };
}
