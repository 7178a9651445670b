// Tensor: dense row-major storage (Float32Array, or Float64Array for gradient checks) plus a shape,
// and the reverse-mode autograd engine. Ops live in ops.ts; the methods here are thin sugar over them.

import type { DType, FloatArray } from '../backend/types.js';
import * as ops from './ops.js';
import { Rng } from './rng.js';

export type { DType, FloatArray };

export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** upstream gradient (shape of the output) -> one gradient per input (null where none) */
  backward: (g: Tensor) => (Tensor | null)[];
}

let gradEnabled = true;

/** Whether ops record their backward now. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run fn with autograd off: nothing is recorded, no graph is kept alive. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export function shapeStr(shape: readonly number[]): string {
  return '[' + shape.join(',') + ']';
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(op: string, shape: readonly number[]): number[] {
  if (!Array.isArray(shape)) throw new Error(`${op}: shape must be an array of non-negative integers, got ${String(shape)}`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${op}: shape ${shapeStr(shape)} has an invalid dimension ${d}`);
  }
  const n = sizeOf(shape);
  if (n > 2 ** 31 - 1) throw new Error(`${op}: shape ${shapeStr(shape)} has ${n} elements, more than a typed array can hold`);
  return [...shape];
}

// Gradient buffers recycled. Every new typed array of a training step is memory outside V8's heap,
// and V8 starts a full garbage collection each time that memory grows by 64 MB: a VGG-16 step at batch
// 128 allocates over a gigabyte and ran about nine full collections, their marking on the same two
// cores as the kernels. The gradients that a backward pass makes and consumes are its own: no tensor a
// caller can reach holds them once the next node has read them. Those buffers go to this pool, and
// allocate() hands them out again, zeroed, to the next op of the same length and type (the next
// layer's gradient, or the next step's activations). Only buffers allocated during the pass, whole
// (not views), neither taken by a leaf's .grad nor still held by a pending gradient, are returned.
const POOL_MIN = 4096; // elements: smaller arrays cost V8 little
let poolCap = envPoolBytes();
let poolBytes = 0;
const pool = new Map<number, FloatArray[]>();
/** the buffers in the pool now (an array handed back twice would otherwise go to two ops) */
let pooled = new WeakSet<ArrayBufferLike>();
/** the buffers allocated while a backward pass runs (null outside one) */
let born: Set<ArrayBufferLike> | null = null;
/** the buffers allocated inside trackAllocations (null outside it) */
let tracked: Set<ArrayBufferLike> | null = null;

// NEURONMERGE_GRAD_POOL in MiB; a value it does not accept leaves the default here (the command
// refuses it with a message before any work: runtime/env.ts)
function envPoolBytes(): number {
  const v = typeof process !== 'undefined' ? process.env?.NEURONMERGE_GRAD_POOL : undefined;
  return v !== undefined && /^\d+(\.\d+)?$/.test(v) ? Number(v) * 2 ** 20 : 1024 * 2 ** 20;
}

const poolKey = (dtype: DType, n: number): number => n * 2 + (dtype === 'float64' ? 1 : 0);

/**
 * A new array of n elements of dtype, zeroed; or, where `zero` is false, with whatever it holds (for
 * an op whose kernel writes every element: an array from the pool then skips its clearing, 4-5% of a
 * VGG-16 training step at batch 128 for the convolutions' and batch norms' outputs and gradients).
 */
export function allocate(dtype: DType, n: number, zero = true): FloatArray {
  let a: FloatArray | undefined;
  if (n >= POOL_MIN && poolBytes > 0) {
    a = pool.get(poolKey(dtype, n))?.pop();
    if (a) {
      pooled.delete(a.buffer);
      poolBytes -= a.byteLength;
      if (zero) a.fill(0);
    }
  }
  a ??= dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
  if (n >= POOL_MIN) {
    born?.add(a.buffer);
    tracked?.add(a.buffer);
  }
  return a;
}

/**
 * Run fn and say which arrays (of the pool's sizes) the ops inside it allocated: a training step
 * passes the forward's to backward({ spent }) so that its activations are reused once the pass is
 * done with them.
 */
