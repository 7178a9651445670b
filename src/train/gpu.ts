// Training and inference of a Sequential model on the WebGPU backend. The layers the paper's networks
// use (Linear, Conv2d, BatchNorm, ReLU, Sigmoid, MaxPool2d, Flatten) run as WGSL kernels with their
// backward passes written out layer by layer; weights, gradients, momentum and activations stay in
// GPU memory across steps. The CPU sees only the per-row loss and hits each step, and the weights
// when `download` copies them back into the model (for checkpoints, merging, evaluation on the CPU).
import { BatchNorm, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, Sigmoid } from '../nn/layers.js';
import { Tensor } from '../tensor/tensor.js';
import { GpuBuffer, webgpu, WebGpu, WebGpuUnavailable } from '../backend/webgpu.js';
import type { BatchLoader } from '../../datasets/loader.js';
import type { Arch } from '../models/index.js';
import type { Schedule } from '../optim/index.js';
import { saveCheckpoint } from './checkpoint.js';
import type { CheckpointKind } from './checkpoint.js';
import type { EpochRecord, FitResult } from './loop.js';
import { modelRngs } from './loop.js';

interface Param {
  w: GpuBuffer;
  g: GpuBuffer;
  v: GpuBuffer;
}

interface Shape {
  /** per-sample shape: [C, H, W] or [F] */
  dims: number[];
}

const per = (s: Shape) => s.dims.reduce((a, b) => a * b, 1);

abstract class GpuLayer {
  params: Param[] = [];
  constructor(protected gpu: WebGpu, readonly inShape: Shape, readonly outShape: Shape) {}
  abstract forward(x: GpuBuffer, N: number, training: boolean): GpuBuffer;
  /** gradients of the parameters, and the input gradient when needDx */
  abstract backward(dy: GpuBuffer, N: number, needDx: boolean): GpuBuffer | null;
  /** copy the GPU state back into the CPU module */
  abstract download(): Promise<void>;
  protected param(t: Tensor): Param {
    const p = { w: this.gpu.upload(t.data as Float32Array), g: this.gpu.alloc(t.size), v: this.gpu.alloc(t.size) };
    this.params.push(p);
    return p;
  }
  private pool = new Map<string, GpuBuffer>();
  /** a buffer for `name` holding at least n values (kept across steps) */
  protected buf(name: string, n: number): GpuBuffer {
    const b = this.pool.get(name);
    if (b && b.length >= n) return b;
    b?.destroy();
    const nb = this.gpu.alloc(n);
    this.pool.set(name, nb);
    return nb;
  }
}

class GLinear extends GpuLayer {
  private W: Param;
  private b: Param | null;
  private x!: GpuBuffer;
  constructor(gpu: WebGpu, private m: Linear, s: Shape) {
    super(gpu, s, { dims: [m.weight.shape[0]] });
    if (per(s) !== m.weight.shape[1]) throw new Error(`WebGPU: ${m.describe()} gets ${per(s)} features`);
    this.W = this.param(m.weight);
    this.b = m.bias ? this.param(m.bias) : null;
  }
  forward(x: GpuBuffer, N: number): GpuBuffer {
    const [O, I] = this.m.weight.shape;
    this.x = x;
    const y = this.buf('y', N * O);
    this.gpu.gemm(false, true, N, O, I, 1, x, I, this.W.w, I, 0, y, O);
    if (this.b) this.gpu.biasAdd(y, this.b.w, N, O, 1);
    return y;
  }
  backward(dy: GpuBuffer, N: number, needDx: boolean): GpuBuffer | null {
    const [O, I] = this.m.weight.shape;
    this.gpu.gemm(true, false, O, I, N, 1, dy, O, this.x, I, 0, this.W.g, I);
    if (this.b) this.gpu.channelSum(dy, N, O, 1, this.b.g);
    if (!needDx) return null;
    const dx = this.buf('dx', N * I);
    this.gpu.gemm(false, false, N, I, O, 1, dy, O, this.W.w, I, 0, dx, I);
    return dx;
  }
  async download(): Promise<void> {
    this.m.weight.data.set(await this.gpu.read(this.W.w));
    if (this.b) this.m.bias!.data.set(await this.gpu.read(this.b.w));
  }
}

const square = (p: number | [number, number], what: string, layer: string): number => {
  if (typeof p === 'number') return p;
  if (p[0] !== p[1]) throw new Error(`WebGPU: ${layer} has a non-square ${what} ${JSON.stringify(p)}; only square ones are supported`);
  return p[0];
};

