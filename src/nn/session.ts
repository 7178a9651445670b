// An inference session: a model in eval mode run without autograd, its convolutions' weights laid out
// once, when the session is made, for the backend's reads at few pixels (native: at most 16 output
// pixels in all, VGG-16's 4x4 and 2x2 maps at batch 1, where a forward otherwise reads every weight
// from where it lies, a broadcast at a time, for one image); and, at the first run that takes
// Winograd's algorithm for a layer, that layer's weights transformed for it (a forward otherwise
// transforms them each call: VGG-16 at batch 128 0.90x the time, its merged half-width form 0.95x);
// and at the first run each batch norm folded with its convolution's bias into the convolution's
// scale and shift, once. The counterpart of onnxruntime's InferenceSession, which lays its weights
// out when it is created.
import { kernel } from '../backend/registry.js';
import type { ConvGeometry, FloatArray, PreparedConvWeights } from '../backend/types.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../tensor/autograd.js';
import { roundBf16 } from '../tensor/ops.js';
import { Conv2d, Linear, Sequential } from './layers.js';

/** the operands' precision of an inference session */
export type Precision = 'float32' | 'bf16';
export interface InferenceOptions {
  /** 'bf16': weights and activations rounded to bfloat16 where they enter a product (default float32) */
  precision?: Precision;
}

/**
 * One convolution's weights as a session laid them out: packed by the backend's packConvWeights when
 * the session is made, transformed for Winograd's algorithm at the first run that takes each tile
 * size (with the tile each input geometry took), and the batch norm after it folded with its bias
 * into a scale and shift at the first run; each with the arrays it came from, so that a weight or a
 * statistic swapped for another tensor is noticed.
 */
export class ConvWeightCache {
  /** the Winograd transform for each tile size, made once */
  private readonly winograd = new Map<number, { weights: FloatArray; tile: number; width: number }>();
  /** what a convolution of each input geometry reads (N, H, W and padding: the rest is the weight's) */
  private readonly preparedFor = new Map<string, PreparedConvWeights>();
  /** the fold of the batch norm after the convolution (and its bias), made at the first run */
  folded?: { from: (FloatArray | undefined)[]; eps: number; scale: FloatArray; shift: FloatArray };

  private constructor(readonly weight: Tensor, private readonly packed: FloatArray, private readonly width: number) {}

  /** the cache of w (OC, C, KH, KW) with its packed copy, or null where the backend reads weights
   *  only as they lie (TypeScript) */
  static of(w: Tensor): ConvWeightCache | null {
    if (w.ndim !== 4) throw new Error(`ConvWeightCache: the weight must be (OC, C, KH, KW), got [${w.shape.join(',')}]`);
    const p = kernel('packConvWeights', w.dtype)(w.data, w.shape[0], w.size / w.shape[0]);
    return p ? new ConvWeightCache(w, p.packed, p.width) : null;
  }

  /** convolutions for which a Winograd copy was made */
  get hasWinograd(): boolean {
    return this.winograd.size > 0;
  }

  /** the laid-out copies for a convolution of this geometry with weights w, or null where w is not the
   *  array this cache copied (a weight swapped for another tensor since: read as it lies). A bound
   *  function, handed to conv2dFused as it is; made once per input geometry */
  readonly prepared = (g: ConvGeometry, w: FloatArray): PreparedConvWeights | null => {
    if (w !== this.weight.data) return null;
    const key = `${g.N},${g.H},${g.W},${g.PH},${g.PW}`;
    let p = this.preparedFor.get(key);
    if (!p) {
      const u = this.winogradCopy(g);
      p = { packed: this.packed, width: this.width, ...(u ? { winograd: u.weights, tile: u.tile, winogradWidth: u.width } : {}) };
      this.preparedFor.set(key, p);
    }
    return p;
  };

  /** the Winograd transform for the tile this geometry takes (made the first time that tile is
   *  asked for), or null where the convolution does not take Winograd */
  private winogradCopy(g: ConvGeometry): { weights: FloatArray; tile: number; width: number } | null {
    if (g.KH !== 3 || g.KW !== 3 || g.SH !== 1 || g.SW !== 1) return null;
    const m = kernel('winogradTile', this.weight.dtype)(g);
    if (!m) return null;
    let u = this.winograd.get(m);
    if (!u) {
      const t = kernel('winogradWeights', this.weight.dtype)(this.weight.data, g.OC, g.C, m);
      if (!t) return null;
      u = t;
      this.winograd.set(m, u);
    }
    return u;
  }
}

export class InferenceSession {
  private readonly packed = new Map<Conv2d, ConvWeightCache>();
  /**
   * The model's convolution weights are copied when the session is made (into the backend's layout;
   * about their size again), and for Winograd at its first run (16/9 or 36/9 of their size for each
   * tile size a layer takes): a session run after those weights changed in place computes with the
   * copy. Make a new session after training the model or loading weights into it (loadStateDict
   * writes in place). A layer replaced, or a weight tensor swapped for another, is noticed: that layer
   * then reads its weights as they lie. The same holds for the batch norms folded at the first run:
   * statistics changed in place are not seen, a tensor swapped for another is.
   */
  constructor(readonly model: Sequential, opts: InferenceOptions = {}) {
    if (!(model instanceof Sequential)) throw new Error('InferenceSession: the model must be a Sequential');
    const precision = opts.precision ?? 'float32';
    if (precision !== 'float32' && precision !== 'bf16') throw new Error(`InferenceSession: precision must be 'float32' or 'bf16', got '${String(precision)}'`);
    this.precision = precision;
    for (const m of model.layers) {
      if (!(m instanceof Conv2d) && !(m instanceof Linear)) continue;
      // bfloat16: the weights rounded once, into the session's own copy (the model's stay float32)
      const w = precision === 'bf16' ? roundBf16(m.weight) : m.weight;
      if (precision === 'bf16') this.rounded.set(m.weight, w.data);
      if (!(m instanceof Conv2d)) continue;
      const p = ConvWeightCache.of(w);
      if (p) this.packed.set(m, p);
    }
  }
  /** the operands' precision: float32, or bfloat16 (weights and each convolution's and linear
   *  layer's input rounded to bfloat16, products accumulated, biases, batch norms and the rest in
   *  float32) */
  readonly precision: Precision;
  /** bfloat16: each weight's rounded copy */
  private readonly rounded = new Map<Tensor, FloatArray>();
  /** the number of convolutions whose weights the session laid out (0 on the TypeScript backend) */
  get packedLayers(): number {
    return this.packed.size;
  }
  /** the number of convolutions for which the session holds weights transformed for Winograd's
   *  algorithm: made at the first run whose geometry takes it (native; 0 before any run) */
  get winogradLayers(): number {
    let n = 0;
    for (const p of this.packed.values()) if (p.hasWinograd) n++;
    return n;
  }
  /** the model's output for x, as model.forward(x) in eval mode under noGrad */
  run(x: Tensor): Tensor {
    if (this.model.training) throw new Error('InferenceSession.run: the model is in training mode; call model.eval() first');
    if (this.precision === 'float32') return noGrad(() => this.model.forwardWith(x, this.packed));
    // the rounded weights in place of the model's for this call (nothing else runs meanwhile), put back
    // however it ends
    const swapped: [Tensor, FloatArray][] = [];
    try {
      for (const [t, r] of this.rounded) {
        swapped.push([t, t.data]);
        t.data = r;
      }
      return noGrad(() => this.model.forwardWith(x, this.packed, roundBf16));
    } finally {
      for (const [t, d] of swapped) t.data = d;
    }
  }
}
