// A Bernoulli–Bernoulli restricted Boltzmann machine trained by contrastive divergence (CD-k), with
// momentum and weight decay: the building block of the DBN's greedy layer-wise pretraining. The
// weight is (hidden, visible), the layout of the Linear layer it initialises.
import { linear, sigmoid } from '../tensor/ops.js';
import { Rng } from '../tensor/rng.js';
import { normal, Tensor, zeros } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';

export interface RbmOptions {
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  k?: number;
  rng: Rng;
}

export class RBM {
  W: Tensor; // (nh, nv)
  bv: Tensor; // (nv)
  bh: Tensor; // (nh)
  readonly lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly k: number;
  readonly rng: Rng;
  private vW: Float32Array;
  private vbv: Float32Array;
  private vbh: Float32Array;

  constructor(readonly nv: number, readonly nh: number, opts: RbmOptions) {
    if (!Number.isInteger(nv) || nv < 1 || !Number.isInteger(nh) || nh < 1) throw new Error(`RBM: sizes must be positive integers, got ${nv}x${nh}`);
    this.rng = opts.rng;
    this.lr = opts.lr ?? 0.1;
    this.momentum = opts.momentum ?? 0.5;
    this.weightDecay = opts.weightDecay ?? 2e-4;
    this.k = opts.k ?? 1;
    if (!Number.isInteger(this.k) || this.k < 1) throw new Error(`RBM: k must be a positive integer, got ${this.k}`);
    this.W = normal([nh, nv], 0, 0.01, this.rng);
    this.bv = zeros([nv]);
    this.bh = zeros([nh]);
    this.vW = new Float32Array(nh * nv);
    this.vbv = new Float32Array(nv);
    this.vbh = new Float32Array(nh);
  }

  /** p(h=1 | v): (N,nv) -> (N,nh) */
  hidden(v: Tensor): Tensor {
    return noGrad(() => sigmoid(linear(v, this.W, this.bh)));
  }

  /** p(v=1 | h): (N,nh) -> (N,nv) */
  visible(h: Tensor): Tensor {
    return noGrad(() => {
      // v = h·W + bv: linear with the transposed weight, through a copy of W transposed
      const WT = transposeCopy(this.W);
      return sigmoid(linear(h, WT, this.bv));
    });
  }

  private sample(p: Tensor): Tensor {
    const out = new Float32Array(p.size);
    for (let i = 0; i < out.length; i++) out[i] = this.rng.random() < p.data[i] ? 1 : 0;
    return new Tensor(out, p.shape);
  }

  /** one CD-k update on a batch v0 (N,nv) with values in [0,1]; returns the reconstruction error (mean squared) */
  step(v0: Tensor, momentum = this.momentum): number {
    const N = v0.shape[0];
    const ph0 = this.hidden(v0);
    let h = this.sample(ph0);
    let pv: Tensor = v0;
    let phk: Tensor = ph0;
    for (let s = 0; s < this.k; s++) {
      pv = this.visible(h);
      phk = this.hidden(pv);
      if (s < this.k - 1) h = this.sample(phk);
    }
    // gradients: <h v>_data - <h v>_model, with probabilities for the last hidden (less noise)
    const { nv, nh } = this;
    const pos = gramHV(ph0, v0, nh, nv), neg = gramHV(phk, pv, nh, nv);
    const lr = this.lr / N, W = this.W.data;
    for (let i = 0; i < nh * nv; i++) {
      this.vW[i] = momentum * this.vW[i] + lr * (pos[i] - neg[i]) - this.lr * this.weightDecay * W[i];
      W[i] += this.vW[i];
    }
    for (let j = 0; j < nv; j++) {
      let d = 0;
      for (let n = 0; n < N; n++) d += v0.data[n * nv + j] - pv.data[n * nv + j];
      this.vbv[j] = momentum * this.vbv[j] + lr * d;
      this.bv.data[j] += this.vbv[j];
    }
    for (let i = 0; i < nh; i++) {
      let d = 0;
      for (let n = 0; n < N; n++) d += ph0.data[n * nh + i] - phk.data[n * nh + i];
      this.vbh[i] = momentum * this.vbh[i] + lr * d;
      this.bh.data[i] += this.vbh[i];
    }
    let err = 0;
    for (let i = 0; i < v0.size; i++) err += (v0.data[i] - pv.data[i]) ** 2;
    return err / v0.size;
  }
}

function transposeCopy(W: Tensor): Tensor {
  const [r, c] = W.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = W.data[i * c + j];
  return new Tensor(out, [c, r]);
}

/** hᵀ·v: (N,nh), (N,nv) -> (nh,nv), through the GEMM kernel */
function gramHV(h: Tensor, v: Tensor, nh: number, nv: number): Float32Array {
  return noGrad(() => {
    // linear(hᵀ, vᵀ) would need copies; use linear on transposed copies instead: (nh,N)·(nv,N)ᵀ
    const hT = transposeCopy(h), vT = transposeCopy(v);
    return linear(hT, vT).data as Float32Array;
  }).subarray(0, nh * nv);
}
