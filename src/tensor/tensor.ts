// Tensor: dense row-major storage (Float32Array, or Float64Array for gradient checks) plus a shape,
// the autograd engine in autograd.ts, the array pool in pool.ts, the ops in ops.ts; the methods here
// are thin sugar over them.

import type { DType, FloatArray } from '../backend/types.js';
import * as ops from './ops.js';
import { runBackward } from './autograd.js';
import type { BackwardOptions, GradNode } from './autograd.js';
import { allocate } from './pool.js';
import { Rng } from './rng.js';

export type { DType, FloatArray };

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
    runBackward(this, grad, opts);
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
