// Every differentiable op: its forward through the kernel registry and its backward, side by side,
// the shapes in a one-line comment. Backward closures run under noGrad and use these same ops.

import { kernel } from '../backend/registry.js';
import type { BiasActivation, BinaryOp, ConvAlgorithmChoice, ConvGeometry, ConvTarget, DType, Epilogue, FloatArray, PreparedConvWeights, UnaryOp } from '../backend/types.js';
import { Rng } from './rng.js';
import { shapeStr, sizeOf, Tensor } from './tensor.js';
import { isGradEnabled } from './autograd.js';
import { allocate } from './pool.js';
import type { GradNode } from './autograd.js';

// ---------------------------------------------------------------- helpers

function make(
  data: FloatArray, shape: number[], op: string, inputs: Tensor[],
  backward: GradNode['backward'],
): Tensor {
  const t = new Tensor(data, shape);
  if (isGradEnabled() && inputs.some((i) => i.requiresGrad)) {
    t.requiresGrad = true;
    t.node = { op, inputs, backward };
  }
  return t;
}

function checkTensor(op: string, t: unknown, what = 'input'): asserts t is Tensor {
  if (!(t instanceof Tensor)) throw new Error(`${op}: ${what} must be a Tensor, got ${t === null ? 'null' : typeof t}`);
}

function sameDtype(op: string, a: Tensor, b: Tensor): DType {
  if (a.dtype !== b.dtype) throw new Error(`${op}: dtype mismatch, ${a.dtype} ${shapeStr(a.shape)} and ${b.dtype} ${shapeStr(b.shape)}`);
  return a.dtype;
}

function scalarLike(v: number, like: Tensor): Tensor {
  const a = allocate(like.dtype, 1);
  a[0] = v;
  return new Tensor(a, []);
}

function normAxis(op: string, axis: number, ndim: number, shape: readonly number[]): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    throw new Error(`${op}: axis ${axis} is out of range for shape ${shapeStr(shape)}`);
  }
  return axis < 0 ? axis + ndim : axis;
}

function normAxes(op: string, axes: number | number[] | undefined, shape: readonly number[]): number[] {
  const nd = shape.length;
  if (axes === undefined) return [...Array(nd).keys()];
  const list = typeof axes === 'number' ? [axes] : axes;
  const out = list.map((a) => normAxis(op, a, nd, shape));
  if (new Set(out).size !== out.length) throw new Error(`${op}: repeated axis in [${list.join(',')}] for shape ${shapeStr(shape)}`);
  return out.sort((x, y) => x - y);
}

