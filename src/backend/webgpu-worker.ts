// The thread that holds the GPU for the WebGPU backend of the kernel interface (./webgpu-kernels.ts).
// Each request names a kernel and carries its host arrays; the thread uploads them, records the WGSL
// kernels (./webgpu.ts), reads the result back and answers on its port, then counts the answer in the
// shared flag the calling thread waits on.
import { workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { GpuBuffer, webgpu, WebGpu, WebGpuUnavailable } from './webgpu.js';
import type { BinaryOp, ReduceOp, UnaryOp } from './types.js';

const { flag, port } = workerData as { flag: Int32Array; port: MessagePort };

/** post the answer, then wake the caller */
function answer(message: unknown, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
  Atomics.add(flag, 0, 1);
  Atomics.notify(flag, 0);
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type Request = { op: string } & Record<string, any>;

/** the most of the inner dimension one GEMM dispatch takes: an invocation's loop runs K / BK times,
 * and adapters bound the iterations one invocation may run (Mesa's llvmpipe stops near 65,536: a
 * product over K = 65,536 came back wrong); longer products add up dispatches of this many */
const GEMM_STEP = 2048;

/** C = alpha · op(A) · op(B) + beta · C, over K in steps of GEMM_STEP, each step added to the last */
function gemmInSteps(gpu: WebGpu, ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number, A: GpuBuffer, lda: number, B: GpuBuffer, ldb: number, beta: number, C: GpuBuffer, ldc: number): void {
  if (K <= GEMM_STEP) return gpu.gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  for (let k0 = 0; k0 < K; k0 += GEMM_STEP) {
    const k = Math.min(GEMM_STEP, K - k0);
    // op(A)'s columns k0.. and op(B)'s rows k0..: a column offset where K runs along a row
    gpu.gemm(ta, tb, M, N, k, alpha, A, lda, B, ldb, k0 === 0 ? beta : 1, C, ldc, ta ? k0 * lda : k0, tb ? k0 : k0 * ldb);
  }
}

/** the kernels the thread runs: each returns the arrays the caller copies out */
const KERNELS: Record<string, (gpu: WebGpu, r: Request, keep: (b: GpuBuffer) => GpuBuffer) => Promise<Float32Array>> = {
  async gemm(gpu, r, keep) {
    const A = keep(gpu.upload(r.A)), B = keep(gpu.upload(r.B));
    const C = keep(r.C ? gpu.upload(r.C) : gpu.alloc(r.cLength));
    gemmInSteps(gpu, r.ta, r.tb, r.M, r.N, r.K, r.alpha, A, r.lda, B, r.ldb, r.C ? r.beta : 0, C, r.ldc);
    return gpu.read(C, r.cLength);
  },
  async im2col(gpu, r, keep) {
    const x = keep(gpu.upload(r.x));
    const cols = keep(gpu.alloc(r.C * r.k * r.k * r.G * r.OH * r.OW));
    gpu.im2col(x, r.G, r.C, r.H, r.W, r.k, r.s, r.p, cols);
    return gpu.read(cols);
  },
  async col2im(gpu, r, keep) {
    const cols = keep(gpu.upload(r.cols));
    const dx = keep(gpu.alloc(r.G * r.C * r.H * r.W));
    gpu.col2im(cols, r.G, r.C, r.H, r.W, r.k, r.s, r.p, dx);
    return gpu.read(dx);
  },
  /** a convolution's products, (OC, G·OH·OW): im2col, then one GEMM */
  async conv(gpu, r, keep) {
    const x = keep(gpu.upload(r.x)), w = keep(gpu.upload(r.w));
    const L = r.G * r.OH * r.OW, K = r.C * r.k * r.k;
    const cols = keep(gpu.alloc(K * L)), out = keep(gpu.alloc(r.OC * L));
    gpu.im2col(x, r.G, r.C, r.H, r.W, r.k, r.s, r.p, cols);
    gemmInSteps(gpu, false, false, r.OC, L, K, 1, w, K, cols, L, 0, out, L);
    return gpu.read(out);
  },
  async unary(gpu, r, keep) {
    const x = keep(gpu.upload(r.x)), out = keep(gpu.alloc(r.x.length));
    gpu.unary(r.kind as UnaryOp, x, out, r.p0, r.p1);
    return gpu.read(out);
  },
  async binary(gpu, r, keep) {
    const a = keep(gpu.upload(r.a)), b = keep(gpu.upload(r.b)), out = keep(gpu.alloc(r.n));
    gpu.binary(r.kind as BinaryOp, a, r.aStrides, b, r.bStrides, out, r.outShape, r.p0, r.p1);
    return gpu.read(out);
  },
  async reduce(gpu, r, keep) {
    const x = keep(gpu.upload(r.x)), out = keep(gpu.alloc(r.n));
    gpu.reduce(r.kind as ReduceOp, x, r.shape, r.outStrides, out);
    return gpu.read(out);
  },
  async permute(gpu, r, keep) {
    const x = keep(gpu.upload(r.x)), out = keep(gpu.alloc(r.x.length));
    gpu.permute(x, r.shape, r.perm, out);
    return gpu.read(out);
  },
  async argmax(gpu, r, keep) {
    const x = keep(gpu.upload(r.x)), out = keep(gpu.alloc(r.outer * r.inner));
    gpu.argmax(x, r.outer, r.dim, r.inner, out);
    return gpu.read(out);
  },
  async softmax(gpu, r, keep) {
    const x = keep(gpu.upload(r.x)), out = keep(gpu.alloc(r.x.length));
    gpu.softmax(x, r.outer, r.dim, r.inner, out, r.log);
    return gpu.read(out);
  },
  async softmaxBackward(gpu, r, keep) {
    const y = keep(gpu.upload(r.y)), g = keep(gpu.upload(r.g)), gx = keep(gpu.alloc(r.y.length));
    gpu.softmaxBackward(y, g, r.outer, r.dim, r.inner, gx, r.log);
    return gpu.read(gx);
  },
};

let gpu: WebGpu | null = null;
try {
  gpu = await webgpu();
  answer({ info: gpu.info, maxBinding: gpu.maxBinding });
} catch (e) {
  answer({ error: (e as Error).message, unavailable: e instanceof WebGpuUnavailable });
}

if (gpu) {
  const g = gpu;
  port.on('message', async (r: Request) => {
    const buffers: GpuBuffer[] = [];
    try {
      const run = KERNELS[r.op];
      if (!run) throw new Error(`WebGPU thread: no kernel '${r.op}'`);
      const out = await run(g, r, (b) => (buffers.push(b), b));
      answer({ out }, [out.buffer as ArrayBuffer]);
    } catch (e) {
      answer({ error: `WebGPU ${r.op}: ${(e as Error).message}` });
    } finally {
      for (const b of buffers) b.destroy();
    }
  });
}
