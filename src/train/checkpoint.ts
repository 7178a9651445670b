// Checkpoints in the safetensors format: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}, then the raw data. Written to
// a temporary file, flushed and renamed, so a crash never leaves a half-written checkpoint under the
// real name. Reading trusts nothing: header length, JSON, dtypes, shapes, offsets and sizes are all
// checked against the file before anything is allocated.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { modelFormatOf, writeFileAtomic } from '../runtime/files.js';
import type { Arch } from '../models/index.js';
import { parseArch, stateSize } from '../models/index.js';
import type { Module } from '../nn/module.js';
import type { Optimizer, OptimizerState } from '../optim/index.js';
import type { RngState } from '../tensor/rng.js';
import { Tensor } from '../tensor/tensor.js';
import { fromHalf, toHalf } from '../tensor/half.js';
import type { AverageState, WeightAverage } from './ema.js';

const MAX_HEADER = 100 * 1024 * 1024;
// F16 (half precision) is a storage format only: read into float32
const DTYPES: Record<string, { bytes: number; dtype: 'float16' | 'float32' | 'float64' }> = { F16: { bytes: 2, dtype: 'float16' }, F32: { bytes: 4, dtype: 'float32' }, F64: { bytes: 8, dtype: 'float64' } };

export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/**
 * Writes the tensors and metadata as one safetensors file, whole or not at all. The float32 tensors
 * named in `half` are stored as float16 (each value rounded to the nearest; the caller checks that
 * nothing overflows).
 */
export function writeSafetensors(path: string, tensors: Map<string, Tensor>, metadata: Record<string, string> = {}, half: ReadonlySet<string> = new Set()): void {
  const header: Record<string, unknown> = {};
  const chunks: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of tensors) {
    const asHalf = half.has(name) && t.dtype === 'float32';
    const data = asHalf ? toHalf(t.data as Float32Array) : t.data;
    const bytes = data.byteLength;
    header[name] = { dtype: asHalf ? 'F16' : t.dtype === 'float64' ? 'F64' : 'F32', shape: t.shape, data_offsets: [off, off + bytes] };
    chunks.push(new Uint8Array(data.buffer, data.byteOffset, bytes));
    off += bytes;
  }
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // keep the data 8-byte aligned
  const head = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  try {
    writeFileAtomic(path, [len, head, ...chunks]);
  } catch (e) {
    throw new CheckpointError((e as Error).message.replace(': cannot write (', ': cannot write checkpoint ('));
  }
}

export function readSafetensors(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new CheckpointError(`${path}: is a folder, not a checkpoint file`);
    size = st.size;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (size < 8) throw new CheckpointError(`${path}: ${size} bytes is too short for a safetensors file`);
  const fd = openSync(path, 'r');
  const lenBuf = Buffer.alloc(8);
  try {
    require8(fd, lenBuf);
  } finally {
    closeSync(fd);
  }
  const n = lenBuf.readBigUInt64LE();
  if (n > BigInt(Math.min(MAX_HEADER, size - 8))) {
    const format = modelFormatOf(lenBuf);
    const what = format === 'onnx' ? 'it starts like an ONNX model, not a safetensors file' : format === 'zip' ? 'it is a zip archive (a PyTorch .pt file?), not a safetensors file' : 'not a safetensors file, or truncated';
    throw new CheckpointError(`${path}: header length ${n} is larger than the file (${size} bytes) or the 100 MB limit; ${what}`);
  }
  const buf = readFileSync(path);
  const hlen = Number(n);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8'));
  } catch (e) {
    throw new CheckpointError(`${path}: header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new CheckpointError(`${path}: header is not a JSON object`);
  const dataStart = 8 + hlen;
  const dataLen = size - dataStart;
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!v || typeof v !== 'object' || Object.values(v).some((x) => typeof x !== 'string')) throw new CheckpointError(`${path}: __metadata__ must map names to strings`);
      metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dt = typeof e?.dtype === 'string' ? DTYPES[e.dtype] : undefined;
    if (!dt) throw new CheckpointError(`${path}: tensor '${name}' has dtype ${JSON.stringify(e?.dtype)}; only F16, F32 and F64 are supported`);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isInteger(d) || d < 0)) throw new CheckpointError(`${path}: tensor '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) throw new CheckpointError(`${path}: tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    const [b, end] = offs as [number, number];
    if (b > end || end > dataLen) throw new CheckpointError(`${path}: tensor '${name}' data_offsets [${b}, ${end}] lie outside the ${dataLen} data bytes (truncated file?)`);
    const count = (e.shape as number[]).reduce((p, d) => p * d, 1);
    if (count * dt.bytes !== end - b) throw new CheckpointError(`${path}: tensor '${name}' of shape [${(e.shape as number[]).join(',')}] needs ${count * dt.bytes} bytes, its offsets give ${end - b}`);
    ranges.push([b, end, name]);
    const bytes = buf.subarray(dataStart + b, dataStart + end);
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    const data = dt.dtype === 'float64' ? new Float64Array(copy.buffer) : dt.dtype === 'float16' ? fromHalf(new Uint16Array(copy.buffer)) : new Float32Array(copy.buffer);
    tensors.set(name, new Tensor(data, e.shape as number[]));
  }
  ranges.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) throw new CheckpointError(`${path}: tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`);
  }
  return { tensors, metadata };
}

