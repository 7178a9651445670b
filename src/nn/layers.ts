// Layers. Shapes in the one-line comments. Weights are stored one row (or filter) per output unit,
// the layout neuron merging works on. Every random initialisation takes an Rng.
import { avgPool2d, batchNorm, bf16Gradient, bf16Operand, conv2d, conv2dFused, dropout, linear, linearActivate, maxPool2d, productPrecision, relu, reshape, sigmoid, tanh } from '../tensor/ops.js';
import type { Pair } from '../tensor/ops.js';
import type { ConvWeightCache } from './session.js';
import { Rng } from '../tensor/rng.js';
import { full, normal, shapeStr, Tensor, uniform, zeros } from '../tensor/tensor.js';
import { isGradEnabled } from '../tensor/autograd.js';
import { allocate } from '../tensor/pool.js';
import type { DType, FloatArray } from '../backend/types.js';
import { Module } from './module.js';

export type Init = 'kaiming' | 'xavier' | 'zeros';

/** a (fanOut, ...) weight: Kaiming normal (std √(2/fanIn)) for ReLU nets, Xavier uniform for sigmoid ones */
export function initWeight(shape: number[], fanIn: number, fanOut: number, init: Init, rng: Rng): Tensor {
  if (!(rng instanceof Rng)) throw new Error('initWeight: rng must be an Rng (every random choice takes a seed)');
  if (init === 'zeros') return zeros(shape);
  if (init === 'xavier') {
    const a = Math.sqrt(6 / (fanIn + fanOut));
    return uniform(shape, -a, a, rng);
  }
  return normal(shape, 0, Math.sqrt(2 / fanIn), rng);
}

export interface LinearOptions {
  bias?: boolean;
  init?: Init;
  rng: Rng;
}

// x (N,in) -> (N,out)
export class Linear extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions) {
    super();
    for (const [n, v] of [['inFeatures', inFeatures], ['outFeatures', outFeatures]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`Linear: ${n} must be a positive integer, got ${v}`);
    }
    this.weight = this.param('weight', initWeight([outFeatures, inFeatures], inFeatures, outFeatures, opts.init ?? 'kaiming', opts.rng));
    this.bias = opts.bias === false ? null : this.param('bias', zeros([outFeatures]));
  }
  forward(x: Tensor): Tensor {
    // training in bfloat16 (withProductPrecision): both operands and the output gradient rounded
    if (productPrecision() === 'bf16' && isGradEnabled()) return bf16Gradient(linear(bf16Operand(x), bf16Operand(this.weight), this.bias));
    return linear(x, this.weight, this.bias);
  }
  /** act(forward(x)), the bias and the activation in one pass, into a buffer from `into` where given
   *  (inference only: see Sequential) */
  forwardActivate(x: Tensor, act: 'relu' | 'sigmoid' | 'tanh', into?: (n: number) => FloatArray): Tensor {
    return linearActivate(x, this.weight, this.bias, act, into);
  }
  override describe(): string {
    return `Linear(${this.weight.shape[1]}→${this.weight.shape[0]})`;
  }
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  bias?: boolean;
  init?: Init;
  rng: Rng;
}

// x (N,C,H,W) -> (N,OC,OH,OW)
export class Conv2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly stride: Pair;
  readonly padding: Pair;
  constructor(inChannels: number, outChannels: number, kernelSize: number, opts: Conv2dOptions) {
    super();
    for (const [n, v] of [['inChannels', inChannels], ['outChannels', outChannels], ['kernelSize', kernelSize]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`Conv2d: ${n} must be a positive integer, got ${v}`);
    }
    const fanIn = inChannels * kernelSize * kernelSize;
    this.weight = this.param('weight', initWeight([outChannels, inChannels, kernelSize, kernelSize], fanIn, outChannels * kernelSize * kernelSize, opts.init ?? 'kaiming', opts.rng));
    this.bias = opts.bias === false ? null : this.param('bias', zeros([outChannels]));
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
  }
  forward(x: Tensor): Tensor {
    if (productPrecision() === 'bf16' && isGradEnabled()) return bf16Gradient(conv2d(bf16Operand(x), bf16Operand(this.weight), this.bias, { stride: this.stride, padding: this.padding }));
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
  override describe(): string {
    const [o, c, k] = this.weight.shape;
    return `Conv2d(${c}→${o}, ${k}x${k})`;
  }
}

// x (N,C,H,W) -> (N,C,OH,OW)
export class MaxPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly stride?: Pair, readonly padding: Pair = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride ?? this.kernelSize, padding: this.padding });
  }
  override describe(): string {
    return `MaxPool2d(${JSON.stringify(this.kernelSize)})`;
  }
}

// x (N,C) or (N,C,H,W) -> same; running statistics are buffers
export class AvgPool2d extends Module {
  constructor(readonly kernelSize: Pair, readonly stride?: Pair) {
    super();
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, { stride: this.stride ?? this.kernelSize });
  }
  override describe(): string {
    return `AvgPool2d(${JSON.stringify(this.kernelSize)})`;
  }
}

