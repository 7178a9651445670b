// The autograd engine itself: accumulation, no-grad scopes, detach, shared subgraphs, deep graphs,
// and that gradcheck does catch a wrong backward.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { add, gradcheck, isGradEnabled, matmul, mul, noGrad, relu, reshape, Rng, sum, tanh, tensor, Tensor } from '../src/index.js';
import { rand } from './helpers.js';

const A = suite('autograd');

A('gradients accumulate across backward calls until zeroGrad', () => {
  const x = tensor([1, 2, 3], undefined, { requiresGrad: true });
  sum(mul(x, x)).backward();
  assert.equal(Array.from(x.grad!.data), [2, 4, 6]);
  sum(mul(x, 3)).backward();
  assert.equal(Array.from(x.grad!.data), [5, 7, 9]);
  x.zeroGrad();
  assert.is(x.grad, null);
  sum(x).backward();
  assert.equal(Array.from(x.grad!.data), [1, 1, 1]);
});

A("a leaf's .grad never shares storage with the caller's gradient or another leaf's", () => {
  // add passes one gradient to both inputs, reshape passes it on as a view: without the copies, x, y
  // and w would share one buffer with g
  const x = tensor([1, 2, 3, 4], [4], { requiresGrad: true });
  const y = tensor([5, 6, 7, 8], [4], { requiresGrad: true });
  const w = tensor([1, 1, 1, 1], [2, 2], { requiresGrad: true });
  const z = add(add(x, y), reshape(w, [4]));
  const g = tensor([1, 2, 3, 4], [4]);
  z.backward(g);
  const bufs = [g.data.buffer, x.grad!.data.buffer, y.grad!.data.buffer, w.grad!.data.buffer];
  assert.is(new Set(bufs).size, 4, 'four distinct buffers');
  x.grad!.data[0] = 100;
  assert.equal(Array.from(y.grad!.data), [1, 2, 3, 4]);
  assert.equal(Array.from(w.grad!.data), [1, 2, 3, 4]);
  assert.equal(Array.from(g.data), [1, 2, 3, 4]);
  // a second pass accumulates into each leaf's own buffer
  x.zeroGrad();
  const z2 = add(x, y);
  z2.backward(g);
  assert.equal(Array.from(x.grad!.data), [1, 2, 3, 4]);
  assert.equal(Array.from(y.grad!.data), [2, 4, 6, 8]);
  assert.equal(Array.from(g.data), [1, 2, 3, 4]);
  // a leaf as the root: its gradient of ones is its own
  const s = tensor([3], [], { requiresGrad: true });
  s.backward();
  assert.equal(Array.from(s.grad!.data), [1]);
});

A('a tensor used twice receives the sum of both paths', () => {
  const x = tensor([2], undefined, { requiresGrad: true });
  const y = mul(x, x); // x^2
  const z = add(mul(y, x), y); // x^3 + x^2
  z.backward();
  assert.is(x.grad!.data[0], 3 * 4 + 2 * 2);
});

A('noGrad records nothing and keeps nothing alive; the flag is restored after a throw', () => {
  const x = tensor([1, 2], undefined, { requiresGrad: true });
  const y = noGrad(() => mul(x, 2));
  assert.is(y.requiresGrad, false);
  assert.is(y.node, null);
  assert.throws(() => noGrad(() => { throw new Error('boom'); }), /boom/);
  assert.is(isGradEnabled(), true);
  const z = mul(x, 2);
  assert.is(z.requiresGrad, true);
  assert.ok(z.node !== null);
});

A('detach cuts the graph and shares storage', () => {
  const x = tensor([1, 2], undefined, { requiresGrad: true });
  const d = mul(x, 2).detach();
  assert.is(d.requiresGrad, false);
  const y = sum(mul(add(d, x), 1));
  y.backward();
  assert.equal(Array.from(x.grad!.data), [1, 1]);
});

A('the graph is freed after backward unless retained', () => {
  const x = tensor([1, 2], undefined, { requiresGrad: true });
  const y = sum(mul(x, x));
  y.backward(undefined, { retainGraph: true });
  y.backward();
  assert.equal(Array.from(x.grad!.data), [4, 8]);
  assert.is(y.node, null);
});

A('backward with an explicit gradient for a non-scalar output', () => {
  const x = tensor([[1, 2], [3, 4]], undefined, { requiresGrad: true });
  const y = mul(x, 2);
  y.backward(tensor([[1, 0], [0, 1]]));
  assert.equal(x.grad!.toArray(), [[2, 0], [0, 2]]);
});

A('a deep chain (5000 ops) does not overflow the stack', () => {
  const x = tensor([0.5], undefined, { requiresGrad: true, dtype: 'float64' });
  let y: Tensor = x;
  for (let i = 0; i < 5000; i++) y = mul(y, 1.0001);
  y.backward();
  assert.ok(Math.abs(x.grad!.data[0] - Math.pow(1.0001, 5000)) < 1e-9);
});

A('gradcheck catches a wrong backward', () => {
  // relu composed with a correct op, then an op whose recorded backward is deliberately wrong
  const wrong = (x: Tensor): Tensor => {
    const y = relu(x);
    const t = new Tensor(y.data, y.shape);
    t.requiresGrad = true;
    t.node = { op: 'wrong', inputs: [x], backward: (g) => [mul(g, 2)] };
    return t;
  };
  const x = rand(new Rng(3), [4], { lo: 0.5, hi: 1 });
  assert.is(gradcheck(wrong, [x]).ok, false);
  assert.is(gradcheck(relu, [x]).ok, true);
});

A('matmul then tanh then sum: float32 gradient agrees with float64', () => {
  const rng = new Rng(5);
  const a64 = rand(rng, [3, 4]), b64 = rand(rng, [4, 2]);
  const a32 = a64.to('float32').detach().setRequiresGrad(), b32 = b64.to('float32').detach().setRequiresGrad();
  sum(tanh(matmul(a64, b64))).backward();
  sum(tanh(matmul(a32, b32))).backward();
  for (let i = 0; i < a64.size; i++) assert.ok(Math.abs(a64.grad!.data[i] - a32.grad!.data[i]) < 1e-5);
  assert.is(a32.grad!.dtype, 'float32');
});

A.run();