function require8(fd: number, out: Buffer): void {
  if (readSync(fd, out, 0, 8, 0) !== 8) throw new CheckpointError('short read of the header length');
}

export interface TrainState {
  /** the epoch and batch the next step will run */
  epoch: number;
  /** the epochs the run was asked for: a file with `epoch` below it is a run cut short (files written
   * before this was recorded leave it out) */
  epochs?: number;
  batch: number;
  /** optimizer steps taken */
  step: number;
  /** CPU time (user + system) and wall time spent training so far, over every resumed run */
  cpuSeconds?: number;
  seconds?: number;
  /** anything else worth keeping (history, best accuracy) */
  extra?: Record<string, unknown>;
}

/** what a checkpoint holds: a trained original, or what merge, prune or finetune made of one */
export type CheckpointKind = 'original' | 'merged' | 'pruned' | 'finetuned';
export const CHECKPOINT_KINDS: readonly CheckpointKind[] = ['original', 'merged', 'pruned', 'finetuned'];

export interface Checkpoint {
  arch: Arch;
  /** files written before kinds were recorded read as 'original' */
  kind: CheckpointKind;
  state: Map<string, Tensor>;
  train: TrainState | null;
  optimizer: (OptimizerState & { type: string; lr: number }) | null;
  rngs: RngState[];
  /** what the model's input was standardised by (per channel, pixel/255 units), where recorded */
  normalization: InputNormalization | null;
  /** a moving average of the weights kept beside them in training (`ema.*` tensors), where there is one */
  average: { state: AverageState; values: Map<string, Tensor> } | null;
}

/** per-channel mean and standard deviation the input is standardised by (pixel/255 units) */
export interface InputNormalization {
  mean: number[];
  std: number[];
}

/** whether a training state stops before the epochs it was asked for */
export const unfinished = (t: TrainState | null): boolean => t !== null && t.epochs !== undefined && t.epoch < t.epochs;

/**
 * Throws unless every number of every tensor is finite, naming the file, the first tensor and the
 * index that is not: a model with a NaN or an infinity in it computes nothing meaningful, and every
 * figure made from it would mislead.
 */
export function checkFinite(path: string, tensors: Iterable<[string, Tensor]>): void {
  const bad = firstNonFinite(tensors);
  if (bad) throw new CheckpointError(`${path}: tensor '${bad.name}' holds ${bad.value} at index ${bad.index}; a model with non-finite weights cannot be used`);
}

/** the first NaN or infinity among the tensors (name, index, value), or null where all are finite */
export function firstNonFinite(tensors: Iterable<[string, Tensor]>): { name: string; index: number; value: number } | null {
  for (const [name, t] of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return { name, index: i, value: d[i] };
  }
  return null;
}