export function broadcastShapes(op: string, a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${shapeStr(a)} and ${shapeStr(b)} are not broadcastable`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** element strides of a tensor of `shape` read over `outShape` (0 along broadcast axes) */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const n = outShape.length;
  const st = new Array<number>(n).fill(0);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const j = n - shape.length + i;
    st[j] = shape[i] === 1 && outShape[j] !== 1 ? 0 : s;
    s *= shape[i];
  }
  return st;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** g (broadcast shape) summed down to `shape` */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const nd = g.shape.length;
  const lead = nd - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < nd; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(sum(g, axes, true), [...shape]);
}

function rawBinary(op: BinaryOp, a: Tensor, b: Tensor, p0 = 0, p1 = 0, name: string = op): Tensor {
  const dtype = sameDtype(name, a, b);
  const shape = broadcastShapes(name, a.shape, b.shape);
  const out = allocate(dtype, sizeOf(shape));
  kernel('binary', dtype)(op, a.data, broadcastStrides(a.shape, shape), b.data, broadcastStrides(b.shape, shape), out, shape, p0, p1);
  return new Tensor(out, shape);
}

function rawUnary(op: UnaryOp, x: Tensor, p0 = 0, p1 = 0): Tensor {
  const out = allocate(x.dtype, x.size);
  kernel('unary', x.dtype)(op, x.data, out, p0, p1);
  return new Tensor(out, x.shape);
}

function asTensor(op: string, v: Tensor | number, like: Tensor): Tensor {
  if (typeof v === 'number') return scalarLike(v, like);
  checkTensor(op, v, 'operand');
  return v;
}

// ---------------------------------------------------------------- casting

// x (any) -> x in dtype
export function cast(x: Tensor, dtype: DType): Tensor {
  checkTensor('cast', x);
  if (x.dtype === dtype) return x;
  const out = allocate(dtype, x.size);
  out.set(x.data);
  const from = x.dtype;
  return make(out, x.shape, 'cast', [x], (g) => [cast(g, from)]);
}

// ---------------------------------------------------------------- elementwise binary (broadcasting)

function binaryOp(
  name: string, op: BinaryOp, a0: Tensor | number, b0: Tensor | number,
  backward: (g: Tensor, a: Tensor, b: Tensor, out: Tensor) => [Tensor | null, Tensor | null],
): Tensor {
  if (typeof a0 === 'number' && typeof b0 === 'number') throw new Error(`${name}: at least one operand must be a Tensor`);
  const like = (typeof a0 === 'number' ? b0 : a0) as Tensor;
  checkTensor(name, like, 'operand');
  const a = asTensor(name, a0, like);
  const b = asTensor(name, b0, like);
  const r = rawBinary(op, a, b, 0, 0, name);
  return make(r.data, r.shape, name, [a, b], (g) => {
    const [ga, gb] = backward(g, a, b, r);
    return [ga && a.requiresGrad ? sumTo(ga, a.shape) : null, gb && b.requiresGrad ? sumTo(gb, b.shape) : null];
  });
}

// a, b (broadcastable) -> broadcast shape
export function add(a: Tensor | number, b: Tensor | number): Tensor {
  return binaryOp('add', 'add', a, b, (g) => [g, g]);
}

export function sub(a: Tensor | number, b: Tensor | number): Tensor {
  return binaryOp('sub', 'sub', a, b, (g) => [g, neg(g)]);
}

export function mul(a: Tensor | number, b: Tensor | number): Tensor {
  return binaryOp('mul', 'mul', a, b, (g, x, y) => [x.requiresGrad ? mul(g, y) : null, y.requiresGrad ? mul(g, x) : null]);
}

export function div(a: Tensor | number, b: Tensor | number): Tensor {
  return binaryOp('div', 'div', a, b, (g, x, y, out) => [
    x.requiresGrad ? div(g, y) : null,
    y.requiresGrad ? neg(div(mul(g, out), y)) : null,
  ]);
}

/** a^b; with a number exponent see powScalar (no log of the base is taken) */
export function pow(a: Tensor | number, b: Tensor | number): Tensor {
  if (typeof b === 'number' && a instanceof Tensor) return powScalar(a, b);
  return binaryOp('pow', 'pow', a, b, (g, x, y, out) => [
    x.requiresGrad ? mul(g, mul(y, pow(x, sub(y, 1)))) : null,
    y.requiresGrad ? mul(g, mul(out, log(x))) : null,
  ]);
}

/** elementwise maximum; at ties the gradient goes to a */
export function maximum(a: Tensor | number, b: Tensor | number): Tensor {
  return binaryOp('maximum', 'maximum', a, b, (g, x, y) => {
    const m = rawBinary('geMask', x, y);
    return [x.requiresGrad ? mul(g, m) : null, y.requiresGrad ? mul(g, sub(1, m)) : null];
  });
}

// ---------------------------------------------------------------- elementwise unary

function unaryOp(name: string, op: UnaryOp, x: Tensor, backward: (g: Tensor, out: Tensor) => Tensor, p0 = 0, p1 = 0): Tensor {
  checkTensor(name, x);
  const r = rawUnary(op, x, p0, p1);
  return make(r.data, r.shape, name, [x], (g) => [backward(g, r)]);
}

// x -> x (same shape), for each op below
export function neg(x: Tensor): Tensor {
  return unaryOp('neg', 'neg', x, (g) => rawUnary('neg', g));
}
export function exp(x: Tensor): Tensor {
  return unaryOp('exp', 'exp', x, (g, out) => mul(g, out));
}
export function log(x: Tensor): Tensor {
  return unaryOp('log', 'log', x, (g) => div(g, x));
}
export function sqrt(x: Tensor): Tensor {
  return unaryOp('sqrt', 'sqrt', x, (g, out) => div(mul(g, 0.5), out));
}
export function abs(x: Tensor): Tensor {
  return unaryOp('abs', 'abs', x, (g) => mul(g, rawUnary('sign', x)));
}
export function square(x: Tensor): Tensor {
  return unaryOp('square', 'square', x, (g) => mul(g, mul(x, 2)));
}
export function powScalar(x: Tensor, p: number): Tensor {
  if (typeof p !== 'number' || Number.isNaN(p)) throw new Error(`pow: exponent must be a number, got ${p}`);
  return unaryOp('pow', 'powScalar', x, (g) => mul(g, mul(rawUnary('powScalar', x, p - 1), p)), p);
}
export function clamp(x: Tensor, min: number, max: number): Tensor {
  if (!(min <= max)) throw new Error(`clamp: min ${min} is greater than max ${max}`);
  return unaryOp('clamp', 'clamp', x, (g) => rawBinary('clampGrad', g, x, min, max), min, max);
}
export function relu(x: Tensor): Tensor {
  return unaryOp('relu', 'relu', x, (g) => rawBinary('reluGrad', g, x));
}
export function sigmoid(x: Tensor): Tensor {
  return unaryOp('sigmoid', 'sigmoid', x, (g, out) => rawBinary('sigmoidGrad', g, out));
}
export function tanh(x: Tensor): Tensor {
  return unaryOp('tanh', 'tanh', x, (g, out) => rawBinary('tanhGrad', g, out));
}
/** x * a + b for numbers a, b */
export function affine(x: Tensor, a: number, b: number): Tensor {
  return unaryOp('affine', 'affine', x, (g) => rawUnary('affine', g, a, 0), a, b);
}

// ---------------------------------------------------------------- reductions

function reduceShape(shape: readonly number[], axes: number[], keepdims: boolean): { out: number[]; kept: number[]; strides: number[] } {
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = axes.includes(i) ? 0 : s;
    s *= kept[i];
  }
  return { out: keepdims ? kept : shape.filter((_, i) => !axes.includes(i)), kept, strides };
}

// x (shape) -> reduced over axes (all by default), keepdims keeps them as size 1
export function sum(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  checkTensor('sum', x);
  const ax = normAxes('sum', axes, x.shape);
  const { out, kept, strides } = reduceShape(x.shape, ax, keepdims);
  const data = allocate(x.dtype, sizeOf(out));
  kernel('reduce', x.dtype)('sum', x.data, x.shape, strides, data);
  return make(data, out, 'sum', [x], (g) => [expandTo(reshape(g, kept), x.shape)]);
}

export function mean(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  checkTensor('mean', x);
  const ax = normAxes('mean', axes, x.shape);
  const n = ax.reduce((p, a) => p * x.shape[a], 1);
  if (n === 0) throw new Error(`mean: reducing over zero elements of shape ${shapeStr(x.shape)}`);
  return mul(sum(x, ax, keepdims), 1 / n);
}

/** maximum over axes; the gradient is shared equally among tied maxima */
export function max(x: Tensor, axes?: number | number[], keepdims = false): Tensor {
  checkTensor('max', x);
  const ax = normAxes('max', axes, x.shape);
  if (ax.some((a) => x.shape[a] === 0)) throw new Error(`max: reducing over an empty axis of shape ${shapeStr(x.shape)}`);
  const { out, kept, strides } = reduceShape(x.shape, ax, keepdims);
  const data = allocate(x.dtype, sizeOf(out));
  kernel('reduce', x.dtype)('max', x.data, x.shape, strides, data);
  return make(data, out, 'max', [x], (g) => {
    const m = new Tensor(data, kept);
    const mask = rawBinary('eqMask', x, m);
    const count = sum(mask, ax, true);
    return [div(mul(mask, reshape(g, kept)), count)];
  });
}

/** index of the first maximum along axis, as a tensor of the same dtype (no gradient) */
export function argmax(x: Tensor, axis = -1): Tensor {
  checkTensor('argmax', x);
  const a = normAxis('argmax', axis, x.ndim, x.shape);
  const dim = x.shape[a];
  if (dim === 0) throw new Error(`argmax: axis ${axis} of shape ${shapeStr(x.shape)} is empty`);
  const outer = sizeOf(x.shape.slice(0, a));
  const inner = sizeOf(x.shape.slice(a + 1));
  const idx = new Int32Array(outer * inner);
  kernel('argmax', x.dtype)(x.data, outer, dim, inner, idx);
  const data = allocate(x.dtype, idx.length);
  data.set(idx);
  return new Tensor(data, x.shape.filter((_, i) => i !== a));
}

/** g broadcast (copied) to shape */
export function expandTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const out = [...shape];
  broadcastShapes('expand', g.shape, out);
  const data = allocate(g.dtype, sizeOf(out));
  const zero = allocate(g.dtype, 1);
  kernel('binary', g.dtype)('add', g.data, broadcastStrides(g.shape, out), zero, out.map(() => 0), data, out, 0, 0);
  return make(data, out, 'expand', [g], (gg) => [sumTo(gg, g.shape)]);
}

// ---------------------------------------------------------------- shape ops

/** same data, new shape; one dimension may be -1 */
export function reshape(x: Tensor, shape: number[]): Tensor {
  checkTensor('reshape', x);
  if (!Array.isArray(shape)) throw new Error('reshape: shape must be an array');
  const s = [...shape];
  const neg1 = s.filter((d) => d === -1).length;
  if (neg1 > 1) throw new Error(`reshape: more than one -1 in ${shapeStr(s)}`);
  for (const d of s) if (d !== -1 && (!Number.isInteger(d) || d < 0)) throw new Error(`reshape: invalid dimension ${d} in ${shapeStr(s)}`);
  if (neg1 === 1) {
    const known = s.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
    if (known === 0 || x.size % known !== 0) throw new Error(`reshape: cannot reshape ${shapeStr(x.shape)} (${x.size} elements) to ${shapeStr(shape)}`);
    s[s.indexOf(-1)] = x.size / known;
  }
  if (sizeOf(s) !== x.size) throw new Error(`reshape: cannot reshape ${shapeStr(x.shape)} (${x.size} elements) to ${shapeStr(shape)} (${sizeOf(s)} elements)`);
  if (sameShape(s, x.shape)) return x;
  const from = x.shape;
  return make(x.data, s, 'reshape', [x], (g) => [reshape(g, from)]);
}

// x (d0, d1, ...) -> (d_perm[0], d_perm[1], ...)
export function permute(x: Tensor, perm: number[]): Tensor {
  checkTensor('permute', x);
  const nd = x.ndim;
  if (!Array.isArray(perm) || perm.length !== nd) throw new Error(`permute: permutation [${perm}] does not match shape ${shapeStr(x.shape)}`);
  const p = perm.map((a) => normAxis('permute', a, nd, x.shape));
  if (new Set(p).size !== nd) throw new Error(`permute: [${perm}] is not a permutation of the axes of ${shapeStr(x.shape)}`);
  if (p.every((a, i) => a === i)) return x;
  const shape = p.map((a) => x.shape[a]);
  const out = allocate(x.dtype, x.size);
  kernel('permute', x.dtype)(x.data, x.shape, p, out);
  const inv = new Array<number>(nd);
  p.forEach((a, i) => (inv[a] = i));
  return make(out, shape, 'permute', [x], (g) => [permute(g, inv)]);
}

/** swap two axes (the last two by default) */
export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  checkTensor('transpose', x);
  if (x.ndim < 2) throw new Error(`transpose: needs at least 2 dimensions, got shape ${shapeStr(x.shape)}`);
  const a = normAxis('transpose', d0, x.ndim, x.shape);
  const b = normAxis('transpose', d1, x.ndim, x.shape);
  const perm = [...Array(x.ndim).keys()];
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

// x (N, ...) -> (end-start, ...): rows start..end-1 along the first axis
export function slice(x: Tensor, start: number, end?: number): Tensor {
  checkTensor('slice', x);
  if (x.ndim === 0) throw new Error('slice: cannot slice a 0-d tensor');
  const n = x.shape[0];
  const e = end ?? n;
  if (!Number.isInteger(start) || !Number.isInteger(e) || start < 0 || e > n || start > e) {
    throw new Error(`slice: range [${start}, ${e}) is out of bounds for the first axis of shape ${shapeStr(x.shape)}`);
  }
  const inner = sizeOf(x.shape.slice(1));
  const data = x.data.slice(start * inner, e * inner) as FloatArray;
  const shape = [e - start, ...x.shape.slice(1)];
  return make(data, shape, 'slice', [x], (g) => {
    const gx = allocate(g.dtype, x.size);
    gx.set(g.data, start * inner);
    return [new Tensor(gx, x.shape)];
  });
}

/** rows of x (along the first axis) picked by index, e.g. a mini-batch */
export function take(x: Tensor, indices: ArrayLike<number>): Tensor {
  checkTensor('take', x);
  if (x.ndim === 0) throw new Error('take: cannot index a 0-d tensor');
  const n = x.shape[0];
  const inner = sizeOf(x.shape.slice(1));
  const data = allocate(x.dtype, indices.length * inner);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i];
    if (!Number.isInteger(r) || r < 0 || r >= n) throw new Error(`take: index ${r} at position ${i} is out of range for the first axis of shape ${shapeStr(x.shape)}`);
    data.set(x.data.subarray(r * inner, (r + 1) * inner), i * inner);
  }
  return make(data, [indices.length, ...x.shape.slice(1)], 'take', [x], (g) => {
    const gx = allocate(g.dtype, x.size);
    for (let i = 0; i < indices.length; i++) {
      const r = indices[i];
      for (let j = 0; j < inner; j++) gx[r * inner + j] += g.data[i * inner + j];
    }
    return [new Tensor(gx, x.shape)];
  });
}

// tensors (equal shapes but along axis) -> concatenated along axis
export function cat(tensors: Tensor[], axis = 0): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new Error('cat: needs a non-empty array of tensors');
  tensors.forEach((t, i) => checkTensor('cat', t, `element ${i}`));
  const first = tensors[0];
  const a = normAxis('cat', axis, first.ndim, first.shape);
  for (const t of tensors) {
    sameDtype('cat', first, t);
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new Error(`cat: shapes ${tensors.map((q) => shapeStr(q.shape)).join(', ')} differ outside axis ${axis}`);
    }
  }
  const outer = sizeOf(first.shape.slice(0, a));
  const inner = sizeOf(first.shape.slice(a + 1));
  const total = tensors.reduce((p, t) => p + t.shape[a], 0);
  const shape = [...first.shape];
  shape[a] = total;
  const data = allocate(first.dtype, sizeOf(shape));
  let off = 0;
  const offs: number[] = [];
  for (const t of tensors) {
    offs.push(off);
    const w = t.shape[a] * inner;
    for (let o = 0; o < outer; o++) data.set(t.data.subarray(o * w, (o + 1) * w), o * total * inner + off * inner);
    off += t.shape[a];
  }
  return make(data, shape, 'cat', tensors, (g) =>
    tensors.map((t, k) => {
      if (!t.requiresGrad) return null;
      const w = t.shape[a] * inner;
      const gd = allocate(g.dtype, t.size);
      for (let o = 0; o < outer; o++) gd.set(g.data.subarray(o * total * inner + offs[k] * inner, o * total * inner + offs[k] * inner + w), o * w);
      return new Tensor(gd, t.shape);
    }),
  );
}

// ---------------------------------------------------------------- matmul

/** raw batched product with batch broadcasting: op(a) (..., M, K) · op(b) (..., K, N) -> (..., M, N) */
function mm(name: string, a: Tensor, ta: boolean, b: Tensor, tb: boolean): Tensor {
  const dtype = sameDtype(name, a, b);
  const ar = a.shape[a.ndim - 2], ac = a.shape[a.ndim - 1];
  const br = b.shape[b.ndim - 2], bc = b.shape[b.ndim - 1];
  const M = ta ? ac : ar, K = ta ? ar : ac;
  const K2 = tb ? bc : br, N = tb ? br : bc;
  if (K !== K2) throw new Error(`${name}: inner dimensions differ, shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const aB = a.shape.slice(0, -2), bB = b.shape.slice(0, -2);
  const batch = broadcastShapes(name, aB, bB);
  const nb = sizeOf(batch);
  const as = broadcastStrides(aB, batch), bs = broadcastStrides(bB, batch);
  const out = allocate(dtype, nb * M * N);
  const gemm = kernel('gemm', dtype);
  const idx = new Array<number>(batch.length).fill(0);
  for (let q = 0; q < nb; q++) {
    let ao = 0, bo = 0;
    for (let d = 0; d < batch.length; d++) {
      ao += idx[d] * as[d];
      bo += idx[d] * bs[d];
    }
    gemm(ta, tb, M, N, K, 1, a.data, ao * ar * ac, ac, b.data, bo * br * bc, bc, 0, out, q * M * N, N);
    for (let d = batch.length - 1; d >= 0; d--) {
      if (++idx[d] < batch[d]) break;
      idx[d] = 0;
    }
  }
  return new Tensor(out, [...batch, M, N]);
}

