// The WebGPU backend of the kernel interface (./types.ts), so that every op, the autograd and every
// feature built on them run on the GPU as they run on the CPU backends.
//
// The interface is synchronous over host arrays; WebGPU answers asynchronously (a buffer is read back
// by a promise). So the GPU lives in a worker thread (./webgpu-worker.ts): a kernel call posts its
// arrays there and blocks on a shared counter (Atomics.wait) until the thread has run the WGSL kernels
// and posted the result, which the caller takes from its port without its event loop
// (receiveMessageOnPort) and writes into the output array. Each call pays an upload and a read back.
//
// The backend has the GEMM, im2col and col2im, the forward convolution (im2col and GEMM on the GPU,
// the per-channel epilogue on the CPU), the elementwise, reduction, permutation, argmax and softmax
// kernels. A kernel it lacks (batch norm, pooling, the SGD step, whose arithmetic is specified in
// double), or a variant its shaders do not take (non-square windows, more than 8 axes), runs on the
// next backend, as the registry resolves it. It serves float32 only.
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { jsKernels } from './js.js';
import { registerBackend, unregisterBackend } from './registry.js';
import type { Backend, BinaryOp, ConvGeometry, Epilogue, FloatArray, Kernels, ReduceOp, UnaryOp } from './types.js';
import type { AdapterInfo } from './webgpu.js';
import { WebGpuUnavailable } from './webgpu.js';
import { BINARY_BODY, UNARY_BODY } from './wgsl.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** how long a kernel call waits for the GPU thread before it gives up, and how long the thread may
 * take to find its adapter (a thread that failed to load never answers), in seconds */
const TIMEOUT_SECONDS = 600, START_SECONDS = 60;

/** the GPU thread and the synchronous calls into it */
class GpuThread {
  private answered = 0;

  private constructor(private readonly worker: Worker, private readonly flag: Int32Array, private readonly port: MessagePort) {}

  info!: AdapterInfo;
  /** the largest storage buffer the adapter binds, in bytes */
  maxBinding = 0;

  static start(): GpuThread {
    // the software adapter (OpenGL ES over llvmpipe) needs EGL without a display; a worker's
    // process.env is its own copy, so the variable is set here, in the process's environment
    process.env.EGL_PLATFORM ??= 'surfaceless';
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(new URL('./webgpu-worker.js', import.meta.url), { workerData: { flag, port: port2 }, transferList: [port2] });
    worker.unref();
    const t = new GpuThread(worker, flag, port1);
    let ready: any;
    try {
      ready = t.wait('with an adapter', START_SECONDS);
    } catch (e) {
      // a thread that never came up: no adapter to be had, as far as the caller can tell
      void worker.terminate();
      throw new WebGpuUnavailable((e as Error).message);
    }
    if (ready.error) {
      void worker.terminate();
      throw ready.unavailable ? new WebGpuUnavailable(ready.error) : new Error(ready.error);
    }
    t.info = ready.info;
    t.maxBinding = ready.maxBinding;
    return t;
  }

  /** block until the thread's next answer, and return it */
  private wait(what: string, seconds = TIMEOUT_SECONDS): any {
    const deadline = Date.now() + seconds * 1000;
    while (Atomics.load(this.flag, 0) === this.answered) {
      if (Date.now() > deadline) throw new Error(`WebGPU: the GPU thread did not answer ${what} within ${seconds} s`);
      Atomics.wait(this.flag, 0, this.answered, 1000);
    }
    this.answered++;
    const m = receiveMessageOnPort(this.port);
    if (!m) throw new Error(`WebGPU: the GPU thread signalled ${what} but sent nothing`);
    return m.message;
  }

  /** run one kernel on the GPU thread: its result */
  call(op: string, request: Record<string, unknown>): Float32Array {
    this.port.postMessage({ op, ...request });
    const r = this.wait(`'${op}'`);
    if (r.error) throw new Error(r.error);
    return r.out as Float32Array;
  }

  stop(): Promise<number> {
    this.port.close();
    return this.worker.terminate();
  }
}

/** the most loop steps one GPU reduction thread takes (see reduce) */
const REDUCE_STEPS = 32768;

/** a copy of x[off, off + n) as float32 (what crosses to the GPU thread: a view would carry its whole
 * buffer) */
const region = (x: FloatArray, off: number, n: number): Float32Array => (x instanceof Float32Array ? x.slice(off, off + n) : Float32Array.from(x.subarray(off, off + n)));