function parseNormalization(path: string, v: unknown): InputNormalization {
  const n = v as InputNormalization;
  const ok = (xs: unknown, positive: boolean) => Array.isArray(xs) && xs.length > 0 && xs.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  if (!n || typeof n !== 'object' || !ok(n.mean, false) || !ok(n.std, true) || n.mean.length !== n.std.length) {
    throw new CheckpointError(`${path}: metadata field 'normalization' must hold per-channel 'mean' and positive 'std' lists of one length`);
  }
  return { mean: n.mean, std: n.std };
}

/** the largest finite float16 value */
export const HALF_MAX = 65504;

/** whether a float16 checkpoint stores this model tensor in half precision: the weights of
 * convolutions and linear layers (rank 2 and up, nearly all the numbers); biases and batch norms'
 * parameters and statistics stay float32 */
export const storedAsHalf = (t: Tensor): boolean => t.shape.length >= 2 && t.dtype === 'float32';

/**
 * model (+ optimizer, training position, generator states) -> one safetensors file. `weights:
 * 'float16'` stores the model's weight tensors (storedAsHalf) in half precision, half the bytes; a
 * value past float16's range is refused, naming its tensor, before anything is written.
 */
export function saveCheckpoint(path: string, c: { arch: Arch; model: Module; kind?: CheckpointKind; optimizer?: Optimizer; train?: TrainState; rngs?: RngState[]; normalization?: InputNormalization | null; weights?: 'float32' | 'float16'; average?: WeightAverage | null }): void {
  const tensors = new Map<string, Tensor>();
  const half = new Set<string>();
  const state = c.model.stateDict();
  for (const [k, t] of state) {
    tensors.set('model.' + k, t);
    if (c.weights === 'float16' && storedAsHalf(t)) {
      const d = t.data;
      for (let i = 0; i < d.length; i++) {
        if (!(Math.abs(d[i]) <= HALF_MAX)) throw new CheckpointError(`${path}: tensor 'model.${k}' holds ${d[i]} at index ${i}, past float16's range (±${HALF_MAX}); write it as float32`);
      }
      half.add('model.' + k);
    }
  }
  const meta: Record<string, string> = { format: 'neuronmerge-checkpoint', version: '1', kind: c.kind ?? 'original', arch: JSON.stringify(c.arch) };
  if (c.optimizer) {
    const st = c.optimizer.getState();
    st.slots.forEach((m, i) => {
      for (const [slot, v] of Object.entries(m)) tensors.set(`optim.${i}.${slot}`, new Tensor(v, [v.length]));
    });
    meta.optimizer = JSON.stringify({ type: c.optimizer.constructor.name, lr: c.optimizer.lr, step: st.step, params: c.optimizer.params.length });
  }
  if (c.average) {
    for (const [k, v] of c.average.values) tensors.set('ema.' + k, new Tensor(v, state.get(k)!.shape));
    meta.ema = JSON.stringify(c.average.state);
  }
  if (c.train) meta.train = JSON.stringify(c.train);
  if (c.rngs) meta.rngs = JSON.stringify(c.rngs);
  if (c.normalization) meta.normalization = JSON.stringify({ mean: c.normalization.mean, std: c.normalization.std });
  writeSafetensors(path, tensors, meta, half);
}

/**
 * Throws unless the model a checkpoint's `arch` describes holds as many numbers as the file does: the
 * check to make before building a model from the description (a file that claims a model of 3000-wide
 * layers would otherwise cost gigabytes before its shapes are compared).
 */
export function checkArchHolds(path: string, c: Checkpoint): void {
  let held = 0;
  for (const t of c.state.values()) held += t.size;
  const want = stateSize(c.arch);
  if (want !== held) throw new CheckpointError(`${path}: metadata field 'arch' describes a model of ${want.toLocaleString('en')} values, the file holds ${held.toLocaleString('en')}`);
}