class GConv extends GpuLayer {
  private W: Param;
  private b: Param | null;
  private k: number;
  private stride: number;
  private pad: number;
  constructor(gpu: WebGpu, private m: Conv2d, s: Shape) {
    const [O, C, kh, kw] = m.weight.shape;
    const stride = square(m.stride, 'stride', m.describe()), pad = square(m.padding, 'padding', m.describe());
    if (kh !== kw) throw new Error(`WebGPU: ${m.describe()} has a non-square kernel`);
    if (s.dims.length !== 3 || s.dims[0] !== C) throw new Error(`WebGPU: ${m.describe()} gets input of shape [${s.dims.join(',')}]`);
    const [, H, Wd] = s.dims;
    super(gpu, s, { dims: [O, Math.floor((H + 2 * pad - kh) / stride) + 1, Math.floor((Wd + 2 * pad - kw) / stride) + 1] });
    this.k = kh;
    this.stride = stride;
    this.pad = pad;
    this.W = this.param(m.weight);
    this.b = m.bias ? this.param(m.bias) : null;
  }
  private get dims() {
    const [C, H, Wd] = this.inShape.dims;
    const [O, OH, OW] = this.outShape.dims;
    return { C, H, Wd, O, P: OH * OW, CKK: C * this.k * this.k };
  }
  forward(x: GpuBuffer, N: number): GpuBuffer {
    const { C, H, Wd, O, P, CKK } = this.dims;
    const cols = this.buf('cols', CKK * N * P);
    this.gpu.im2col(x, N, C, H, Wd, this.k, this.stride, this.pad, cols);
    const y2 = this.buf('y2', O * N * P);
    this.gpu.gemm(false, false, O, N * P, CKK, 1, this.W.w, CKK, cols, N * P, 0, y2, N * P);
    const y = this.buf('y', N * O * P);
    this.gpu.swap01(y2, O, N, P, y);
    if (this.b) this.gpu.biasAdd(y, this.b.w, N, O, P);
    return y;
  }
  backward(dy: GpuBuffer, N: number, needDx: boolean): GpuBuffer | null {
    const { C, H, Wd, O, P, CKK } = this.dims;
    const dy2 = this.buf('y2', O * N * P);
    this.gpu.swap01(dy, N, O, P, dy2);
    const cols = this.buf('cols', CKK * N * P);
    this.gpu.gemm(false, true, O, CKK, N * P, 1, dy2, N * P, cols, N * P, 0, this.W.g, CKK);
    if (this.b) this.gpu.channelSum(dy, N, O, P, this.b.g);
    if (!needDx) return null;
    // the columns are no longer needed: their buffer takes the column gradients
    this.gpu.gemm(true, false, CKK, N * P, O, 1, this.W.w, CKK, dy2, N * P, 0, cols, N * P);
    const dx = this.buf('dx', N * C * H * Wd);
    this.gpu.col2im(cols, N, C, H, Wd, this.k, this.stride, this.pad, dx);
    return dx;
  }
  async download(): Promise<void> {
    this.m.weight.data.set(await this.gpu.read(this.W.w));
    if (this.b) this.m.bias!.data.set(await this.gpu.read(this.b.w));
  }
}

class GBatchNorm extends GpuLayer {
  private affine: Param;
  private running: GpuBuffer;
  private x!: GpuBuffer;
  private C: number;
  constructor(gpu: WebGpu, private m: BatchNorm, s: Shape) {
    super(gpu, s, s);
    this.C = m.weight.shape[0];
    if (s.dims[0] !== this.C) throw new Error(`WebGPU: ${m.describe()} gets ${s.dims[0]} channels`);
    const both = new Float32Array(2 * this.C);
    both.set(m.weight.data as Float32Array, 0);
    both.set(m.bias.data as Float32Array, this.C);
    this.affine = { w: gpu.upload(both), g: gpu.alloc(2 * this.C), v: gpu.alloc(2 * this.C) };
    this.params.push(this.affine);
    const run = new Float32Array(2 * this.C);
    run.set(m.runningMean.data as Float32Array, 0);
    run.set(m.runningVar.data as Float32Array, this.C);
    this.running = gpu.upload(run);
  }
  private get S() {
    return per(this.inShape) / this.C;
  }
  forward(x: GpuBuffer, N: number, training: boolean): GpuBuffer {
    this.x = x;
    const stats = this.buf('stats', 2 * this.C);
    if (training) this.gpu.bnStats(x, N, this.C, this.S, this.m.momentum, this.m.eps, stats, this.running);
    else this.gpu.bnEvalStats(this.running, this.C, this.m.eps, stats);
    const y = this.buf('y', N * per(this.inShape));
    this.gpu.bnApply(x, N, this.C, this.S, stats, this.affine.w, y);
    return y;
  }
  backward(dy: GpuBuffer, N: number, needDx: boolean): GpuBuffer | null {
    const dx = needDx ? this.buf('dx', N * per(this.inShape)) : null;
    this.gpu.bnBackward(this.x, dy, N, this.C, this.S, this.buf('stats', 2 * this.C), this.affine.w, this.affine.g, dx);
    return dx;
  }
  async download(): Promise<void> {
    const a = await this.gpu.read(this.affine.w), r = await this.gpu.read(this.running);
    this.m.weight.data.set(a.subarray(0, this.C));
    this.m.bias.data.set(a.subarray(this.C));
    this.m.runningMean.data.set(r.subarray(0, this.C));
    this.m.runningVar.data.set(r.subarray(this.C));
  }
}

