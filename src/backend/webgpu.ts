// The WebGPU backend: WGSL compute kernels (./wgsl.ts) through the npm package `webgpu` (Dawn), an
// optional dependency. Tensors live in GPU buffers from kernel to kernel; work is recorded into one
// command encoder and submitted together, and data comes back only when asked (`read`).
//
// Adapters, in order: NEURONMERGE_WEBGPU_FLAGS (Dawn flags, space-separated) if set; Dawn's default
// (Vulkan on Linux: an NVIDIA GPU with VK_DRIVER_FILES pointing at its ICD); then, unless
// NEURONMERGE_WEBGPU_SOFTWARE=0, OpenGL ES over Mesa's llvmpipe (EGL surfaceless, feature level
// 'compatibility'), a software adapter that runs the same kernels slowly: enough for parity tests.
import type { BinaryOp, ReduceOp, UnaryOp } from './types.js';
import * as W from './wgsl.js';

/** eight uniform words (an array<vec4u, 2>) from up to eight numbers */
function pad8(v: number[]): number[] {
  return [...v, ...new Array(8 - v.length).fill(0)];
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type GPUDevice = any;
type GPUBuffer = any;

// the usage and map-mode flags of the WebGPU specification
const STORAGE = 0x80, COPY_SRC = 0x4, COPY_DST = 0x8, MAP_READ = 0x1, UNIFORM = 0x40;
const MAP_MODE_READ = 0x1;

export class WebGpuUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebGpuUnavailable';
  }
}

/** a float32 (or u32) array in GPU memory */
export class GpuBuffer {
  constructor(readonly gpu: WebGpu, readonly buffer: GPUBuffer, readonly length: number) {}
  destroy(): void {
    this.buffer.destroy();
  }
}

export interface AdapterInfo {
  description: string;
  backend: string;
  software: boolean;
  featureLevel: 'core' | 'compatibility';
}

let loaded: Promise<WebGpu> | null = null;

/** the shared WebGPU context (created on first use); rejects with WebGpuUnavailable and the reason */
export function webgpu(): Promise<WebGpu> {
  loaded ??= WebGpu.create();
  return loaded;
}

export class WebGpu {
  private pipelines = new Map<string, any>();
  private encoder: any = null;
  private pass: any = null;
  /** uniform buffers of the recorded work, destroyed after the next submit */
  private transient: GPUBuffer[] = [];

  /** `gpu`: the object the device came from, held so that it lives as long as the device */
  private constructor(readonly device: GPUDevice, readonly info: AdapterInfo, readonly gpu: unknown) {}

  static async create(): Promise<WebGpu> {
    let mod: any;
    try {
      mod = await import('webgpu');
    } catch (e) {
      throw new WebGpuUnavailable(`the WebGPU backend needs the npm package 'webgpu' (an optional dependency), which did not load: ${(e as Error).message.split('\n')[0]}`);
    }
    const tries: { flags: string[]; level?: 'compatibility'; label: string }[] = [];
    const env = process.env.NEURONMERGE_WEBGPU_FLAGS;
    if (env) tries.push({ flags: env.split(/\s+/).filter(Boolean), label: `flags '${env}'`, level: /opengl/.test(env) ? 'compatibility' : undefined });
    else {
      tries.push({ flags: [], label: 'the default backend (Vulkan)' });
      if (process.env.NEURONMERGE_WEBGPU_SOFTWARE !== '0') tries.push({ flags: ['backend=opengles'], level: 'compatibility', label: 'OpenGL ES (software)' });
    }
    const why: string[] = [];
    for (const t of tries) {
      if (t.flags.some((f) => f.includes('opengl'))) process.env.EGL_PLATFORM ??= 'surfaceless';
      let gpu: any;
      try {
        gpu = mod.create(t.flags);
      } catch (e) {
        why.push(`${t.label}: ${(e as Error).message}`);
        continue;
      }
      const adapter = await gpu.requestAdapter(t.level ? { featureLevel: t.level } : undefined);
      if (!adapter) {
        why.push(`${t.label}: no adapter`);
        continue;
      }
      const lim = adapter.limits;
      const device = await adapter.requestDevice({
        requiredLimits: {
          maxStorageBuffersPerShaderStage: Math.min(8, lim.maxStorageBuffersPerShaderStage),
          maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
          maxBufferSize: lim.maxBufferSize,
        },
      });
      const i = adapter.info ?? {};
      const desc = [i.device, i.description].filter(Boolean).join(', ') || String(i.vendor || 'unknown adapter');
      const software = /llvmpipe|swiftshader|lavapipe|software/i.test([i.vendor, i.architecture, i.device, i.description].join(' '));
      return new WebGpu(device, { description: desc, backend: t.label, software, featureLevel: t.level ?? 'core' }, gpu);
    }
    throw new WebGpuUnavailable(`no WebGPU adapter: ${why.join('; ')}`);
  }