/** the kernels of the interface on the GPU thread `t` */
function kernelsOn(t: GpuThread): Partial<Kernels> {
  const js = jsKernels;
  const fits = (floats: number) => floats * 4 <= t.maxBinding;

  const gemm: Kernels['gemm'] = (ta, tb, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc) => {
    if (M === 0 || N === 0) return;
    const aRows = ta ? K : M, aCols = ta ? M : K, bRows = tb ? N : K, bCols = tb ? K : N;
    const aLen = (aRows - 1) * lda + aCols, bLen = (bRows - 1) * ldb + bCols, cLen = (M - 1) * ldc + N;
    if (K === 0 || !fits(aLen) || !fits(bLen) || !fits(cLen)) return js.gemm(ta, tb, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
    // C goes up where it is read (beta) or where the rows have gaps the result must keep
    const sendC = beta !== 0 || ldc !== N;
    const out = t.call('gemm', {
      ta, tb, M, N, K, alpha, beta, lda, ldb, ldc, cLength: cLen,
      A: region(A, aOff, aLen), B: region(B, bOff, bLen), C: sendC ? region(C, cOff, cLen) : null,
    });
    C.set(out, cOff);
  };

  const square = (KH: number, KW: number, SH: number, SW: number, PH: number, PW: number) => KH === KW && SH === SW && PH === PW;

  const im2col: Kernels['im2col'] = (x, xOff, G, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, cols, colsOff, ldCols) => {
    const rows = C * KH * KW, L = G * OH * OW;
    if (!square(KH, KW, SH, SW, PH, PW) || !fits(rows * L) || rows * L === 0) return js.im2col(x, xOff, G, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, cols, colsOff, ldCols);
    const out = t.call('im2col', { x: region(x, xOff, G * C * H * W), G, C, H, W, k: KH, s: SH, p: PH, OH, OW });
    if (ldCols === L) cols.set(out, colsOff);
    else for (let r = 0; r < rows; r++) cols.set(out.subarray(r * L, (r + 1) * L), colsOff + r * ldCols);
  };

  const col2im: Kernels['col2im'] = (cols, colsOff, ldCols, G, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, dx, dxOff) => {
    const rows = C * KH * KW, L = G * OH * OW;
    if (!square(KH, KW, SH, SW, PH, PW) || !fits(rows * L) || rows * L === 0) return js.col2im(cols, colsOff, ldCols, G, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, dx, dxOff);
    const dense = new Float32Array(rows * L);
    for (let r = 0; r < rows; r++) dense.set(cols.subarray(colsOff + r * ldCols, colsOff + r * ldCols + L), r * L);
    const out = t.call('col2im', { cols: dense, G, C, H, W, k: KH, s: SH, p: PH, OH, OW });
    for (let i = 0; i < out.length; i++) dx[dxOff + i] += out[i];
  };

  const convForward: Kernels['convForward'] = (x, xOff, g: ConvGeometry, w, e: Epilogue, out, outOff) => {
    const { N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW } = g;
    const L = OH * OW, K = C * KH * KW, pool = e.pool ?? 1;
    // images per trip: as many as the adapter binds at once
    const G = Math.min(N, Math.floor(t.maxBinding / 4 / Math.max(1, K * L, OC * L)));
    if (!square(KH, KW, SH, SW, PH, PW) || G < 1 || K * L === 0) return js.convForward(x, xOff, g, w, e, out, outOff);
    const none = new Float32Array(0);
    const POL = pool === 2 ? Math.floor(OH / 2) * Math.floor(OW / 2) : L;
    const weights = region(w, 0, OC * K);
    for (let n0 = 0; n0 < N; n0 += G) {
      const n = Math.min(G, N - n0);
      const products = t.call('conv', { x: region(x, xOff + n0 * C * H * W, n * C * H * W), w: weights, G: n, C, H, W, OC, k: KH, s: SH, p: PH, OH, OW });
      js.convEpilogue(products, 0, true, n, OC, OH, OW, e.scale ?? none, e.shift ?? none, e.relu ?? false, pool, out, outOff + n0 * OC * POL);
    }
  };

  const unary: Kernels['unary'] = (op: UnaryOp, x, out, p0, p1) => {
    if (!(op in UNARY_BODY) || x.length === 0 || !fits(x.length)) return js.unary(op, x, out, p0, p1);
    out.set(t.call('unary', { kind: op, x: region(x, 0, x.length), p0, p1 }));
  };

  const binary: Kernels['binary'] = (op: BinaryOp, a, aStrides, b, bStrides, out, outShape, p0, p1) => {
    const n = outShape.reduce((p, d) => p * d, 1);
    if (!(op in BINARY_BODY) || outShape.length > 8 || n === 0 || !fits(Math.max(n, a.length, b.length))) return js.binary(op, a, aStrides, b, bStrides, out, outShape, p0, p1);
    out.set(t.call('binary', { kind: op, a: region(a, 0, a.length), aStrides, b: region(b, 0, b.length), bStrides, outShape, n, p0, p1 }));
  };

  const reduce: Kernels['reduce'] = (op: ReduceOp, x, shape, outStrides, out) => {
    // one GPU thread per output walks its R inputs, each step through every axis: adapters bound the
    // iterations of one invocation (llvmpipe near 65,536), so long reductions stay on the CPU
    const R = out.length > 0 ? x.length / out.length : 0;
    if (shape.length > 8 || shape.length === 0 || out.length === 0 || x.length === 0 || R * (shape.length + 2) > REDUCE_STEPS || !fits(x.length)) return js.reduce(op, x, shape, outStrides, out);
    out.set(t.call('reduce', { kind: op, x: region(x, 0, x.length), shape, outStrides, n: out.length }));
  };

  const permute: Kernels['permute'] = (x, shape, perm, out) => {
    if (shape.length > 8 || shape.length === 0 || x.length === 0 || !fits(x.length)) return js.permute(x, shape, perm, out);
    out.set(t.call('permute', { x: region(x, 0, x.length), shape, perm }));
  };

  const argmax: Kernels['argmax'] = (x, outer, dim, inner, out) => {
    if (outer * inner === 0 || dim === 0 || !fits(x.length)) return js.argmax(x, outer, dim, inner, out);
    const r = t.call('argmax', { x: region(x, 0, outer * dim * inner), outer, dim, inner });
    for (let i = 0; i < r.length; i++) out[i] = r[i];
  };

  const softmax: Kernels['softmax'] = (x, outer, dim, inner, out, log) => {
    if (x.length === 0 || !fits(x.length)) return js.softmax(x, outer, dim, inner, out, log);
    out.set(t.call('softmax', { x: region(x, 0, outer * dim * inner), outer, dim, inner, log }));
  };

  const softmaxBackward: Kernels['softmaxBackward'] = (y, g, outer, dim, inner, gx, log) => {
    if (y.length === 0 || !fits(y.length)) return js.softmaxBackward(y, g, outer, dim, inner, gx, log);
    const n = outer * dim * inner;
    gx.set(t.call('softmaxBackward', { y: region(y, 0, n), g: region(g, 0, n), outer, dim, inner, log }));
  };

  return {
    gemm, im2col, col2im, convForward, unary, binary, reduce, permute, argmax, softmax, softmaxBackward,
    // the convolution's choices are the TypeScript backend's: im2col and a GEMM, no prepared weights,
    // the weight gradient through im2col and the (GPU) GEMM
    convWeightGrad: js.convWeightGrad, convAlgorithm: js.convAlgorithm, winogradTile: js.winogradTile, winogradWeights: js.winogradWeights, packConvWeights: js.packConvWeights,
  };
}

let running: { thread: GpuThread; backend: Backend } | null = null;

/**
 * Start the GPU thread (once) and register the WebGPU backend of the kernel interface, named 'webgpu',
 * below the CPU backends: it serves a kernel where `setBackend('webgpu')` (or NEURONMERGE_BACKEND=webgpu)
 * forces it. Returns the adapter; throws WebGpuUnavailable with the reason where there is none.
 */
export function startWebGpuKernels(): AdapterInfo {
  if (!running) {
    const thread = GpuThread.start();
    const backend: Backend = { name: 'webgpu', priority: -1, dtypes: ['float32'], kernels: kernelsOn(thread) };
    registerBackend(backend);
    running = { thread, backend };
  }
  return running.thread.info;
}

/** unregister the WebGPU kernels and stop the GPU thread */
export async function stopWebGpuKernels(): Promise<void> {
  if (!running) return;
  const { thread } = running;
  running = null;
  unregisterBackend('webgpu');
  await thread.stop();
}