class GActivation extends GpuLayer {
  private y!: GpuBuffer;
  constructor(gpu: WebGpu, private kind: 'relu' | 'sigmoid', s: Shape) {
    super(gpu, s, s);
  }
  forward(x: GpuBuffer, N: number): GpuBuffer {
    const n = N * per(this.inShape);
    this.y = this.buf('y', n);
    this.gpu.unary(this.kind, x, this.y, 0, 0, n);
    return this.y;
  }
  backward(dy: GpuBuffer, N: number, needDx: boolean): GpuBuffer | null {
    if (!needDx) return null;
    const n = N * per(this.inShape);
    const dx = this.buf('dx', n);
    this.gpu.activationBackward(this.kind, dy, this.y, dx, n);
    return dx;
  }
  async download(): Promise<void> {}
}

class GMaxPool extends GpuLayer {
  private k: number;
  private arg!: GpuBuffer;
  constructor(gpu: WebGpu, m: MaxPool2d, s: Shape) {
    const k = square(m.kernelSize, 'kernel', m.describe());
    const st = square(m.stride ?? m.kernelSize, 'stride', m.describe());
    if (st !== k || square(m.padding, 'padding', m.describe()) !== 0) throw new Error(`WebGPU: ${m.describe()}: only pooling with stride = kernel and no padding is supported`);
    const [C, H, Wd] = s.dims;
    super(gpu, s, { dims: [C, Math.floor(H / k), Math.floor(Wd / k)] });
    this.k = k;
  }
  forward(x: GpuBuffer, N: number): GpuBuffer {
    const [C, H, Wd] = this.inShape.dims;
    const y = this.buf('y', N * per(this.outShape));
    this.arg = this.buf('arg', N * per(this.outShape));
    this.gpu.maxPool(x, N * C, H, Wd, this.k, y, this.arg);
    return y;
  }
  backward(dy: GpuBuffer, N: number, needDx: boolean): GpuBuffer | null {
    if (!needDx) return null;
    const [C, H, Wd] = this.inShape.dims;
    const dx = this.buf('dx', N * per(this.inShape));
    this.gpu.maxPoolBackward(dy, this.arg, N * C, H, Wd, this.k, dx);
    return dx;
  }
  async download(): Promise<void> {}
}

class GFlatten extends GpuLayer {
  constructor(gpu: WebGpu, s: Shape) {
    super(gpu, s, { dims: [per(s)] });
  }
  forward(x: GpuBuffer): GpuBuffer {
    return x;
  }
  backward(dy: GpuBuffer, _N: number, needDx: boolean): GpuBuffer | null {
    return needDx ? dy : null;
  }
  async download(): Promise<void> {}
}

export interface GpuStepResult {
  loss: number;
  correct: number;
}

export class GpuModel {
  private xbuf: GpuBuffer | null = null;
  private tbuf: GpuBuffer | null = null;
  private dlogits: GpuBuffer | null = null;
  private out: GpuBuffer | null = null;
  private constructor(readonly gpu: WebGpu, readonly model: Sequential, private layers: GpuLayer[], readonly inputShape: number[]) {}