  get maxBinding(): number {
    return this.device.limits.maxStorageBufferBindingSize;
  }

  // ---- buffers ----

  alloc(length: number): GpuBuffer {
    const bytes = Math.max(16, Math.ceil((length * 4) / 16) * 16);
    if (bytes > this.maxBinding) throw new Error(`WebGPU: a buffer of ${length} floats (${bytes} bytes) is larger than this adapter's binding limit (${this.maxBinding} bytes); use a smaller batch`);
    return new GpuBuffer(this, this.device.createBuffer({ size: bytes, usage: STORAGE | COPY_SRC | COPY_DST }), length);
  }

  upload(data: Float32Array | Uint32Array, into?: GpuBuffer): GpuBuffer {
    const b = into ?? this.alloc(data.length);
    if (b.length < data.length) throw new Error(`WebGPU: ${data.length} values do not fit a buffer of ${b.length}`);
    this.flush();
    this.device.queue.writeBuffer(b.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  }

  /** submit the recorded work and copy a buffer back (the only place the CPU waits for the GPU) */
  async read(b: GpuBuffer, length = b.length): Promise<Float32Array> {
    const bytes = length * 4;
    const staging = this.device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: MAP_READ | COPY_DST });
    this.endPass();
    this.enc().copyBufferToBuffer(b.buffer, 0, staging, 0, bytes);
    this.flush();
    await staging.mapAsync(MAP_MODE_READ);
    const out = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
    staging.unmap();
    staging.destroy();
    return out;
  }

  // ---- recording ----

  private enc(): any {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** submit what was recorded */
  flush(): void {
    this.endPass();
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      for (const u of this.transient) u.destroy();
      this.transient = [];
    }
  }

  private pipeline(code: string): any {
    let p = this.pipelines.get(code);
    if (!p) {
      p = this.device.createComputePipeline({ layout: 'auto', compute: { module: this.device.createShaderModule({ code }), entryPoint: 'main' } });
      this.pipelines.set(code, p);
    }
    return p;
  }

  /** record one dispatch: `uniform` words (u32 or f32, as the shader's struct P orders them), the
   * storage buffers in binding order from 1, and the workgroup grid */
  dispatch(code: string, uniform: (number | { f: number })[], buffers: GpuBuffer[], grid: [number, number?, number?]): void {
    const u = new ArrayBuffer(Math.max(16, Math.ceil((uniform.length * 4) / 16) * 16));
    const dv = new DataView(u);
    uniform.forEach((w, i) => (typeof w === 'number' ? dv.setUint32(i * 4, w, true) : dv.setFloat32(i * 4, w.f, true)));
    const ub = this.device.createBuffer({ size: u.byteLength, usage: UNIFORM | COPY_DST });
    this.device.queue.writeBuffer(ub, 0, u);
    this.transient.push(ub);
    const pipe = this.pipeline(code);
    const bg = this.device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: ub } }, ...buffers.map((b, i) => ({ binding: i + 1, resource: { buffer: b.buffer } }))],
    });
    if (!this.pass) this.pass = this.enc().beginComputePass();
    this.pass.setPipeline(pipe);
    this.pass.setBindGroup(0, bg);
    this.pass.dispatchWorkgroups(grid[0], grid[1] ?? 1, grid[2] ?? 1);
  }

  /** a 2-D grid of 128-wide workgroups covering n threads */
  private grid1(n: number): [number, number] {
    const wg = Math.max(1, Math.ceil(n / 128));
    const x = Math.min(wg, 65535);
    return [x, Math.ceil(wg / x)];
  }

  // ---- kernels ----

  /** the SGEMM tilings this adapter can run (the 256-thread one needs a core adapter) */
  gemmTilings(): Record<string, W.GemmTiling> {
    const t: Record<string, W.GemmTiling> = { small: W.GEMM_SMALL, tall: W.GEMM_TALL };
    if (this.device.limits.maxComputeInvocationsPerWorkgroup >= 256) t.large = W.GEMM_LARGE;
    return t;
  }

  /** the tiling for a product: NEURONMERGE_WEBGPU_GEMM names one; else big tiles for big products */
  private pickTiling(M: number, N: number): W.GemmTiling {
    const all = this.gemmTilings();
    const forced = process.env.NEURONMERGE_WEBGPU_GEMM;
    if (forced) {
      if (!all[forced]) throw new Error(`NEURONMERGE_WEBGPU_GEMM=${forced}: this adapter offers ${Object.keys(all).join(', ')}`);
      return all[forced];
    }
    if (all.large && M >= 512 && N >= 512) return all.large;
    if (M >= 256 && N >= 64) return all.tall;
    return all.small;
  }

  /** C = alpha · op(A) · op(B) + beta · C (row-major; lda/ldb/ldc as for BLAS); `tiling` to force one */
  gemm(ta: boolean, tb: boolean, M: number, N: number, K: number, alpha: number, A: GpuBuffer, lda: number, B: GpuBuffer, ldb: number, beta: number, C: GpuBuffer, ldc: number, offA = 0, offB = 0, tiling?: W.GemmTiling): void {
    if (M === 0 || N === 0) return;
    const t = tiling ?? this.pickTiling(M, N);
    this.dispatch(W.gemmShader(t), [M, N, K, ta ? 1 : 0, tb ? 1 : 0, lda, ldb, ldc, { f: alpha }, { f: beta }, offA, offB], [A, B, C], [Math.ceil(N / t.BN), Math.ceil(M / t.BM)]);
  }

  /** dx = dy · [y > 0], or dy · y (1 − y) for the sigmoid: the elementwise binary kernel, no broadcasting */
  activationBackward(kind: 'relu' | 'sigmoid', dy: GpuBuffer, y: GpuBuffer, dx: GpuBuffer, n: number): void {
    this.binary(kind === 'relu' ? 'reluGrad' : 'sigmoidGrad', dy, [1], y, [1], dx, [n]);
  }
  /** y[(n·C + c)·S + s] += bias[c] */
  biasAdd(y: GpuBuffer, bias: GpuBuffer, N: number, C: number, S: number): void {
    this.dispatch(W.BIAS_ADD, [N * C * S, C, S, 0], [bias, y], this.grid1(N * C * S));
  }
  /** out[c] = Σ x[(n·C + c)·S + s] */
  channelSum(x: GpuBuffer, N: number, C: number, S: number, out: GpuBuffer): void {
    this.dispatch(W.CHANNEL_SUM, [N, C, S, 0], [x, out], [C]);
  }
  /** out[b, a, s] = x[a, b, s] */
  swap01(x: GpuBuffer, A: number, B: number, S: number, out: GpuBuffer): void {
    this.dispatch(W.SWAP01, [A, B, S, A * B * S], [x, out], this.grid1(A * B * S));
  }
  im2col(x: GpuBuffer, N: number, C: number, H: number, Wd: number, k: number, stride: number, pad: number, cols: GpuBuffer): void {
    const OH = Math.floor((H + 2 * pad - k) / stride) + 1, OW = Math.floor((Wd + 2 * pad - k) / stride) + 1;
    const n = C * k * k * N * OH * OW;
    this.dispatch(W.IM2COL, [N, C, H, Wd, OH, OW, k, stride, pad, n, 0, 0], [x, cols], this.grid1(n));
  }
  col2im(cols: GpuBuffer, N: number, C: number, H: number, Wd: number, k: number, stride: number, pad: number, dx: GpuBuffer): void {
    const OH = Math.floor((H + 2 * pad - k) / stride) + 1, OW = Math.floor((Wd + 2 * pad - k) / stride) + 1;
    const n = N * C * H * Wd;
    this.dispatch(W.COL2IM, [N, C, H, Wd, OH, OW, k, stride, pad, n, 0, 0], [cols, dx], this.grid1(n));
  }
  /** k×k max pooling with stride k; arg gets the input index of each maximum */
  maxPool(x: GpuBuffer, NC: number, H: number, Wd: number, k: number, y: GpuBuffer, arg: GpuBuffer): void {
    const OH = Math.floor(H / k), OW = Math.floor(Wd / k), n = NC * OH * OW;
    this.dispatch(W.MAXPOOL, [NC, H, Wd, OH, OW, k, n, 0], [x, y, arg], this.grid1(n));
  }
  maxPoolBackward(dy: GpuBuffer, arg: GpuBuffer, NC: number, H: number, Wd: number, k: number, dx: GpuBuffer): void {
    const OH = Math.floor(H / k), OW = Math.floor(Wd / k), n = NC * H * Wd;
    this.dispatch(W.MAXPOOL_BACK, [NC, H, Wd, OH, OW, k, n, 0], [dy, arg, dx], this.grid1(n));
  }
  /** training statistics: stats = [mean, invstd] per channel; running = [mean (C), var (C)] updated */
  bnStats(x: GpuBuffer, N: number, C: number, S: number, momentum: number, eps: number, stats: GpuBuffer, running: GpuBuffer): void {
    this.dispatch(W.BN_STATS, [N, C, S, 0, { f: momentum }, { f: eps }, 0, 0], [x, stats, running], [C]);
  }
  bnEvalStats(running: GpuBuffer, C: number, eps: number, stats: GpuBuffer): void {
    this.dispatch(W.BN_EVAL_STATS, [C, { f: eps }, 0, 0], [running, stats], [Math.ceil(C / 128)]);
  }
  /** y = (x − mean)·invstd·gamma + beta, affine = [gamma, beta] */
  bnApply(x: GpuBuffer, N: number, C: number, S: number, stats: GpuBuffer, affine: GpuBuffer, y: GpuBuffer): void {
    this.dispatch(W.BN_APPLY, [N * C * S, C, S, 0], [x, stats, affine, y], this.grid1(N * C * S));
  }
  /** gaffine = [Σ dy·x̂, Σ dy]; dx (when given) the training-mode input gradient */
  bnBackward(x: GpuBuffer, dy: GpuBuffer, N: number, C: number, S: number, stats: GpuBuffer, affine: GpuBuffer, gaffine: GpuBuffer, dx: GpuBuffer | null): void {
    this.dispatch(W.BN_BACK_REDUCE, [N, C, S, 0], [x, dy, stats, gaffine], [C]);
    if (dx) this.dispatch(W.BN_BACK_APPLY, [N * C * S, C, S, N * S], [x, dy, stats, affine, gaffine, dx], this.grid1(N * C * S));
  }
  /** softmax cross-entropy over N rows of C logits: dlogits, and out = [loss, correct] per row */
  crossEntropy(logits: GpuBuffer, targets: GpuBuffer, N: number, C: number, dlogits: GpuBuffer, out: GpuBuffer): void {
    this.dispatch(W.XENT, [N, C, 0, 0], [logits, targets, dlogits, out], [Math.ceil(N / 128)]);
  }
  // ---- the general kernels of the interface (src/backend/types.ts) on GPU buffers ----

  /** out[i] = op(x[i]; p0, p1) */
  unary(op: UnaryOp, x: GpuBuffer, out: GpuBuffer, p0 = 0, p1 = 0, n = x.length): void {
    this.dispatch(W.unaryShader(op), [n, { f: p0 }, { f: p1 }, 0], [x, out], this.grid1(n));
  }

  /** out (outShape) = op(a, b), a and b read through strides over outShape (0 on broadcast axes) */
  binary(op: BinaryOp, a: GpuBuffer, aStrides: number[], b: GpuBuffer, bStrides: number[], out: GpuBuffer, outShape: number[], p0 = 0, p1 = 0): void {
    const nd = outShape.length;
    if (nd > 8) throw new Error(`WebGPU binary: at most 8 axes, got ${nd}`);
    const n = outShape.reduce((x, y) => x * y, 1);
    if (n === 0) return;
    this.dispatch(W.binaryShader(op), [n, nd, { f: p0 }, { f: p1 }, ...pad8(outShape), ...pad8(aStrides), ...pad8(bStrides)], [a, b, out], this.grid1(n));
  }

  /** out = sum or max of x (shape) over the axes where outStrides is 0, as the interface's reduce */
  reduce(op: ReduceOp, x: GpuBuffer, shape: number[], outStrides: number[], out: GpuBuffer): void {
    const nd = shape.length;
    if (nd > 8) throw new Error(`WebGPU reduce: at most 8 axes, got ${nd}`);
    const red = outStrides.map((s, d) => (s === 0 && shape[d] > 0 ? 1 : 0));
    const n = shape.reduce((p, d, i) => p * (red[i] ? 1 : d), 1);
    const R = shape.reduce((p, d, i) => p * (red[i] ? d : 1), 1);
    if (n === 0) return;
    this.dispatch(W.REDUCE, [n, nd, R, op === 'max' ? 1 : 0, ...pad8(shape), ...pad8(red)], [x, out], this.grid1(n));
  }

  /** out = x permuted: out axes are x's axes in the order perm */
  permute(x: GpuBuffer, shape: number[], perm: number[], out: GpuBuffer): void {
    const nd = shape.length;
    if (nd > 8) throw new Error(`WebGPU permute: at most 8 axes, got ${nd}`);
    const xs: number[] = new Array(nd);
    let s = 1;
    for (let d = nd - 1; d >= 0; d--) {
      xs[d] = s;
      s *= shape[d];
    }
    if (s === 0) return;
    this.dispatch(W.PERMUTE, [s, nd, 0, 0, ...pad8(perm.map((p) => shape[p])), ...pad8(perm.map((p) => xs[p]))], [x, out], this.grid1(s));
  }

  /** index of the first maximum along dim of (outer, dim, inner), written as floats */
  argmax(x: GpuBuffer, outer: number, dim: number, inner: number, out: GpuBuffer): void {
    this.dispatch(W.ARGMAX, [outer, dim, inner, 0], [x, out], this.grid1(outer * inner));
  }

  softmax(x: GpuBuffer, outer: number, dim: number, inner: number, out: GpuBuffer, log: boolean): void {
    this.dispatch(W.SOFTMAX, [outer, dim, inner, log ? 1 : 0], [x, out], this.grid1(outer * inner));
  }

  softmaxBackward(y: GpuBuffer, g: GpuBuffer, outer: number, dim: number, inner: number, gx: GpuBuffer, log: boolean): void {
    this.dispatch(W.SOFTMAX_BACK, [outer, dim, inner, log ? 1 : 0], [y, g, gx], this.grid1(outer * inner));
  }

  sgd(grad: GpuBuffer, w: GpuBuffer, v: GpuBuffer, lr: number, momentum: number, weightDecay: number): void {
    this.dispatch(W.SGD, [w.length, { f: lr }, { f: momentum }, { f: weightDecay }], [grad, w, v], this.grid1(w.length));
  }
}
