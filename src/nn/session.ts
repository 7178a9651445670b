// An inference session: a model in eval mode run without autograd, its convolutions' weights laid out
// once, when the session is made, for the backend's reads at few pixels (native: batch 1 on maps of up
// to 8x8, where a forward otherwise streams every weight from where it lies for each image). The
// counterpart of onnxruntime's InferenceSession, which lays its weights out when it is created.
import { noGrad, type Tensor } from '../tensor/tensor.js';
import { packConvWeights } from '../tensor/ops.js';
import type { PackedWeights } from '../tensor/ops.js';
import { Conv2d, Sequential } from './layers.js';

export class InferenceSession {
  private readonly packed = new Map<Conv2d, PackedWeights>();
  /**
   * The model's convolution weights are copied when the session is made (into the backend's layout;
   * about their size again): a session run after those weights changed in place computes with the
   * copy. Make a new session after training or editing the model (a layer replaced, or a weight array
   * swapped by loadStateDict, is noticed: that layer then reads its weights as they lie).
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
  /** the model's output for x, as model.forward(x) in eval mode under noGrad */
  run(x: Tensor): Tensor {
    if (this.model.training) throw new Error('InferenceSession.run: the model is in training mode; call model.eval() first');
    return noGrad(() => this.model.forwardWith(x, this.packed));
  }
}
