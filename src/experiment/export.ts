// A checkpoint (or a model in memory) written as ONNX, with what its input must be recorded in the
// file: what `neuronmerge export` and `--format onnx` do.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inputShape, modelName } from '../models/index.js';
import type { Arch } from '../models/index.js';
import type { Sequential } from '../nn/layers.js';
import { toOnnx } from '../onnx/export.js';
import { checkOutputFile, writeFileAtomic } from '../runtime/files.js';
import type { CheckpointKind } from '../train/checkpoint.js';
import { networkOf } from './networks.js';
import { loadTask, modelFromCheckpoint } from './task.js';
import type { TaskLoadOptions } from './task.js';
import { OptionError, quote } from '../runtime/errors.js';

/** how a model's output is written: a neuronmerge checkpoint or an ONNX file */
export type ModelFormat = 'safetensors' | 'onnx';

/** the format asked for, else the one the file name says (.onnx), else a checkpoint */
export function formatFor(out: string, asked?: string): ModelFormat {
  if (asked !== undefined && asked !== 'safetensors' && asked !== 'onnx') throw new OptionError(`{format} must be safetensors or onnx, got '${quote(asked)}'`);
  return (asked as ModelFormat | undefined) ?? (/\.onnx$/i.test(out) ? 'onnx' : 'safetensors');
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

/** `neuronmerge export`: a checkpoint as ONNX; for networks whose input is standardised per channel
 * (VGG-16 on CIFAR-10) the training set's mean and standard deviation, as the checkpoint records them
 * (read from the dataset for a checkpoint that does not), are recorded in the file */
export async function exportCheckpoint(file: string, out: string, o: { foldBatchNorm?: boolean; data?: TaskLoadOptions } = {}): Promise<OnnxExport & { from: string; arch: Arch; kind: CheckpointKind }> {
  checkOutputFile(out, '{out}', [file]);
  const c = modelFromCheckpoint(file, o.data?.dataset);
  c.model.eval();
  // recorded in the checkpoint since training; read from the dataset for files written before that
  const normalization = networkOf(c.arch).normalization === 'channel' ? c.normalization ?? (await loadTask(c.arch, o.data)).norm : undefined;
  return { ...writeOnnx(out, c, { ...o, normalization }), from: file, arch: c.arch, kind: c.kind };
}