  /** move a model to the GPU; inputShape is one sample's ([C, H, W] or [F]) */
  static async create(model: Sequential, inputShape: number[]): Promise<GpuModel> {
    const gpu = await webgpu();
    const layers: GpuLayer[] = [];
    let s: Shape = { dims: inputShape };
    for (const m of model.layers) {
      let l: GpuLayer;
      if (m instanceof Linear) l = new GLinear(gpu, m, s);
      else if (m instanceof Conv2d) l = new GConv(gpu, m, s);
      else if (m instanceof BatchNorm) l = new GBatchNorm(gpu, m, s);
      else if (m instanceof ReLU) l = new GActivation(gpu, 'relu', s);
      else if (m instanceof Sigmoid) l = new GActivation(gpu, 'sigmoid', s);
      else if (m instanceof MaxPool2d) l = new GMaxPool(gpu, m, s);
      else if (m instanceof Flatten) l = new GFlatten(gpu, s);
      else throw new Error(`WebGPU: layer ${m.describe()} is not supported on the GPU (Linear, Conv2d, BatchNorm, ReLU, Sigmoid, MaxPool2d, Flatten are)`);
      layers.push(l);
      s = l.outShape;
    }
    return new GpuModel(gpu, model, layers, inputShape);
  }

  private input(x: Tensor, y?: Int32Array): number {
    const N = x.shape[0];
    const f = per({ dims: this.inputShape });
    if (x.size !== N * f) throw new Error(`WebGPU: input of shape [${x.shape.join(',')}] does not match the model's [N,${this.inputShape.join(',')}]`);
    if (!this.xbuf || this.xbuf.length < x.size) {
      this.xbuf?.destroy();
      this.xbuf = this.gpu.alloc(x.size);
    }
    this.gpu.upload(x.data instanceof Float32Array ? x.data : Float32Array.from(x.data), this.xbuf);
    if (y) {
      if (!this.tbuf || this.tbuf.length < N) {
        this.tbuf?.destroy();
        this.tbuf = this.gpu.alloc(N);
      }
      this.gpu.upload(Uint32Array.from(y), this.tbuf);
    }
    return N;
  }

  private forward(N: number, training: boolean): GpuBuffer {
    let h = this.xbuf!;
    for (const l of this.layers) h = l.forward(h, N, training);
    return h;
  }

  /** record the cross-entropy of the logits against the uploaded targets: dlogits and per-row results */
  private loss(logits: GpuBuffer, N: number): void {
    const C = per(this.layers[this.layers.length - 1].outShape);
    if (!this.dlogits || this.dlogits.length < N * C) {
      this.dlogits?.destroy();
      this.out?.destroy();
      this.dlogits = this.gpu.alloc(N * C);
      this.out = this.gpu.alloc(2 * N);
    }
    this.gpu.crossEntropy(logits, this.tbuf!, N, C, this.dlogits, this.out!);
  }

  private async summary(N: number): Promise<GpuStepResult> {
    const o = await this.gpu.read(this.out!, 2 * N);
    let loss = 0, correct = 0;
    for (let i = 0; i < N; i++) {
      loss += o[2 * i];
      correct += o[2 * i + 1];
    }
    return { loss: loss / N, correct };
  }

  /** one SGD step (momentum, weight decay) on a batch; returns the batch's mean loss and hits */
  async trainStep(x: Tensor, y: Int32Array, o: { lr: number; momentum?: number; weightDecay?: number }): Promise<GpuStepResult> {
    const N = this.input(x, y);
    this.loss(this.forward(N, true), N);
    let g: GpuBuffer | null = this.dlogits!;
    for (let i = this.layers.length - 1; i >= 0; i--) g = this.layers[i].backward(g!, N, i > 0);
    for (const l of this.layers) for (const p of l.params) this.gpu.sgd(p.g, p.w, p.v, o.lr, o.momentum ?? 0, o.weightDecay ?? 0);
    return this.summary(N);
  }

  /** logits of a batch in evaluation mode */
  async predict(x: Tensor): Promise<Float32Array> {
    const N = this.input(x);
    const logits = this.forward(N, false);
    return this.gpu.read(logits, N * per(this.layers[this.layers.length - 1].outShape));
  }

  /** test accuracy and mean loss, in batches */
  async evaluate(x: Tensor, y: Int32Array, batchSize = 500): Promise<{ accuracy: number; loss: number }> {
    const N = x.shape[0];
    const f = x.size / N;
    let loss = 0, correct = 0;
    for (let b = 0; b < N; b += batchSize) {
      const n = Math.min(batchSize, N - b);
      this.input(new Tensor(x.data.subarray(b * f, (b + n) * f), [n, ...x.shape.slice(1)]), y.subarray(b, b + n));
      this.loss(this.forward(n, false), n);
      const r = await this.summary(n);
      loss += r.loss * n;
      correct += r.correct;
    }
    return { accuracy: correct / N, loss: loss / N };
  }