export function trackAllocations<T>(fn: () => T): { result: T; buffers: Set<ArrayBufferLike> } {
  const outer = tracked;
  const buffers = new Set<ArrayBufferLike>();
  tracked = buffers;
  try {
    const result = fn();
    if (outer) for (const b of buffers) outer.add(b);
    return { result, buffers };
  } finally {
    tracked = outer;
  }
}

function recycle(a: FloatArray): void {
  if (a.byteLength > poolCap - poolBytes || pooled.has(a.buffer)) return;
  pooled.add(a.buffer);
  const k = poolKey(a instanceof Float64Array ? 'float64' : 'float32', a.length);
  const list = pool.get(k);
  if (list) list.push(a);
  else pool.set(k, [a]);
  poolBytes += a.byteLength;
}

/**
 * Hands arrays back to the pool that ops draw their outputs from, for the next op of the same length
 * and type to reuse: neither the caller nor any tensor viewing them may read or write them afterwards.
 * An optimizer's zeroGrad({ reuse: true }) passes the gradients its step consumed: a VGG-16 training
 * step at batch 128 otherwise takes 59 MB of fresh memory for its weight gradients, a page fault per
 * 4 KiB (about 50 ms of a 600 ms step on a Zen 5). Arrays below the pool's least size (4096
 * elements), views of part of a buffer, arrays already in the pool and arrays past its cap are left
 * alone.
 */
export function releaseArrays(arrays: Iterable<FloatArray>): void {
  for (const a of arrays) {
    if (a.length < POOL_MIN || a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength) continue;
    recycle(a);
  }
}

/**
 * The most memory (bytes) that backward passes may keep for reuse; 0 turns the reuse off and drops
 * what is kept. Default 1 GiB, or NEURONMERGE_GRAD_POOL (MiB).
 */
export function setGradientPool(bytes: number): void {
  if (!Number.isFinite(bytes) || bytes < 0) throw new Error(`setGradientPool: expected a number of bytes >= 0, got ${bytes}`);
  poolCap = bytes;
  if (poolBytes > poolCap) {
    pool.clear();
    pooled = new WeakSet();
    poolBytes = 0;
  }
}

/** What the gradient pool holds now: bytes and arrays. */
export function gradientPool(): { bytes: number; arrays: number; capBytes: number } {
  let arrays = 0;
  for (const l of pool.values()) arrays += l.length;
  return { bytes: poolBytes, arrays, capBytes: poolCap };
}

export interface BackwardOptions {
  /** keep the graph for another backward pass (nothing is reused then) */
  retainGraph?: boolean;
  /**
   * Activations the pass may reuse: arrays the forward allocated (trackAllocations) that nothing
   * outside the graph reads after backward, except the `keep` tensors' (the model's output, say).
   * Each goes to the gradient pool once every node that reads it is done.
   */
  spent?: { buffers: Set<ArrayBufferLike>; keep?: Tensor[] };
}

export class Tensor {
  data: FloatArray;
  readonly shape: number[];
  readonly dtype: DType;
  requiresGrad: boolean;
  grad: Tensor | null = null;
  /** the op that made this tensor, while a graph is recorded */
  node: GradNode | null = null;

