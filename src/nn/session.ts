// An inference session: a model in eval mode run without autograd, its convolutions' weights laid out
// once, when the session is made, for the backend's reads at few pixels (native: at most 16 output
// pixels in all, VGG-16's 4x4 and 2x2 maps at batch 1, where a forward otherwise reads every weight
// from where it lies, a broadcast at a time, for one image); and, at the first run that takes
// Winograd's algorithm for a layer, that layer's weights transformed for it (a forward otherwise
// transforms them each call: VGG-16 at batch 128 0.90x the time, its merged half-width form 0.95x);
// and at the first run each batch norm folded with its convolution's bias into the convolution's
// scale and shift, once. The counterpart of onnxruntime's InferenceSession, which lays its weights
// out when it is created.
import { noGrad, type Tensor } from '../tensor/tensor.js';
import { packConvWeights } from '../tensor/ops.js';
import type { PackedWeights } from '../tensor/ops.js';
import { Conv2d, Sequential } from './layers.js';

export class InferenceSession {
  private readonly packed = new Map<Conv2d, PackedWeights>();
  /**
   * The model's convolution weights are copied when the session is made (into the backend's layout;
   * about their size again), and for Winograd at its first run (16/9 or 36/9 of their size for each
   * tile size a layer takes): a session run after those weights changed in place computes with the
   * copy. Make a new session after training the model or loading weights into it (loadStateDict
   * writes in place). A layer replaced, or a weight tensor swapped for another, is noticed: that layer
   * then reads its weights as they lie. The same holds for the batch norms folded at the first run:
   * statistics changed in place are not seen, a tensor swapped for another is.
   */
  constructor(readonly model: Sequential) {
    if (!(model instanceof Sequential)) throw new Error('InferenceSession: the model must be a Sequential');
    for (const m of model.layers) {
      if (!(m instanceof Conv2d)) continue;
      const p = packConvWeights(m.weight);
      if (p) this.packed.set(m, p);
    }
  }
  /** the number of convolutions whose weights the session laid out (0 on the TypeScript backend) */
  get packedLayers(): number {
    return this.packed.size;
  }
  /** the number of convolutions for which the session holds weights transformed for Winograd's
   *  algorithm: made at the first run whose geometry takes it (native; 0 before any run) */
  get winogradLayers(): number {
    let n = 0;
    for (const p of this.packed.values()) if (p.winograd?.size) n++;
    return n;
  }
  /** the model's output for x, as model.forward(x) in eval mode under noGrad */
  run(x: Tensor): Tensor {
    if (this.model.training) throw new Error('InferenceSession.run: the model is in training mode; call model.eval() first');
    return noGrad(() => this.model.forwardWith(x, this.packed));
  }
}