  /** copy weights, batch-norm parameters and running statistics back into the CPU model */
  async download(): Promise<void> {
    for (const l of this.layers) await l.download();
  }
}

export interface GpuFitOptions {
  arch: Arch;
  loader: BatchLoader;
  epochs: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  schedule?: Schedule;
  evalSet?: { x: Tensor; y: Int32Array };
  /** the model (weights only: momentum restarts on resume) after every epoch */
  checkpoint?: string;
  /** what the checkpoint holds (default 'original') */
  checkpointKind?: CheckpointKind;
  progress?: boolean;
  log?: (line: string) => void;
  maxSteps?: number;
}

/** the training loop of ./loop.ts on the GPU: SGD with momentum and weight decay, a schedule, test
 * accuracy after each epoch; the CPU model holds the trained weights at the end */
export async function fitGpu(model: Sequential, inputShape: number[], o: GpuFitOptions): Promise<FitResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const gm = await GpuModel.create(model, inputShape);
  if (o.progress !== false) log(`WebGPU: ${gm.gpu.info.description} (${gm.gpu.info.backend}${gm.gpu.info.software ? ', a software adapter: slow' : ''})`);
  const history: EpochRecord[] = [];
  let step = 0;
  const nb = o.loader.length;
  outer: for (let epoch = 0; epoch < o.epochs; epoch++) {
    const t0 = performance.now();
    let lossSum = 0, correct = 0, seen = 0;
    let lr = o.lr;
    for (let b = 0; b < nb; b++) {
      if (o.maxSteps !== undefined && step >= o.maxSteps) break outer;
      lr = o.schedule ? o.schedule(step) : o.lr;
      const { x, y } = o.loader.batch(epoch, b);
      const r = await gm.trainStep(x, y, { lr, momentum: o.momentum, weightDecay: o.weightDecay });
      if (!Number.isFinite(r.loss)) throw new Error(`training stopped: the loss became ${r.loss} at epoch ${epoch + 1}, batch ${b + 1}; try a lower learning rate`);
      step++;
      lossSum += r.loss * y.length;
      correct += r.correct;
      seen += y.length;
      if (o.progress !== false && (b + 1) % Math.max(1, Math.floor(nb / 10)) === 0) {
        log(`epoch ${epoch + 1}/${o.epochs} ${b + 1}/${nb} loss ${(lossSum / seen).toFixed(4)} acc ${(correct / seen).toFixed(4)} ${(seen / ((performance.now() - t0) / 1000)).toFixed(0)} img/s`);
      }
    }
    const secs = (performance.now() - t0) / 1000;
    const ev = o.evalSet ? await gm.evaluate(o.evalSet.x, o.evalSet.y, o.loader.batchSize) : null;
    const rec: EpochRecord = {
      epoch: epoch + 1, loss: lossSum / Math.max(1, seen), trainAccuracy: correct / Math.max(1, seen), evalAccuracy: ev?.accuracy ?? null, evalLoss: ev?.loss ?? null,
      seconds: secs, imagesPerSecond: seen / secs, lr,
    };
    history.push(rec);
    if (o.progress !== false) log(`epoch ${epoch + 1}/${o.epochs}: loss ${rec.loss.toFixed(4)} train acc ${rec.trainAccuracy.toFixed(4)}${ev ? ` test acc ${ev.accuracy.toFixed(4)}` : ''} (${secs.toFixed(1)} s, ${rec.imagesPerSecond.toFixed(0)} img/s, WebGPU)`);
    if (o.checkpoint) {
      await gm.download();
      saveCheckpoint(o.checkpoint, { arch: o.arch, model, kind: o.checkpointKind, train: { epoch: epoch + 1, batch: 0, step, extra: { history } }, rngs: modelRngs(model).map((r) => r.getState()) });
    }
  }
  await gm.download();
  return { history, steps: step, state: { epoch: history.length, batch: 0, step }, average: null };
}

/** train on the GPU; where no WebGPU adapter can be had, say why and train on the CPU instead */
export async function onGpuOr(gpu: () => Promise<{ history: EpochRecord[] }>, cpu: () => EpochRecord[], log?: (line: string) => void): Promise<EpochRecord[]> {
  try {
    return (await gpu()).history;
  } catch (e) {
    if (!(e instanceof WebGpuUnavailable)) throw e;
    (log ?? ((l: string) => process.stderr.write(l + '\n')))(`WebGPU is unavailable (${e.message}); training on the CPU instead`);
    return cpu();
  }
}