export class BatchNorm extends Module {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  constructor(readonly numFeatures: number, readonly momentum = 0.1, readonly eps = 1e-5) {
    super();
    if (!Number.isInteger(numFeatures) || numFeatures < 1) throw new Error(`BatchNorm: numFeatures must be a positive integer, got ${numFeatures}`);
    this.weight = this.param('weight', full([numFeatures], 1));
    this.bias = this.param('bias', zeros([numFeatures]));
    this.runningMean = this.buffer('runningMean', zeros([numFeatures]));
    this.runningVar = this.buffer('runningVar', full([numFeatures], 1));
  }
  forward(x: Tensor): Tensor {
    return batchNorm(x, this.weight, this.bias, { runningMean: this.runningMean, runningVar: this.runningVar }, this.training, this.momentum, this.eps);
  }
  /** relu(forward(x)), fused */
  forwardRelu(x: Tensor): Tensor {
    return batchNorm(x, this.weight, this.bias, { runningMean: this.runningMean, runningVar: this.runningVar }, this.training, this.momentum, this.eps, true);
  }
  override describe(): string {
    return `BatchNorm(${this.weight.shape[0]})`;
  }
}

export class BatchNorm1d extends BatchNorm {}
export class BatchNorm2d extends BatchNorm {}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

// x -> x with elements zeroed at rate p in training (inverted dropout); the Rng is part of the state
export class Dropout extends Module {
  readonly rng: Rng;
  constructor(readonly p: number, rng: Rng) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
    this.rng = rng;
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.rng);
  }
  override describe(): string {
    return `Dropout(${this.p})`;
  }
}

// x (N, ...) -> (N, prod(...))
export class Flatten extends Module {
  forward(x: Tensor): Tensor {
    if (x.ndim < 1) throw new Error(`Flatten: input must have a batch axis, got shape ${shapeStr(x.shape)}`);
    return reshape(x, [x.shape[0], -1]);
  }
}

export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((l, i) => this.child(String(i), l));
  }
  forward(x: Tensor): Tensor {
    return this.forwardWith(x, null);
  }
  /**
   * forward, with the convolutions' weights packed ahead where `packed` has them (InferenceSession;
   * used only on the fused inference path)
   */
  forwardWith(x: Tensor, packed: ReadonlyMap<Conv2d, ConvWeightCache> | null, roundInput?: (x: Tensor) => Tensor): Tensor {
    // inference (eval mode, no gradient wanted): a convolution with the batch norm, ReLU and 2x2
    // max-pool after it runs as one fused op (see fusedConv); otherwise a batch norm followed by a
    // ReLU runs as one op (batchNorm with relu: one pass each way, no tensor between them).
    // NEURONMERGE_FUSE=0 turns both off
    // A fused convolution whose output only the next convolution reads writes it into one of two
    // buffers kept between calls (alternating, so that a convolution never writes what it reads):
    // a fresh typed array costs 2-6 us to allocate and collect, a fifth of a merged half-width
    // VGG-16's forward at batch 1; what leaves the model, or reaches another kind of layer, is fresh
    const fuse = process.env.NEURONMERGE_FUSE !== '0';
    const infer = fuse && !this.training && !isGradEnabled();
    let h = x;
    for (let i = 0; i < this.layers.length; ) {
      // (an inference session in bfloat16: what a convolution or a linear layer reads, rounded)
      if (roundInput && (this.layers[i] instanceof Conv2d || this.layers[i] instanceof Linear)) h = roundInput(h);
      const f = infer ? fusedConv(this.layers, i, h, (used, n, dtype) => (this.layers[i + used] instanceof Conv2d ? this.passBuffer(n, dtype) : allocate(dtype, n)), packed) : null;
      if (f) {
        h = f.out;
        i += f.used;
        continue;
      }
      const l = this.layers[i];
      // a linear layer and the activation after it: the bias added and the activation applied in one
      // pass over the product, in place (one array fewer to allocate and collect, one pass fewer;
      // the DBN's forward at batch 1: 3 of its 8 arrays), into a pass buffer where another linear
      // layer reads it next (a fresh array costs as much again; DBN at batch 1: 3 of its 4 outputs)
      const act = this.layers[i + 1];
      if (infer && l instanceof Linear && l.constructor === Linear && (act instanceof ReLU || act instanceof Sigmoid || act instanceof Tanh)) {
        const next = this.layers[i + 2];
        const into = next instanceof Linear && next.constructor === Linear ? (n: number) => this.passBuffer(n, h.dtype) : undefined;
        h = l.forwardActivate(h, act instanceof ReLU ? 'relu' : act instanceof Sigmoid ? 'sigmoid' : 'tanh', into);
        i += 2;
        continue;
      }
      if (fuse && l instanceof BatchNorm && this.layers[i + 1] instanceof ReLU) {
        h = l.forwardRelu(h);
        i += 2;
        continue;
      }
      h = this.layers[i++].forward(h);
    }
    return h;
  }
  private passBuffers: FloatArray[] = [];
  private passNext = 0;
  /** the next of the two buffers that carry an activation from one fused convolution to the next */
  private passBuffer(n: number, dtype: DType): FloatArray {
    const k = this.passNext;
    this.passNext = 1 - k;
    let b = this.passBuffers[k];
    if (!b || b.length < n || (dtype === 'float64') !== b instanceof Float64Array) b = this.passBuffers[k] = allocate(dtype, n);
    return b.length === n ? b : (b.subarray(0, n) as FloatArray);
  }
  /** put another module at position i (merging swaps in narrower layers) */
  replace(i: number, m: Module): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.layers.length) throw new Error(`Sequential.replace: no layer ${i} (the model has ${this.layers.length})`);
    m.train(this.training);
    this.layers[i] = m;
    this.child(String(i), m);
  }
}