// a (..., M, K), b (..., K, N) -> (..., M, N); batch dimensions broadcast
export function matmul(a: Tensor, b: Tensor): Tensor {
  checkTensor('matmul', a, 'first operand');
  checkTensor('matmul', b, 'second operand');
  if (a.ndim < 2 || b.ndim < 2) throw new Error(`matmul: operands need at least 2 dimensions, got shapes ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  const r = mm('matmul', a, false, b, false);
  return make(r.data, r.shape, 'matmul', [a, b], (g) => [
    a.requiresGrad ? sumTo(mm('matmul', g, false, b, true), a.shape) : null,
    b.requiresGrad ? sumTo(mm('matmul', a, true, g, false), b.shape) : null,
  ]);
}

// x (N,in), w (out,in), b (out) or null -> (N,out): y = x·wᵀ + b, straight through the GEMM (no
// transposed copy); weights are stored one row per output unit, the layout merging works on
/** act(x (N, in) times wᵀ plus b) for inference (no gradient: refused where one could be wanted): the
 *  bias and the activation in one pass over the output (biasActivate), where linear and an
 *  activation make two. into: as for linear */
export function linearActivate(x: Tensor, w: Tensor, b: Tensor | null, act: BiasActivation, into?: (n: number) => FloatArray): Tensor {
  if (isGradEnabled() && (x.requiresGrad || w.requiresGrad || b?.requiresGrad)) throw new Error('linearActivate: inference only (call it under noGrad)');
  const { N, O, out } = linearProduct('linearActivate', x, w, b, into, act);
  return new Tensor(out, [N, O]);
}

// the checks and the forward of linear and linearActivate: out = act(x·wᵀ + b)
function linearProduct(fn: string, x: Tensor, w: Tensor, b: Tensor | null, into: ((n: number) => FloatArray) | undefined, act: BiasActivation) {
  checkTensor(fn, x);
  checkTensor(fn, w, 'weight');
  if (x.ndim !== 2) throw new Error(`${fn}: input must be (N,in), got shape ${shapeStr(x.shape)}`);
  if (w.ndim !== 2) throw new Error(`${fn}: weight must be (out,in), got shape ${shapeStr(w.shape)}`);
  const [N, I] = x.shape;
  const [O, I2] = w.shape;
  if (I !== I2) throw new Error(`${fn}: input ${shapeStr(x.shape)} has ${I} features but weight ${shapeStr(w.shape)} expects ${I2}`);
  const dtype = sameDtype(fn, x, w);
  if (b !== null) {
    checkTensor(fn, b, 'bias');
    if (b.ndim !== 1 || b.shape[0] !== O) throw new Error(`${fn}: bias must have shape [${O}], got ${shapeStr(b.shape)}`);
    sameDtype(fn, x, b);
  }
  if (!BIAS_ACTIVATIONS.includes(act)) throw new Error(`${fn}: activation must be ${BIAS_ACTIVATIONS.join(', ')}, got '${act as string}'`);
  const gemm = kernel('gemm', dtype);
  if (into && isGradEnabled() && (x.requiresGrad || w.requiresGrad || b?.requiresGrad)) throw new Error(`${fn}: an output buffer is for inference only (call it under noGrad)`);
  const out = into ? into(N * O) : allocate(dtype, N * O);
  if (out.length !== N * O || (dtype === 'float64') !== out instanceof Float64Array) throw new Error(`${fn}: the output buffer holds ${out.length} ${out instanceof Float64Array ? 'float64' : 'float32'} values, the output needs ${N * O} ${dtype}`);
  if (b && N <= 4) {
    // a few rows (batch 1 to 4): the bias copied into the output first and the product added to it
    // (beta 1): one kernel call where the add would be a second (DBN forward at batch 1, Zen 5, one
    // process alternating: 107 -> 99 us, merged at 0.5 51 -> 45; LeNet-5 78 -> 73, merged 47 -> 41)
    for (let n = 0; n < N; n++) out.set(b.data, n * O);
    gemm(false, true, N, O, I, 1, x.data, 0, I, w.data, 0, I, 1, out, 0, O);
    if (act !== 'none') kernel('biasActivate', dtype)(out, N, O, EMPTY[dtype], act);
  } else {
    gemm(false, true, N, O, I, 1, x.data, 0, I, w.data, 0, I, 0, out, 0, O);
    if (b || act !== 'none') kernel('biasActivate', dtype)(out, N, O, b ? b.data : EMPTY[dtype], act);
  }
  return { N, I, O, dtype, out };
}

const BIAS_ACTIVATIONS: readonly BiasActivation[] = ['none', 'relu', 'sigmoid', 'tanh'];

/** a kernel's absent optional array (no bias, no scale): one shared empty array per dtype, never
 *  written (a typed array allocated per call cost about 0.3 us; a VGG-16 forward at batch 1 made 13) */
const EMPTY: Record<DType, FloatArray> = { float32: new Float32Array(0), float64: new Float64Array(0) };

/** x (N, in) times wᵀ plus b. into: where the output goes (inference: a buffer the caller reuses;
 *  refused where a gradient could be wanted) */
export function linear(x: Tensor, w: Tensor, b: Tensor | null = null, into?: (n: number) => FloatArray): Tensor {
  const { N, I, O, dtype, out } = linearProduct('linear', x, w, b, into, 'none');
  const gemm = kernel('gemm', dtype);
  const inputs = b ? [x, w, b] : [x, w];
  return make(out, [N, O], 'linear', inputs, (g) => {
    const res: (Tensor | null)[] = [null, null];
    if (x.requiresGrad) {
      const gx = allocate(dtype, N * I);
      gemm(false, false, N, I, O, 1, g.data, 0, O, w.data, 0, I, 0, gx, 0, I);
      res[0] = new Tensor(gx, x.shape);
    }
    if (w.requiresGrad) {
      const gw = allocate(dtype, O * I);
      gemm(true, false, O, I, N, 1, g.data, 0, O, x.data, 0, I, 0, gw, 0, I);
      res[1] = new Tensor(gw, w.shape);
    }
    if (b) {
      if (b.requiresGrad) {
        const gb = allocate(dtype, O);
        kernel('reduce', dtype)('sum', g.data, [N, O], [0, 1], gb);
        res.push(new Tensor(gb, [O]));
      } else res.push(null);
    }
    return res;
  });
}

// ---------------------------------------------------------------- convolution and pooling

export type Pair = number | [number, number];

function pair(op: string, what: string, v: Pair, min: number): [number, number] {
  const p: [number, number] = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || !p.every((q) => Number.isInteger(q) && q >= min)) {
    throw new Error(`${op}: ${what} must be an integer >= ${min} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p;
}

function outSize(op: string, x: Tensor, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number): [number, number] {
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1;
  const OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  if (H + 2 * PH < KH || W + 2 * PW < KW || OH <= 0 || OW <= 0) {
    throw new Error(`${op}: kernel ${KH}x${KW} does not fit input ${shapeStr(x.shape)} with padding ${PH},${PW}`);
  }
  return [OH, OW];
}

/** target size (elements) of the im2col matrix of one chunk of images in conv2d */
let CONV_CHUNK = 1 << 22;

/** set the im2col chunk size of conv2d (elements); returns the previous value */
export function setConvChunk(elements: number): number {
  if (!Number.isInteger(elements) || elements < 1) throw new Error(`setConvChunk: elements must be a positive integer, got ${elements}`);
  const prev = CONV_CHUNK;
  CONV_CHUNK = elements;
  return prev;
}

/**
 * How many images conv2d's backward puts into one im2col matrix (and one GEMM), for a batch of N.
 * Large feature maps (L = OH*OW >= 128) whose per-image GEMM is worth the threads (2*OC*L*CKK >= 1e7
 * FLOPs; OC unknown: assumed so) go one image at a time: the GEMM is wide enough already and the
 * gradient needs no reordering (measured faster for VGG-16's 32x32 and 16x16 layers); others (small
 * maps, or a first layer's 25 or 27 taps) are batched so that the GEMM gets wide.
 */
export function convChunkImages(N: number, CKK: number, L: number, OC = Infinity): number {
  if (L >= 128 && CONV_CHUNK >= CKK * L && 2 * OC * L * CKK >= 1e7) return 1;
  return Math.max(1, Math.min(N, Math.floor(CONV_CHUNK / Math.max(1, CKK * L))));
}

export interface ConvOptions {
  stride?: Pair;
  padding?: Pair;
}

/**
 * Scratch buffers for the convolution backward's temporaries (the im2col matrix, the reordered output
 * gradient, the column gradient): one per slot and dtype, grown on demand and reused by every
 * call, so that each call does not map fresh pages (about 1 ms per 1.5 MB on this project's VMs) and
 * the memory stays warm in cache. A slot's contents live only within one kernel sequence: nothing
 * reads them after the op (or backward) that filled them returns.
 */
const scratchBufs = new Map<string, FloatArray>();
function scratch(dtype: DType, slot: number, n: number): FloatArray {
  const key = `${dtype}:${slot}`;
  let buf = scratchBufs.get(key);
  if (!buf || buf.length < n) {
    buf = allocate(dtype, n);
    scratchBufs.set(key, buf);
  }
  return buf.length === n ? buf : (buf.subarray(0, n) as FloatArray);
}

/** what convolve() applies per output channel after the products (the backend's Epilogue), and where
 *  an inference session laid the weights out ahead, a function that gives them for a geometry and the
 *  weights the call reads (null: read the weights as they lie) */
export interface ConvEpilogue extends Epilogue {
  prepared?: (geometry: ConvGeometry, w: FloatArray) => PreparedConvWeights | null;
}

function convGeometry(x: Tensor, w: Tensor, b: Tensor | null, opts: ConvOptions): ConvGeometry {
  checkTensor('conv2d', x);
  checkTensor('conv2d', w, 'weight');
  if (x.ndim !== 4) throw new Error(`conv2d: input must be (N,C,H,W), got shape ${shapeStr(x.shape)}`);
  if (w.ndim !== 4) throw new Error(`conv2d: weight must be (OC,C,KH,KW), got shape ${shapeStr(w.shape)}`);
  const [N, C, H, W] = x.shape;
  const [OC, C2, KH, KW] = w.shape;
  if (C !== C2) throw new Error(`conv2d: input ${shapeStr(x.shape)} has ${C} channels but weight ${shapeStr(w.shape)} expects ${C2}`);
  if (b !== null) {
    checkTensor('conv2d', b, 'bias');
    if (b.ndim !== 1 || b.shape[0] !== OC) throw new Error(`conv2d: bias must have shape [${OC}], got ${shapeStr(b.shape)}`);
    sameDtype('conv2d', x, b);
  }
  sameDtype('conv2d', x, w);
  const [SH, SW] = pair('conv2d', 'stride', opts.stride ?? 1, 1);
  const [PH, PW] = pair('conv2d', 'padding', opts.padding ?? 0, 0);
  const [OH, OW] = outSize('conv2d', x, H, W, KH, KW, SH, SW, PH, PW);
  return { N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW };
}

/**
 * The forward convolution into `out` (N, OC, OH/pool, OW/pool) with its epilogue (bias, or any
 * per-channel affine, ReLU, 2x2 pool): the convForward kernel (native: a direct convolution, or a
 * GEMM that packs its B panels straight from the images, or for small maps an im2col matrix of at
 * most 16 MB; TypeScript: im2col, GEMM, epilogue).
 */
function convolve(x: Tensor, w: Tensor, g: ConvGeometry, ep: ConvEpilogue, out: FloatArray): void {
  kernel('convForward', x.dtype)(x.data, 0, g, w.data, ep, out, 0, ep.prepared?.(g, w.data) ?? undefined);
}

let products: 'float32' | 'bf16' = 'float32';

/** the operands' precision the layers' products take while a gradient is recorded (training) */
export function productPrecision(): 'float32' | 'bf16' {
  return products;
}

/** run fn with the layers' products in precision p (bf16: Conv2d and Linear round their input, their
 *  weight and the gradient reaching their output to bfloat16; float32 accumulation and master weights) */
export function withProductPrecision<T>(p: 'float32' | 'bf16', fn: () => T): T {
  if (p !== 'float32' && p !== 'bf16') throw new Error(`withProductPrecision: precision must be 'float32' or 'bf16', got '${String(p)}'`);
  const prev = products;
  products = p;
  try {
    return fn();
  } finally {
    products = prev;
  }
}

/** x rounded to bfloat16 as an operand of a product in training: the forward rounds, the gradient
 *  passes through unchanged to x (the float32 master copy where x is a weight) */
export function bf16Operand(x: Tensor): Tensor {
  return make(roundBf16(x).data, x.shape, 'bf16Operand', [x], (g) => [g]);
}

/** x unchanged, its gradient rounded to bfloat16 on the way back: the output gradient a product's
 *  backward multiplies by is then a bfloat16 operand too */
export function bf16Gradient(x: Tensor): Tensor {
  checkTensor('bf16Gradient', x);
  // x's own storage, as reshape's: the forward is the identity
  return make(x.data, x.shape, 'bf16Gradient', [x], (g) => [roundBf16(g)]);
}

/** x rounded to the nearest bfloat16 values (ties to even), kept as float32: what a bfloat16 operand
 *  holds. No gradient (inference). */
export function roundBf16(x: Tensor): Tensor {
  checkTensor('roundBf16', x);
  const out = allocate(x.dtype, x.size, false);
  kernel('roundBf16', x.dtype)(x.data, out);
  return new Tensor(out, x.shape);
}

/**
 * The algorithms the backend in use takes for a convolution of this geometry (forward and weight
 * gradient), on a target whose fields default to the machine's now: the one place the choice is made
 * (native: choose_conv_algorithm in native/conv.cc; TypeScript: always im2col and a GEMM).
 */
export function chooseConvAlgorithm(geometry: ConvGeometry, target: ConvTarget = {}, dtype: DType = 'float32'): ConvAlgorithmChoice {
  return kernel('convAlgorithm', dtype)(geometry, target);
}

/**
 * Inference convolution with its epilogue fused: conv2d(x, w) then, per output channel, scale and
 * shift (the bias, or bias and an eval-mode batch norm folded), ReLU and a 2x2 max-pool, in one pass
 * over each chunk's output. No autograd: it refuses to run where a gradient could be wanted.
 */
export function conv2dFused(x: Tensor, w: Tensor, opts: ConvOptions, ep: ConvEpilogue, into?: (n: number) => FloatArray): Tensor {
  if (isGradEnabled() && (x.requiresGrad || w.requiresGrad)) throw new Error('conv2dFused: inference only (call it under noGrad)');
  const g = convGeometry(x, w, null, opts);
  for (const [name, v] of [['scale', ep.scale], ['shift', ep.shift]] as const) {
    if (v && v.length !== g.OC) throw new Error(`conv2dFused: ${name} has ${v.length} entries, the weight ${shapeStr(w.shape)} has ${g.OC} output channels`);
  }
  const pool = ep.pool ?? 1;
  const OH = pool === 2 ? Math.floor(g.OH / 2) : g.OH, OW = pool === 2 ? Math.floor(g.OW / 2) : g.OW;
  const n = g.N * g.OC * OH * OW;
  const out = into ? into(n) : allocate(x.dtype, n, false);
  if (out.length !== n || (x.dtype === 'float64') !== out instanceof Float64Array) throw new Error(`conv2dFused: the output buffer holds ${out.length} ${out instanceof Float64Array ? 'float64' : 'float32'} values, the output needs ${n} ${x.dtype}`);
  convolve(x, w, g, ep, out);
  return new Tensor(out, [g.N, g.OC, OH, OW]);
}

/**
 * w (OC,C,KH,KW) -> (C,OC,KH,KW) with each kernel turned by 180 degrees: the weights of the
 * convolution that carries a stride-1 convolution's output gradient back to its input
 */
function flipWeights(w: FloatArray, dtype: DType, OC: number, C: number, KH: number, KW: number): FloatArray {
  // into a scratch buffer (slot 3): read only by the convolution of the same backward
  const r = scratch(dtype, 3, w.length);
  kernel('flipConvWeights', dtype)(w, OC, C, KH * KW, r);
  return r;
}

// x (N,C,H,W), w (OC,C,KH,KW), b (OC) or null -> (N,OC,OH,OW); forward through convForward; backward:
// the weight gradient through im2col + GEMM per chunk of images, the input gradient at stride 1 as a
// convolution of the output gradient with the flipped weights (convForward again, padding K-1-P: no
// column matrix, no col2im), else through GEMM + col2im per chunk
export function conv2d(x: Tensor, w: Tensor, b: Tensor | null = null, opts: ConvOptions = {}): Tensor {
  const geo = convGeometry(x, w, b, opts);
  const { N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW } = geo;
  const dtype = x.dtype;
  const L = OH * OW, CKK = C * KH * KW;
  // convForward writes every output element: an array from the pool is not cleared first
  const out = allocate(dtype, N * OC * L, false);
  convolve(x, w, geo, b ? { shift: b.data } : {}, out);
  const inputs = b ? [x, w, b] : [x, w];
  return make(out, [N, OC, OH, OW], 'conv2d', inputs, (g) => {
    // gx[n,c,h,w] = sum over o, kh, kw of w[o,c,kh,kw] g[n,o,h+PH-kh,w+PW-kw]: with kh' = KH-1-kh, a
    // stride-1 convolution of g padded by KH-1-PH (output H x W exactly, since OH = H + 2PH - KH + 1).
    // Measured against GEMM + col2im (conv2d forward + backward, batch 128, 2 threads, interleaved):
    // 1.1-1.2x on VGG-16's 32x32 layer and LeNet-5's conv2, 1.0-1.1x on the 16x16 to 4x4 ones, but
    // 0.87x on 2x2 maps (a 2x2 image padded by 1 is mostly padding to pack): those keep col2im,
    // unless the convolution takes Winograd's algorithm there (native, 512 channels at batch 128:
    // 6.9 ms against 10.1 for the GEMM and col2im)
    // the input gradient as a convolution: N images of OC x OH x OW through C kernels, padding K-1-P
    const back: ConvGeometry = { N, C: OC, H: OH, W: OW, OC: C, KH, KW, SH: 1, SW: 1, PH: KH - 1 - PH, PW: KW - 1 - PW, OH: H, OW: W };
    const byConv = x.requiresGrad && SH === 1 && SW === 1 && PH <= KH - 1 && PW <= KW - 1
      && (H * W >= 16 || kernel('winogradTile', dtype)(back) > 0);
    // cleared only where a kernel adds into it: col2im's scatter, the GEMM's accumulation over chunks
    const gx = x.requiresGrad ? allocate(dtype, x.size, !byConv) : null;
    const gw = w.requiresGrad ? allocate(dtype, w.size, false) : null;
    if (byConv) {
      kernel('convForward', dtype)(g.data, 0, back, flipWeights(w.data, dtype, OC, C, KH, KW), {}, gx!, 0);
    }
    // the weight gradient straight from the images where the backend has that kernel (native: stride
    // 1, rows of whole vectors), else below through im2col and gemm
    const wDone = gw !== null && kernel('convWeightGrad', dtype)(x.data, 0, geo, g.data, 0, gw);
    if (gw && !wDone) gw.fill(0);
    // the weight gradient, and the input gradient where it is not a convolution: per chunk of images
    if ((gw && !wDone) || (gx && !byConv)) {
      const G = convChunkImages(N, CKK, L, OC);
      const gemm = kernel('gemm', dtype);
      const permuteK = kernel('permute', dtype);
      const col2im = kernel('col2im', dtype);
      const im2col = kernel('im2col', dtype);
      const cols = gw && !wDone ? scratch(dtype, 0, CKK * G * L) : null;
      const gt = G > 1 ? scratch(dtype, 1, OC * G * L) : null;
      const dcols = gx && !byConv ? scratch(dtype, 2, CKK * G * L) : null;
      for (let n0 = 0; n0 < N; n0 += G) {
        const k = Math.min(G, N - n0);
        // this chunk's upstream gradient as (OC, k*L)
        let go: FloatArray, goOff: number;
        if (k === 1) {
          go = g.data;
          goOff = n0 * OC * L;
        } else {
          permuteK(g.data.subarray(n0 * OC * L, (n0 + k) * OC * L) as FloatArray, [k, OC, L], [1, 0, 2], gt!.subarray(0, OC * k * L) as FloatArray);
          go = gt!;
          goOff = 0;
        }
        if (gw && !wDone) {
          im2col(x.data, n0 * C * H * W, k, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, cols!, 0, k * L);
          gemm(false, true, OC, CKK, k * L, 1, go, goOff, k * L, cols!, 0, k * L, 1, gw, 0, CKK);
        }
        if (gx && dcols) {
          gemm(true, false, CKK, k * L, OC, 1, w.data, 0, CKK, go, goOff, k * L, 0, dcols, 0, k * L);
          col2im(dcols, 0, k * L, k, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, gx, n0 * C * H * W);
        }
      }
    }
    let gb: Tensor | null = null;
    if (b && b.requiresGrad) {
      // gb (OC) = sum of g (N,OC,L) over N and L
      const d = allocate(dtype, OC);
      kernel('reduce', dtype)('sum', g.data, [N, OC, L], [0, 1, 0], d);
      gb = new Tensor(d, [OC]);
    }
    const res: (Tensor | null)[] = [gx ? new Tensor(gx, x.shape) : null, gw ? new Tensor(gw, w.shape) : null];
    if (b) res.push(gb);
    return res;
  });
}

export interface PoolOptions {
  stride?: Pair;
  padding?: Pair;
}

function poolSetup(op: string, x: Tensor, kernelSize: Pair, opts: PoolOptions) {
  checkTensor(op, x);
  if (x.ndim !== 4) throw new Error(`${op}: input must be (N,C,H,W), got shape ${shapeStr(x.shape)}`);
  const [N, C, H, W] = x.shape;
  const [KH, KW] = pair(op, 'kernel size', kernelSize, 1);
  const [SH, SW] = pair(op, 'stride', opts.stride ?? kernelSize, 1);
  const [PH, PW] = pair(op, 'padding', opts.padding ?? 0, 0);
  if (2 * PH > KH || 2 * PW > KW) throw new Error(`${op}: padding ${PH},${PW} must be at most half the kernel ${KH}x${KW}`);
  const [OH, OW] = outSize(op, x, H, W, KH, KW, SH, SW, PH, PW);
  return { N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW };
}

// x (N,C,H,W) -> (N,C,OH,OW); stride defaults to the kernel size
export function maxPool2d(x: Tensor, kernelSize: Pair, opts: PoolOptions = {}): Tensor {
  const { N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW } = poolSetup('maxPool2d', x, kernelSize, opts);
  const out = allocate(x.dtype, N * C * OH * OW, false);
  // the positions of the maxima only where a backward pass can follow (an empty array otherwise)
  const arg = new Int32Array(isGradEnabled() && x.requiresGrad ? out.length : 0);
  kernel('maxPool2d', x.dtype)(x.data, N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, out, arg);
  return make(out, [N, C, OH, OW], 'maxPool2d', [x], (g) => {
    const gx = allocate(x.dtype, x.size);
    kernel('maxPool2dBackward', x.dtype)(g.data, arg, gx);
    return [new Tensor(gx, x.shape)];
  });
}

// x (N,C,H,W) -> (N,C,OH,OW); padding counts as zeros in the average
export function avgPool2d(x: Tensor, kernelSize: Pair, opts: PoolOptions = {}): Tensor {
  const { N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW } = poolSetup('avgPool2d', x, kernelSize, opts);
  const out = allocate(x.dtype, N * C * OH * OW);
  kernel('avgPool2d', x.dtype)(x.data, N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, out);
  return make(out, [N, C, OH, OW], 'avgPool2d', [x], (g) => {
    const gx = allocate(x.dtype, x.size);
    kernel('avgPool2dBackward', x.dtype)(g.data, N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, gx);
    return [new Tensor(gx, x.shape)];
  });
}

// ---------------------------------------------------------------- softmax and losses

function softmaxImpl(name: string, x: Tensor, axis: number, log: boolean): Tensor {
  checkTensor(name, x);
  if (x.ndim === 0) throw new Error(`${name}: needs at least 1 dimension`);
  const a = normAxis(name, axis, x.ndim, x.shape);
  const outer = sizeOf(x.shape.slice(0, a));
  const dim = x.shape[a];
  const inner = sizeOf(x.shape.slice(a + 1));
  const out = allocate(x.dtype, x.size);
  kernel('softmax', x.dtype)(x.data, outer, dim, inner, out, log);
  return make(out, x.shape, name, [x], (g) => {
    const gx = allocate(x.dtype, x.size);
    kernel('softmaxBackward', x.dtype)(out, g.data, outer, dim, inner, gx, log);
    return [new Tensor(gx, x.shape)];
  });
}

// x (...) -> same shape, normalised along axis
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxImpl('softmax', x, axis, false);
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return softmaxImpl('logSoftmax', x, axis, true);
}

