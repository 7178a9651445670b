// The reverse-mode autograd engine: whether ops record their backward, and the pass that walks a
// recorded graph from a tensor back to its leaves, handing the gradients it consumes to the pool.

import * as ops from './ops.js';
import { allocate, collectAllocations, poolReuses, recycleArray } from './pool.js';
import { shapeStr, Tensor } from './tensor.js';

export interface GradNode {
  op: string;
  inputs: Tensor[];
  /** upstream gradient (shape of the output) -> one gradient per input (null where none) */
  backward: (g: Tensor) => (Tensor | null)[];
}

let gradEnabled = true;

/** Whether ops record their backward now. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run fn with autograd off: nothing is recorded, no graph is kept alive. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export interface BackwardOptions {
  /** keep the graph for another backward pass (nothing is reused then) */
  retainGraph?: boolean;
  /**
   * Activations the pass may reuse: arrays the forward allocated (trackAllocations) that nothing
   * outside the graph reads after backward, except the `keep` tensors' (the model's output, say).
   * Each goes to the gradient pool once every node that reads it is done.
   */
  spent?: { buffers: Set<ArrayBufferLike>; keep?: Tensor[] };
}

/**
 * Reverse-mode differentiation from root (Tensor.backward). Without `grad`, root must hold one element
 * (a loss). Gradients of leaves that require grad accumulate into their `.grad`.
 */
export function runBackward(root: Tensor, grad: Tensor | undefined, opts: BackwardOptions): void {
  if (!root.requiresGrad) throw new Error(`backward: tensor of shape ${shapeStr(root.shape)} does not require grad (no input of its graph did)`);
  let g: Tensor;
  if (grad === undefined) {
    if (root.size !== 1) {
      throw new Error(`backward: called on a tensor of shape ${shapeStr(root.shape)}; reduce it to one element first or pass a gradient of the same shape`);
    }
    g = new Tensor(allocate(root.dtype, 1).fill(1), root.shape);
  } else {
    if (grad.shape.length !== root.shape.length || grad.shape.some((d, i) => d !== root.shape[i])) {
      throw new Error(`backward: gradient of shape ${shapeStr(grad.shape)} does not match tensor of shape ${shapeStr(root.shape)}`);
    }
    g = grad.dtype === root.dtype ? grad : noGrad(() => grad.to(root.dtype));
  }
  // topological order by an iterative depth-first walk (graphs can be deep)
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.requiresGrad && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, g);
  // the storage that a leaf's .grad may not take over: the caller's gradient, and every buffer a
  // leaf already took (a backward can pass one gradient to several inputs: add, reshape)
  const taken = new Set<ArrayBufferLike>();
  if (grad !== undefined) taken.add(g.data.buffer);
  // for the pool: how many pending gradients hold each buffer
  const reuse = poolReuses() && !opts.retainGraph;
  const held = new Map<ArrayBufferLike, number>();
  const hold = (x: Tensor, d: number): void => {
    if (reuse) held.set(x.data.buffer, (held.get(x.data.buffer) ?? 0) + d);
  };
  const mine = new Set<ArrayBufferLike>();
  const spent = reuse && opts.spent ? opts.spent : null;
  if (spent) for (const k of spent.keep ?? []) spent.buffers.delete(k.data.buffer);
  // a gradient no one holds any more goes back to the pool where this pass made it whole
  const drop = (x: Tensor): void => {
    const b = x.data.buffer;
    if (!reuse || !mine.has(b) || taken.has(b) || (held.get(b) ?? 0) > 0) return;
    if (x.data.byteOffset !== 0 || x.data.byteLength !== b.byteLength) return;
    mine.delete(b);
    recycleArray(x.data);
  };
  hold(g, 1);
  const outer = collectAllocations(reuse ? mine : null);
  try {
    noGrad(() => {
      for (let k = order.length - 1; k >= 0; k--) {
        const t = order[k];
        const gt = grads.get(t);
        if (!gt) continue;
        grads.delete(t);
        hold(gt, -1);
        if (t.node) {
          const node = t.node;
          const gs = node.backward(gt);
          // what this node's gradients replace, dropped once every one of them is held (a
          // backward may return one buffer for several inputs, or gt itself)
          const dead: Tensor[] = [gt];
          for (let j = 0; j < node.inputs.length; j++) {
            const inp = node.inputs[j];
            const gi = gs[j];
            if (!gi || !inp.requiresGrad) continue;
            if (gi.shape.length !== inp.shape.length || gi.shape.some((d, q) => d !== inp.shape[q])) {
              throw new Error(`backward of ${node.op}: gradient shape ${shapeStr(gi.shape)} does not match input shape ${shapeStr(inp.shape)}`);
            }
            const prev = grads.get(inp);
            if (prev) {
              const sum = ops.add(prev, gi);
              hold(prev, -1);
              grads.set(inp, sum);
              hold(sum, 1);
              dead.push(prev, gi);
            } else {
              grads.set(inp, gi);
              hold(gi, 1);
            }
          }
          if (!opts.retainGraph) t.node = null;
          for (const x of dead) drop(x);
          // this node's output, where the forward made it for this node (no input shares it):
          // every node that read it came before this one
          if (spent && spent.buffers.has(t.data.buffer) && !node.inputs.some((i) => i.data.buffer === t.data.buffer)) {
            spent.buffers.delete(t.data.buffer);
            mine.add(t.data.buffer);
            drop(t);
          }
        } else {
          // a leaf: accumulate into .grad. The first gradient is taken as it is where its storage
          // is this pass's own and no other leaf's, else copied, so that .grad never aliases
          // another tensor (the copy of VGG-16's 15M gradients took ~30 ms a training step)
          if (t.grad) {
            const d = t.grad.data;
            const s = gt.data;
            for (let q = 0; q < d.length; q++) d[q] += s[q];
            drop(gt);
          } else {
            t.grad = taken.has(gt.data.buffer) ? gt.clone() : new Tensor(gt.data, gt.shape, false);
            taken.add(t.grad.data.buffer);
          }
        }
      }
    });
  } finally {
    collectAllocations(outer);
  }
}
