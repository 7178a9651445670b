// Optimizers (SGD with momentum, Nesterov and weight decay; Adam) and learning-rate schedules (step,
// cosine, one-cycle). Optimizer state is plain tensors by parameter index, so checkpoints can hold it.
import { kernel } from '../backend/registry.js';
import { shapeStr, Tensor } from '../tensor/tensor.js';
import { releaseArrays } from '../tensor/pool.js';
import type { FloatArray } from '../backend/types.js';

/** the momentum buffer where there is none (SGD without momentum) */
const NO_SLOT = new Float32Array(0);

export interface OptimizerState {
  step: number;
  /** per parameter, per slot ("momentum", "m", "v") */
  slots: { [slot: string]: Float32Array }[];
}

export abstract class Optimizer {
  lr: number;
  protected stepCount = 0;
  protected slots: Map<string, Float32Array>[];
  constructor(readonly params: Tensor[], lr: number) {
    if (!(lr > 0) || !Number.isFinite(lr)) throw new Error(`optimizer: learning rate must be a positive number, got ${lr}`);
    params.forEach((p, i) => {
      if (p.dtype !== 'float32') throw new Error(`optimizer: parameter ${i} ${shapeStr(p.shape)} is ${p.dtype}; optimizers update float32 parameters`);
    });
    this.lr = lr;
    this.slots = params.map(() => new Map());
  }

  protected slot(i: number, name: string): Float32Array {
    let s = this.slots[i].get(name);
    if (!s) {
      s = new Float32Array(this.params[i].size);
      this.slots[i].set(name, s);
    }
    return s;
  }

  abstract update(i: number, p: Float32Array, g: Float32Array): void;

  /** one update of every parameter that has a gradient */
  step(): void {
    this.stepCount++;
    this.params.forEach((p, i) => {
      if (p.grad) this.update(i, p.data as Float32Array, p.grad.data as Float32Array);
    });
  }

  /**
   * Drops every parameter's gradient. With reuse, their arrays go back to the pool the next backward
   * pass allocates from (releaseArrays): for a training loop that reads no gradient after step(),
   * and keeps none; a gradient tensor still held then changes under its holder.
   */
  zeroGrad(opts: { reuse?: boolean } = {}): void {
    const spent = opts.reuse ? new Set<FloatArray>() : null;
    for (const p of this.params) {
      if (spent && p.grad) spent.add(p.grad.data);
      p.grad = null;
    }
    if (spent) releaseArrays(spent);
  }

  get steps(): number {
    return this.stepCount;
  }

  getState(): OptimizerState {
    return { step: this.stepCount, slots: this.slots.map((m) => Object.fromEntries([...m].map(([k, v]) => [k, v.slice()]))) };
  }

  setState(st: OptimizerState): void {
    if (!st || !Array.isArray(st.slots) || st.slots.length !== this.params.length) {
      throw new Error(`optimizer state is for ${st?.slots?.length ?? 'no'} parameters, this optimizer has ${this.params.length}`);
    }
    st.slots.forEach((m, i) => {
      for (const [k, v] of Object.entries(m)) {
        if (v.length !== this.params[i].size) throw new Error(`optimizer state: slot ${k} of parameter ${i} has ${v.length} values, the parameter ${this.params[i].size}`);
      }
    });
    this.stepCount = st.step;
    this.slots = st.slots.map((m) => new Map(Object.entries(m).map(([k, v]) => [k, Float32Array.from(v)])));
  }
}

