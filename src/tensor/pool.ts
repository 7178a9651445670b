// The pool that ops draw their output arrays from, and that backward passes and optimizers hand
// spent arrays back to.

import type { DType, FloatArray } from '../backend/types.js';

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

/** hands one array to the pool (a backward pass's spent gradient); see releaseArrays */
export function recycleArray(a: FloatArray): void {
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
    recycleArray(a);
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

/** whether the pool takes arrays at all (a cap above 0) */
export function poolReuses(): boolean {
  return poolCap > 0;
}

/** make allocate() record the arrays of the pool's sizes it hands out into `set` (null: stop);
 *  returns the set recorded into before, to restore */
export function collectAllocations(set: Set<ArrayBufferLike> | null): Set<ArrayBufferLike> | null {
  const prev = born;
  born = set;
  return prev;
}
