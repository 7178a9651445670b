// An exponential moving average of a model's weights (Polyak averaging as Tarvainen and Valpola, and
// later most image-classification recipes, use it): after every optimizer step each averaged value
// moves towards the live one, s = d·s + (1 − d)·w, with d = min(decay, (1 + n) / (10 + n)) after n
// updates, so that the first steps do not drag the average of a fresh start. Batch norms' running
// statistics are averaged the same way. Kept beside the live weights in a checkpoint (`ema.*`
// tensors), so a resumed run continues the same average.
import type { Module } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';

export interface AverageState {
  /** the decay asked for, in (0, 1) */
  decay: number;
  /** updates made so far */
  updates: number;
  /** the optimizer step the average started at (0: from the start of training) */
  since: number;
}

export class WeightAverage {
  /** the averaged copy of every tensor of the model's state, by name */
  readonly values = new Map<string, Float32Array>();
  updates: number;
  readonly since: number;
  /** each averaged copy beside the model's tensor it follows (the model's tensors stay the same
   * objects: loading weights copies into them) */
  private readonly pairs: [Float32Array, Tensor][] = [];

  /** starts the average at the model's present weights, or continues a saved one (`from`) */
  constructor(model: Module, readonly decay: number, since: number, from?: { state: AverageState; values: Map<string, Tensor> }) {
    if (!(decay > 0 && decay < 1)) throw new Error(`weight averaging: the decay must lie between 0 and 1 (exclusive), got ${decay}`);
    for (const [k, t] of model.stateDict()) {
      const saved = from?.values.get(k);
      if (from && (!saved || saved.size !== t.size)) throw new Error(`weight averaging: the saved average ${saved ? `has ${saved.size} values for '${k}', the model ${t.size}` : `lacks '${k}'`}`);
      const copy = Float32Array.from(saved ? saved.data : t.data);
      this.values.set(k, copy);
      this.pairs.push([copy, t]);
    }
    this.updates = from?.state.updates ?? 0;
    this.since = from?.state.since ?? since;
  }

  /** the decay the next update uses */
  get current(): number {
    return Math.min(this.decay, (1 + this.updates) / (10 + this.updates));
  }

  /** one step of the average towards the model's present weights and statistics */
  update(): void {
    const d = this.current, e = 1 - d;
    for (const [s, t] of this.pairs) {
      const w = t.data;
      for (let i = 0; i < s.length; i++) s[i] = d * s[i] + e * w[i];
    }
    this.updates++;
  }

  get state(): AverageState {
    return { decay: this.decay, updates: this.updates, since: this.since };
  }

  /** runs `fn` with the averaged weights in the model, then puts the live ones back (also on a throw) */
  applied<T>(fn: () => T): T {
    const live = this.pairs.map(([s, t]) => {
      const kept = Float32Array.from(t.data);
      t.data.set(s);
      return kept;
    });
    try {
      return fn();
    } finally {
      this.pairs.forEach(([, t], i) => t.data.set(live[i]));
    }
  }
}