export interface SgdOptions {
  lr: number;
  momentum?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

/** SGD as PyTorch defines it: g += wd·p; v = μ·v + g; p -= lr·(nesterov ? g + μ·v : v) */
export class SGD extends Optimizer {
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  constructor(params: Tensor[], opts: SgdOptions) {
    super(params, opts.lr);
    this.momentum = opts.momentum ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    if (!(this.momentum >= 0 && this.momentum < 1)) throw new Error(`SGD: momentum must be in [0, 1), got ${this.momentum}`);
    if (!(this.weightDecay >= 0)) throw new Error(`SGD: weightDecay must be non-negative, got ${this.weightDecay}`);
    if (this.nesterov && this.momentum === 0) throw new Error('SGD: Nesterov needs a momentum above 0');
  }
  update(i: number, p: Float32Array, g: Float32Array): void {
    // the sgdUpdate kernel (native: split across the threads; ~10x the TypeScript loop on VGG-16's
    // 15M parameters); every backend gives the same bits
    const v = this.momentum === 0 ? NO_SLOT : this.slot(i, 'momentum');
    kernel('sgdUpdate', 'float32')(p, g, v, this.lr, this.momentum, this.weightDecay, this.nesterov);
  }
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** Adam (Kingma & Ba) with bias correction; weightDecay adds wd·p to the gradient (L2) */
export class Adam extends Optimizer {
  readonly b1: number;
  readonly b2: number;
  readonly eps: number;
  readonly weightDecay: number;
  constructor(params: Tensor[], opts: AdamOptions) {
    super(params, opts.lr);
    [this.b1, this.b2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0;
    if (!(this.b1 >= 0 && this.b1 < 1 && this.b2 >= 0 && this.b2 < 1)) throw new Error(`Adam: betas must be in [0, 1), got ${this.b1}, ${this.b2}`);
  }
  update(i: number, p: Float32Array, g: Float32Array): void {
    const m = this.slot(i, 'm'), v = this.slot(i, 'v');
    const t = this.stepCount;
    const c1 = 1 - Math.pow(this.b1, t), c2 = 1 - Math.pow(this.b2, t);
    const a = this.lr / c1;
    for (let j = 0; j < p.length; j++) {
      const gj = g[j] + this.weightDecay * p[j];
      m[j] = this.b1 * m[j] + (1 - this.b1) * gj;
      v[j] = this.b2 * v[j] + (1 - this.b2) * gj * gj;
      p[j] -= (a * m[j]) / (Math.sqrt(v[j] / c2) + this.eps);
    }
  }
}

/** a learning rate as a function of the step (0-based) */
export type Schedule = (step: number) => number;

export function constantLr(lr: number): Schedule {
  return () => lr;
}

/** lr·gamma^floor(step/stepSize) */
export function stepLr(lr: number, stepSize: number, gamma = 0.1): Schedule {
  if (!(stepSize >= 1)) throw new Error(`stepLr: stepSize must be at least 1, got ${stepSize}`);
  return (s) => lr * Math.pow(gamma, Math.floor(s / stepSize));
}

/** cosine from lr to minLr over totalSteps */
export function cosineLr(lr: number, totalSteps: number, minLr = 0): Schedule {
  if (!(totalSteps >= 1)) throw new Error(`cosineLr: totalSteps must be at least 1, got ${totalSteps}`);
  return (s) => minLr + 0.5 * (lr - minLr) * (1 + Math.cos((Math.PI * Math.min(s, totalSteps)) / totalSteps));
}

/** one-cycle (Smith): linear warm-up from maxLr/div to maxLr over pctStart, then cosine down to maxLr/finalDiv */
export function oneCycleLr(maxLr: number, totalSteps: number, pctStart = 0.3, div = 25, finalDiv = 1e4): Schedule {
  if (!(totalSteps >= 1)) throw new Error(`oneCycleLr: totalSteps must be at least 1, got ${totalSteps}`);
  const up = Math.max(1, Math.round(totalSteps * pctStart));
  const lo = maxLr / div, end = maxLr / finalDiv;
  return (s) => {
    if (s < up) return lo + ((maxLr - lo) * s) / up;
    const t = Math.min(1, (s - up) / Math.max(1, totalSteps - up));
    return end + 0.5 * (maxLr - end) * (1 + Math.cos(Math.PI * t));
  };
}
