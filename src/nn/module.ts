// Modules: named parameters and buffers, children, train/eval modes, state dictionaries. A model is a
// tree of modules; its state is a flat map from dotted names ("features.0.weight") to tensors.
import { shapeStr, Tensor } from '../tensor/tensor.js';

export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** a short description of the layer (for summaries and reports) */
  describe(): string {
    return this.constructor.name;
  }

  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this._params.set(name, t);
    return t;
  }

  protected buffer(name: string, t: Tensor): Tensor {
    this._buffers.set(name, t);
    return t;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this._children.set(name, m);
    return m;
  }

  /** replace a parameter or buffer tensor by name (merging swaps in smaller tensors) */
  setTensor(name: string, t: Tensor): void {
    if (this._params.has(name)) {
      t.requiresGrad = true;
      this._params.set(name, t);
    } else if (this._buffers.has(name)) this._buffers.set(name, t);
    else throw new Error(`${this.describe()}: no parameter or buffer named '${name}'`);
    (this as unknown as Record<string, Tensor>)[name] = t;
  }

  children(): [string, Module][] {
    return [...this._children];
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this._params) out.push([prefix + n, t]);
    for (const [n, c] of this._children) out.push(...c.namedParameters(prefix + n + '.'));
    return out;
  }

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this._buffers) out.push([prefix + n, t]);
    for (const [n, c] of this._children) out.push(...c.namedBuffers(prefix + n + '.'));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** parameters + buffers, by dotted name */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** copy tensors into this model's state; names and shapes must match exactly (strict) */
  loadStateDict(state: Map<string, Tensor>, what = 'state'): void {
    const mine = this.stateDict();
    const missing = [...mine.keys()].filter((k) => !state.has(k));
    const extra = [...state.keys()].filter((k) => !mine.has(k));
    if (missing.length || extra.length) {
      throw new Error(`${what} does not fit this model: ${missing.length ? `missing ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `unexpected ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}` : ''}`);
    }
    for (const [k, t] of mine) {
      const src = state.get(k)!;
      if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i])) {
        throw new Error(`${what} does not fit this model: ${k} has shape ${shapeStr(src.shape)}, the model has ${shapeStr(t.shape)}`);
      }
    }
    for (const [k, t] of mine) t.data.set(state.get(k)!.data);
  }

  train(on = true): this {
    this.training = on;
    for (const [, c] of this._children) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** number of parameters (buffers not counted) */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }
}