// (scale and shift of the epilogue: computed into these each call, read by the kernel before it
// returns; grown, never shrunk)
const epilogueBuffers = new Map<DType, { scale: FloatArray; shift: FloatArray }>();

function epilogueBuffer(dtype: DType, n: number): { scale: FloatArray; shift: FloatArray } {
  let b = epilogueBuffers.get(dtype);
  if (!b || b.scale.length < n) epilogueBuffers.set(dtype, (b = { scale: allocate(dtype, n), shift: allocate(dtype, n) }));
  return b.scale.length === n ? b : { scale: b.scale.subarray(0, n) as FloatArray, shift: b.shift.subarray(0, n) as FloatArray };
}

/**
 * At layers[i]: a Conv2d followed, in this order, by any of an eval-mode BatchNorm2d, a ReLU and a
 * MaxPool2d(2) (stride 2, no padding) run as conv2dFused: the bias and the batch norm folded into one
 * per-channel scale and shift (scale = gamma / sqrt(var + eps), shift = beta + (bias - mean) * scale),
 * applied with the ReLU and the pool while each chunk's output is in cache. The same function of the
 * input as the layers one by one, up to float rounding. null where layers[i] does not start such a run.
 */
function fusedConv(layers: Module[], i: number, x: Tensor, output: (used: number, n: number, dtype: DType) => FloatArray, packed: ReadonlyMap<Conv2d, ConvWeightCache> | null): { out: Tensor; used: number } | null {
  const conv = layers[i];
  if (!(conv instanceof Conv2d) || x.ndim !== 4 || x.dtype !== conv.weight.dtype) return null;
  let j = i + 1;
  let bn: BatchNorm | null = null;
  if (layers[j] instanceof BatchNorm2d && !layers[j].training) bn = layers[j++] as BatchNorm;
  let relu = false;
  if (layers[j] instanceof ReLU) {
    relu = true;
    j++;
  }
  let pool: 1 | 2 = 1;
  const p = layers[j];
  if (p instanceof MaxPool2d && samePair(p.kernelSize, 2) && samePair(p.stride ?? p.kernelSize, 2) && samePair(p.padding, 0)) {
    pool = 2;
    j++;
  }
  if (j === i + 1 && !conv.bias) return null;  // a bare convolution: nothing to fuse
  const OC = conv.weight.shape[0];
  const b = conv.bias?.data;
  let scale: FloatArray | undefined;
  let shift: FloatArray | undefined = b;
  const pw = packed?.get(conv);
  if (bn) {
    if (bn.weight.size !== OC) return null;  // let the layers report the mismatch
    const g = bn.weight.data, be = bn.bias.data, mu = bn.runningMean.data, v = bn.runningVar.data;
    // an inference session folds once, at its first run (the fold's divisions and square roots cost
    // 16 us of a merged half-width VGG-16's forward at batch 1, 2% of it); again only where one of
    // the arrays was swapped for another, as its convolution weights
    const from = [g, be, mu, v, b];
    const f = pw?.folded;
    if (f && f.eps === bn.eps && f.from.every((a, k) => a === from[k])) ({ scale, shift } = f);
    else {
      const dst = pw ? { scale: allocate(x.dtype, OC), shift: allocate(x.dtype, OC) } : epilogueBuffer(x.dtype, OC);
      for (let c = 0; c < OC; c++) {
        const sc = g[c] / Math.sqrt(v[c] + bn.eps);
        dst.scale[c] = sc;
        dst.shift[c] = be[c] + ((b ? b[c] : 0) - mu[c]) * sc;
      }
      if (pw) pw.folded = { from, eps: bn.eps, ...dst };
      ({ scale, shift } = dst);
    }
  }
  const used = j - i;
  return { out: conv2dFused(x, conv.weight, { stride: conv.stride, padding: conv.padding }, { scale, shift, relu, pool, prepared: pw?.prepared }, (n) => output(used, n, x.dtype)), used };
}

function samePair(p: Pair | undefined, v: number): boolean {
  return Array.isArray(p) ? p[0] === v && p[1] === v : p === v;
}