export function loadCheckpoint(path: string): Checkpoint {
  const { tensors, metadata } = readSafetensors(path);
  if (metadata.format !== 'neuronmerge-checkpoint') throw new CheckpointError(`${path}: not a neuronmerge checkpoint (metadata.format is ${JSON.stringify(metadata.format)})`);
  const parse = (field: string): unknown => {
    try {
      return JSON.parse(metadata[field]);
    } catch {
      throw new CheckpointError(`${path}: metadata field '${field}' is not valid JSON`);
    }
  };
  const kind = (metadata.kind ?? 'original') as CheckpointKind;
  if (!CHECKPOINT_KINDS.includes(kind)) throw new CheckpointError(`${path}: metadata field 'kind' is ${JSON.stringify(metadata.kind)}, not one of ${CHECKPOINT_KINDS.join(', ')}`);
  const state = new Map<string, Tensor>();
  const slots: { [slot: string]: Float32Array }[] = [];
  const averaged = new Map<string, Tensor>();
  for (const [k, t] of tensors) {
    if (k.startsWith('model.')) state.set(k.slice(6), t); else if (k.startsWith('ema.')) averaged.set(k.slice(4), t); else if (k.startsWith('optim.')) {
      const [, i, slot] = k.split('.');
      const idx = Number(i);
      if (!Number.isInteger(idx) || idx < 0 || idx >= tensors.size || !slot) throw new CheckpointError(`${path}: bad optimizer tensor name '${k}'`);
      (slots[idx] ??= {})[slot] = t.data as Float32Array;
    }
  }
  let arch: Arch;
  try {
    arch = parseArch(parse('arch'), `${path}: arch`);
  } catch (e) {
    throw new CheckpointError((e as Error).message);
  }
  let optimizer: Checkpoint['optimizer'] = null;
  if (metadata.optimizer) {
    const o = parse('optimizer') as { type: string; lr: number; step: number; params: number };
    if (!o || typeof o !== 'object' || !Number.isInteger(o.params) || o.params < 0 || o.params > state.size || slots.length > o.params) {
      throw new CheckpointError(`${path}: metadata field 'optimizer' names ${JSON.stringify(o?.params)} parameters; the file holds ${state.size} model tensors and optimizer state for ${slots.length}`);
    }
    if (!Number.isSafeInteger(o.step) || o.step < 0 || !(o.lr >= 0)) throw new CheckpointError(`${path}: metadata field 'optimizer' has step ${JSON.stringify(o.step)}, lr ${JSON.stringify(o.lr)}`);
    for (let i = 0; i < o.params; i++) slots[i] ??= {};
    optimizer = { type: o.type, lr: o.lr, step: o.step, slots };
  }
  const train = metadata.train ? (parse('train') as TrainState) : null;
  const rngs = metadata.rngs ? (parse('rngs') as RngState[]) : [];
  const normalization = metadata.normalization ? parseNormalization(path, parse('normalization')) : null;
  let average: Checkpoint['average'] = null;
  if (metadata.ema !== undefined || averaged.size) {
    const a = metadata.ema === undefined ? null : (parse('ema') as AverageState);
    if (!a || typeof a !== 'object' || !(a.decay > 0 && a.decay < 1) || !Number.isSafeInteger(a.updates) || a.updates < 0 || !Number.isSafeInteger(a.since) || a.since < 0) {
      throw new CheckpointError(`${path}: metadata field 'ema' must give the average's decay (between 0 and 1), updates and starting step; it is ${JSON.stringify(metadata.ema ?? null)}`);
    }
    const odd = [...state.keys()].find((k) => averaged.get(k)?.size !== state.get(k)!.size) ?? [...averaged.keys()].find((k) => !state.has(k));
    if (odd !== undefined) throw new CheckpointError(`${path}: the averaged weights (ema.*) do not match the model's: '${odd}' ${averaged.has(odd) ? (state.has(odd) ? 'differs in size' : 'is not in the model') : 'is missing'}`);
    average = { state: { decay: a.decay, updates: a.updates, since: a.since }, values: averaged };
  }
  checkFinite(path, tensors);
  return { arch, kind, state, train, optimizer, rngs, normalization, average };
}