function toTargets(op: string, targets: ArrayLike<number> | Tensor, N: number, C: number): Int32Array {
  const src: ArrayLike<number> = targets instanceof Tensor ? targets.data : targets;
  if (targets instanceof Tensor && targets.ndim !== 1) throw new Error(`${op}: targets must be 1-D, got shape ${shapeStr(targets.shape)}`);
  if (src.length !== N) throw new Error(`${op}: ${src.length} targets for a batch of ${N}`);
  const t = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    const v = src[i];
    if (!Number.isInteger(v) || v < 0 || v >= C) throw new Error(`${op}: target ${v} at position ${i} is not a class index in [0, ${C})`);
    t[i] = v;
  }
  return t;
}

/**
 * Mean cross-entropy of logits (N,C) against class indices (N). With label smoothing ε the target of
 * each row is (1 − ε)·onehot + ε/C (Szegedy et al., 2016): the loss (1 − ε)·CE + ε·mean over the classes
 * of −log p, the gradient (p − target) / N.
 */
export function crossEntropy(logits: Tensor, targets: ArrayLike<number> | Tensor, smoothing = 0): Tensor {
  checkTensor('crossEntropy', logits, 'logits');
  if (logits.ndim !== 2) throw new Error(`crossEntropy: logits must be (N,C), got shape ${shapeStr(logits.shape)}`);
  if (!(smoothing >= 0 && smoothing < 1)) throw new Error(`crossEntropy: label smoothing must be in [0, 1), got ${smoothing}`);
  const [N, C] = logits.shape;
  if (N === 0) throw new Error('crossEntropy: empty batch');
  const t = toTargets('crossEntropy', targets, N, C);
  const probs = allocate(logits.dtype, logits.size);
  let loss = kernel('crossEntropy', logits.dtype)(logits.data, N, C, t, probs);
  if (smoothing > 0) {
    // mean over rows and classes of −log p = logsumexp(z) − z, in float64
    const z = logits.data;
    let uniform = 0;
    for (let n = 0; n < N; n++) {
      const b = n * C;
      let m = -Infinity, s = 0, zs = 0;
      for (let c = 0; c < C; c++) m = Math.max(m, z[b + c]);
      for (let c = 0; c < C; c++) {
        s += Math.exp(z[b + c] - m);
        zs += z[b + c];
      }
      uniform += m + Math.log(s) - zs / C;
    }
    loss = (1 - smoothing) * loss + (smoothing * uniform) / N;
  }
  const out = allocate(logits.dtype, 1);
  out[0] = loss;
  return make(out, [], 'crossEntropy', [logits], (g) => {
    const s = g.data[0] / N;
    const gx = allocate(logits.dtype, logits.size);
    const spread = (smoothing / C) * s, hit = (1 - smoothing) * s;
    for (let i = 0; i < gx.length; i++) gx[i] = probs[i] * s - spread;
    for (let n = 0; n < N; n++) gx[n * C + t[n]] -= hit;
    return [new Tensor(gx, logits.shape)];
  });
}