  constructor(data: FloatArray, shape: readonly number[], requiresGrad = false) {
    const s = checkShape('Tensor', shape);
    if (!(data instanceof Float32Array) && !(data instanceof Float64Array)) {
      throw new Error('Tensor: data must be a Float32Array or Float64Array');
    }
    if (data.length !== sizeOf(s)) {
      throw new Error(`Tensor: data has ${data.length} elements but shape ${shapeStr(s)} needs ${sizeOf(s)}`);
    }
    this.data = data;
    this.shape = s;
    this.dtype = data instanceof Float64Array ? 'float64' : 'float32';
    this.requiresGrad = requiresGrad;
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** the value of a one-element tensor */
  item(): number {
    if (this.size !== 1) throw new Error(`item: tensor of shape ${shapeStr(this.shape)} has ${this.size} elements, not 1`);
    return this.data[0];
  }

  /** nested arrays of numbers */
  toArray(): any {
    const rec = (dim: number, off: number): any => {
      if (dim === this.shape.length) return this.data[off];
      const inner = sizeOf(this.shape.slice(dim + 1));
      const out = [];
      for (let i = 0; i < this.shape[dim]; i++) out.push(rec(dim + 1, off + i * inner));
      return out;
    };
    return rec(0, 0);
  }

  toString(): string {
    return `Tensor(${shapeStr(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  /** a tensor on the same storage, cut from the graph */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, false);
  }

  /** a copy with its own storage (cut from the graph) */
  clone(): Tensor {
    return new Tensor(this.data.slice() as FloatArray, this.shape, false);
  }

  /** this tensor converted to dtype (a copy when the dtype differs; recorded for autograd) */
  to(dtype: DType): Tensor {
    return ops.cast(this, dtype);
  }

  setRequiresGrad(on = true): this {
    this.requiresGrad = on;
    return this;
  }

  zeroGrad(): void {
    this.grad = null;
  }

  /**
   * Reverse-mode differentiation from this tensor. Without `grad`, the tensor must hold one element
   * (a loss). Gradients of leaves that require grad accumulate into their `.grad`.
   */
  backward(grad?: Tensor, opts: BackwardOptions = {}): void {
    if (!this.requiresGrad) throw new Error(`backward: tensor of shape ${shapeStr(this.shape)} does not require grad (no input of its graph did)`);
    let g: Tensor;
    if (grad === undefined) {
      if (this.size !== 1) {
        throw new Error(`backward: called on a tensor of shape ${shapeStr(this.shape)}; reduce it to one element first or pass a gradient of the same shape`);
      }
      g = new Tensor(allocate(this.dtype, 1).fill(1), this.shape);
    } else {
      if (grad.shape.length !== this.shape.length || grad.shape.some((d, i) => d !== this.shape[i])) {
        throw new Error(`backward: gradient of shape ${shapeStr(grad.shape)} does not match tensor of shape ${shapeStr(this.shape)}`);
      }
      g = grad.dtype === this.dtype ? grad : noGrad(() => grad.to(this.dtype));
    }
    // topological order by an iterative depth-first walk (graphs can be deep)
    const order: Tensor[] = [];
    const seen = new Set<Tensor>();
    const stack: [Tensor, number][] = [[this, 0]];
    seen.add(this);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [t, i] = top;
      const inputs = t.node ? t.node.inputs : [];
      if (i < inputs.length) {
        top[1]++;
        const c = inputs[i];
        if (c.requiresGrad && !seen.has(c)) {
          seen.add(c);
          stack.push([c, 0]);
        }
      } else {
        stack.pop();
        order.push(t);
      }
    }
    const grads = new Map<Tensor, Tensor>();
    grads.set(this, g);
    // the storage that a leaf's .grad may not take over: the caller's gradient, and every buffer a
    // leaf already took (a backward can pass one gradient to several inputs: add, reshape)
    const taken = new Set<ArrayBufferLike>();
    if (grad !== undefined) taken.add(g.data.buffer);
    // for the pool: how many pending gradients hold each buffer
    const reuse = poolCap > 0 && !opts.retainGraph;
    const held = new Map<ArrayBufferLike, number>();
    const hold = (x: Tensor, d: number): void => {
      if (reuse) held.set(x.data.buffer, (held.get(x.data.buffer) ?? 0) + d);
    };
    const mine = new Set<ArrayBufferLike>();
    const spent = reuse && opts.spent ? opts.spent : null;
    if (spent) for (const k of spent.keep ?? []) spent.buffers.delete(k.data.buffer);
    // a gradient no one holds any more goes back to the pool where this pass made it whole
    const drop = (x: Tensor): void => {
      const b = x.data.buffer;
      if (!reuse || !mine.has(b) || taken.has(b) || (held.get(b) ?? 0) > 0) return;
      if (x.data.byteOffset !== 0 || x.data.byteLength !== b.byteLength) return;
      mine.delete(b);
      recycle(x.data);
    };
    hold(g, 1);
    const outer = born;
    born = reuse ? mine : null;
    try {
      noGrad(() => {
        for (let k = order.length - 1; k >= 0; k--) {
          const t = order[k];
          const gt = grads.get(t);
          if (!gt) continue;
          grads.delete(t);
          hold(gt, -1);
          if (t.node) {
            const node = t.node;
            const gs = node.backward(gt);
            // what this node's gradients replace, dropped once every one of them is held (a
            // backward may return one buffer for several inputs, or gt itself)
            const dead: Tensor[] = [gt];
            for (let j = 0; j < node.inputs.length; j++) {
              const inp = node.inputs[j];
              const gi = gs[j];
              if (!gi || !inp.requiresGrad) continue;
              if (gi.shape.length !== inp.shape.length || gi.shape.some((d, q) => d !== inp.shape[q])) {
                throw new Error(`backward of ${node.op}: gradient shape ${shapeStr(gi.shape)} does not match input shape ${shapeStr(inp.shape)}`);
              }
              const prev = grads.get(inp);
              if (prev) {
                const sum = ops.add(prev, gi);
                hold(prev, -1);
                grads.set(inp, sum);
                hold(sum, 1);
                dead.push(prev, gi);
              } else {
                grads.set(inp, gi);
                hold(gi, 1);
              }
            }
            if (!opts.retainGraph) t.node = null;
            for (const x of dead) drop(x);
            // this node's output, where the forward made it for this node (no input shares it):
            // every node that read it came before this one
            if (spent && spent.buffers.has(t.data.buffer) && !node.inputs.some((i) => i.data.buffer === t.data.buffer)) {
              spent.buffers.delete(t.data.buffer);
              mine.add(t.data.buffer);
              drop(t);
            }
          } else {
            // a leaf: accumulate into .grad. The first gradient is taken as it is where its storage
            // is this pass's own and no other leaf's, else copied, so that .grad never aliases
            // another tensor (the copy of VGG-16's 15M gradients took ~30 ms a training step)
            if (t.grad) {
              const d = t.grad.data;
              const s = gt.data;
              for (let q = 0; q < d.length; q++) d[q] += s[q];
              drop(gt);
            } else {
              t.grad = taken.has(gt.data.buffer) ? gt.clone() : new Tensor(gt.data, gt.shape, false);
              taken.add(t.grad.data.buffer);
            }
          }
        }
      });
    } finally {
      born = outer;
    }
  }

  // ---- method sugar over ops ----
  add(b: Tensor | number): Tensor { return ops.add(this, b); }
  sub(b: Tensor | number): Tensor { return ops.sub(this, b); }
  mul(b: Tensor | number): Tensor { return ops.mul(this, b); }
  div(b: Tensor | number): Tensor { return ops.div(this, b); }
  pow(b: Tensor | number): Tensor { return ops.pow(this, b); }
  maximum(b: Tensor | number): Tensor { return ops.maximum(this, b); }
  neg(): Tensor { return ops.neg(this); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  sqrt(): Tensor { return ops.sqrt(this); }
  abs(): Tensor { return ops.abs(this); }
  clamp(min: number, max: number): Tensor { return ops.clamp(this, min, max); }
  relu(): Tensor { return ops.relu(this); }
  sigmoid(): Tensor { return ops.sigmoid(this); }
  tanh(): Tensor { return ops.tanh(this); }
  sum(axes?: number | number[], keepdims = false): Tensor { return ops.sum(this, axes, keepdims); }
  mean(axes?: number | number[], keepdims = false): Tensor { return ops.mean(this, axes, keepdims); }
  max(axes?: number | number[], keepdims = false): Tensor { return ops.max(this, axes, keepdims); }
  argmax(axis = -1): Tensor { return ops.argmax(this, axis); }
  matmul(b: Tensor): Tensor { return ops.matmul(this, b); }
  reshape(shape: number[]): Tensor { return ops.reshape(this, shape); }
  permute(perm: number[]): Tensor { return ops.permute(this, perm); }
  transpose(d0 = -2, d1 = -1): Tensor { return ops.transpose(this, d0, d1); }
  slice(start: number, end?: number): Tensor { return ops.slice(this, start, end); }
  softmax(axis = -1): Tensor { return ops.softmax(this, axis); }
  logSoftmax(axis = -1): Tensor { return ops.logSoftmax(this, axis); }
}

export interface CreateOptions {
  dtype?: DType;
  requiresGrad?: boolean;
}

function flatten(op: string, data: unknown): { flat: number[]; shape: number[] } {
  if (typeof data === 'number') return { flat: [data], shape: [] };
  if (!Array.isArray(data)) throw new Error(`${op}: expected a number, an array of numbers or a typed array`);
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const flat: number[] = [];
  const walk = (x: unknown, dim: number, path: string): void => {
    if (dim === shape.length) {
      if (typeof x !== 'number') throw new Error(`${op}: element at ${path || '[]'} is ${typeof x}, expected a number`);
      flat.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[dim]) {
      throw new Error(`${op}: ragged nested array: at ${path || 'the top'} expected ${shape[dim]} elements along axis ${dim}, got ${Array.isArray(x) ? x.length : typeof x}`);
    }
    for (let i = 0; i < x.length; i++) walk(x[i], dim + 1, path + `[${i}]`);
  };
  walk(data, 0, '');
  return { flat, shape };
}

/**
 * A tensor from a number, nested arrays, or flat data with a shape. Typed-array data is copied
 * (Float32Array/Float64Array are used as they are when the dtype matches and `copy` is false).
 */
export function tensor(
  data: number | unknown[] | ArrayLike<number>,
  shape?: number[],
  opts: CreateOptions & { copy?: boolean } = {},
): Tensor {
  const dtype = opts.dtype ?? (data instanceof Float64Array ? 'float64' : 'float32');
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (ArrayBuffer.isView(data)) {
    flat = data as ArrayLike<number>;
    inferred = [flat.length];
  } else {
    const f = flatten('tensor', data);
    flat = f.flat;
    inferred = f.shape;
  }
  const s = shape ? checkShape('tensor', shape) : inferred;
  if (flat.length !== sizeOf(s)) {
    throw new Error(`tensor: data has ${flat.length} elements but shape ${shapeStr(s)} needs ${sizeOf(s)}`);
  }
  let arr: FloatArray;
  if (opts.copy === false && ((dtype === 'float32' && flat instanceof Float32Array) || (dtype === 'float64' && flat instanceof Float64Array))) {
    arr = flat;
  } else {
    arr = allocate(dtype, flat.length);
    for (let i = 0; i < flat.length; i++) arr[i] = flat[i];
  }
  return new Tensor(arr, s, opts.requiresGrad ?? false);
}

export function zeros(shape: number[], opts: CreateOptions = {}): Tensor {
  const s = checkShape('zeros', shape);
  return new Tensor(allocate(opts.dtype ?? 'float32', sizeOf(s)), s, opts.requiresGrad ?? false);
}

export function full(shape: number[], value: number, opts: CreateOptions = {}): Tensor {
  const s = checkShape('full', shape);
  return new Tensor(allocate(opts.dtype ?? 'float32', sizeOf(s)).fill(value), s, opts.requiresGrad ?? false);
}

export function ones(shape: number[], opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}

export function zerosLike(t: Tensor): Tensor {
  return new Tensor(allocate(t.dtype, t.size), t.shape);
}

/** 0, 1, ..., n-1 */
export function arange(n: number, opts: CreateOptions = {}): Tensor {
  if (!Number.isInteger(n) || n < 0) throw new Error(`arange: n must be a non-negative integer, got ${n}`);
  const a = allocate(opts.dtype ?? 'float32', n);
  for (let i = 0; i < n; i++) a[i] = i;
  return new Tensor(a, [n], opts.requiresGrad ?? false);
}

/** uniform in [lo, hi) from a seeded generator */
export function uniform(shape: number[], lo: number, hi: number, rng: Rng, opts: CreateOptions = {}): Tensor {
  const t = zeros(checkShape('uniform', shape), opts);
  if (!(rng instanceof Rng)) throw new Error('uniform: rng must be an Rng (every random choice takes a seed)');
  for (let i = 0; i < t.size; i++) t.data[i] = rng.uniform(lo, hi);
  return t;
}

/** normal(mean, std) from a seeded generator */
export function normal(shape: number[], mean: number, std: number, rng: Rng, opts: CreateOptions = {}): Tensor {
  const t = zeros(checkShape('normal', shape), opts);
  if (!(rng instanceof Rng)) throw new Error('normal: rng must be an Rng (every random choice takes a seed)');
  for (let i = 0; i < t.size; i++) t.data[i] = rng.normal(mean, std);
  return t;
}