/** softmax of one row of logits divided by T, in float64 */
function softRow(z: ArrayLike<number>, base: number, C: number, T: number, out: Float64Array): void {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, z[base + c] / T);
  let s = 0;
  for (let c = 0; c < C; c++) s += (out[c] = Math.exp(z[base + c] / T - m));
  for (let c = 0; c < C; c++) out[c] /= s;
}

/**
 * Knowledge distillation (Hinton et al., 2015): (1 − α)·CE(student, targets) + α·T²·KL(p_T(teacher) ‖
 * p_T(student)), averaged over the batch, where p_T is the softmax of the logits divided by the
 * temperature T (the T² keeps the soft term's gradient on the scale of the hard one's). The teacher's
 * logits are constants. Gradient for the student's logits:
 * ((1 − α)·(p_1(s) − onehot) + α·T·(p_T(s) − p_T(t))) / N.
 */
// student (N,C), teacher (N,C), targets (N) -> scalar mean loss
export function distillationLoss(student: Tensor, teacher: Tensor, targets: ArrayLike<number> | Tensor, temperature: number, alpha: number): Tensor {
  checkTensor('distillationLoss', student, 'student logits');
  checkTensor('distillationLoss', teacher, 'teacher logits');
  if (student.ndim !== 2) throw new Error(`distillationLoss: student logits must be (N,C), got shape ${shapeStr(student.shape)}`);
  if (teacher.shape.join() !== student.shape.join()) throw new Error(`distillationLoss: teacher logits ${shapeStr(teacher.shape)} do not match the student's ${shapeStr(student.shape)}`);
  if (!(temperature > 0)) throw new Error(`distillationLoss: temperature must be positive, got ${temperature}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`distillationLoss: weight must be in [0, 1], got ${alpha}`);
  const [N, C] = student.shape;
  if (N === 0) throw new Error('distillationLoss: empty batch');
  const t = toTargets('distillationLoss', targets, N, C);
  const T = temperature;
  const grad = new Float64Array(N * C);
  const ps = new Float64Array(C), pt = new Float64Array(C), p1 = new Float64Array(C);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const base = n * C;
    softRow(student.data, base, C, 1, p1);
    softRow(student.data, base, C, T, ps);
    softRow(teacher.data, base, C, T, pt);
    let kl = 0;
    for (let c = 0; c < C; c++) if (pt[c] > 0) kl += pt[c] * (Math.log(pt[c]) - Math.log(Math.max(ps[c], 1e-300)));
    loss += (1 - alpha) * -Math.log(Math.max(p1[t[n]], 1e-300)) + alpha * T * T * kl;
    for (let c = 0; c < C; c++) grad[base + c] = ((1 - alpha) * (p1[c] - (c === t[n] ? 1 : 0)) + alpha * T * (ps[c] - pt[c])) / N;
  }
  const out = allocate(student.dtype, 1);
  out[0] = loss / N;
  return make(out, [], 'distillationLoss', [student], (g) => {
    const gx = allocate(student.dtype, student.size);
    for (let i = 0; i < gx.length; i++) gx[i] = grad[i] * g.data[0];
    return [new Tensor(gx, student.shape)];
  });
}

// ---------------------------------------------------------------- dropout and batch norm

/** inverted dropout: zero each element with probability p, scale the rest by 1/(1-p); identity when not training */
export function dropout(x: Tensor, p: number, training: boolean, rng: Rng): Tensor {
  checkTensor('dropout', x);
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  if (!(rng instanceof Rng)) throw new Error('dropout: rng must be an Rng (every random choice takes a seed)');
  const mask = allocate(x.dtype, x.size);
  const keep = 1 / (1 - p);
  for (let i = 0; i < mask.length; i++) mask[i] = rng.random() >= p ? keep : 0;
  const out = allocate(x.dtype, x.size);
  for (let i = 0; i < out.length; i++) out[i] = x.data[i] * mask[i];
  return make(out, x.shape, 'dropout', [x], (g) => {
    const gx = allocate(x.dtype, x.size);
    for (let i = 0; i < gx.length; i++) gx[i] = g.data[i] * mask[i];
    return [new Tensor(gx, x.shape)];
  });
}

export interface BatchNormState {
  runningMean: Tensor;
  runningVar: Tensor;
}

/**
 * x (N,C) or (N,C,...) -> same shape. training: normalise by the batch statistics over all axes but
 * C and update the running statistics in place (momentum, unbiased variance); eval: use them.
 * relu: a ReLU after it, fused (relu(batchNorm(...)) in one pass forward and one backward, with no
 * tensor in between; Sequential fuses a BatchNorm followed by a ReLU this way).
 */
export function batchNorm(
  x: Tensor, gamma: Tensor, beta: Tensor, state: BatchNormState,
  training: boolean, momentum = 0.1, eps = 1e-5, relu = false,
): Tensor {
  checkTensor('batchNorm', x);
  if (x.ndim < 2) throw new Error(`batchNorm: input must be (N,C) or (N,C,...), got shape ${shapeStr(x.shape)}`);
  const N = x.shape[0], C = x.shape[1];
  const S = sizeOf(x.shape.slice(2));
  for (const [name, t] of [['gamma', gamma], ['beta', beta], ['runningMean', state.runningMean], ['runningVar', state.runningVar]] as const) {
    checkTensor('batchNorm', t, name);
    if (t.ndim !== 1 || t.shape[0] !== C) throw new Error(`batchNorm: ${name} must have shape [${C}] for input ${shapeStr(x.shape)}, got ${shapeStr(t.shape)}`);
    sameDtype('batchNorm', x, t);
  }
  if (training && N * S <= 1) throw new Error(`batchNorm: training needs more than one value per channel, got input ${shapeStr(x.shape)}`);
  if (!(momentum >= 0 && momentum <= 1)) throw new Error(`batchNorm: momentum must be in [0, 1], got ${momentum}`);
  if (!(eps > 0)) throw new Error(`batchNorm: eps must be positive, got ${eps}`);
  // the kernels write every element of y and gx: arrays from the pool are not cleared first
  const y = allocate(x.dtype, x.size, false);
  const m = allocate(x.dtype, C);
  const is = allocate(x.dtype, C);
  kernel('batchNormForward', x.dtype)(x.data, N, C, S, gamma.data, beta.data, state.runningMean.data, state.runningVar.data, training, momentum, eps, y, m, is, relu);
  return make(y, x.shape, relu ? 'batchNormRelu' : 'batchNorm', [x, gamma, beta], (g) => {
    const gx = allocate(x.dtype, x.size, false);
    const gg = allocate(x.dtype, C);
    const gb = allocate(x.dtype, C);
    if (relu) kernel('batchNormBackward', x.dtype)(x.data, g.data, N, C, S, gamma.data, m, is, training, gx, gg, gb, y, beta.data);
    else kernel('batchNormBackward', x.dtype)(x.data, g.data, N, C, S, gamma.data, m, is, training, gx, gg, gb, EMPTY[x.dtype]);
    return [new Tensor(gx, x.shape), new Tensor(gg, [C]), new Tensor(gb, [C])];
  });
}
