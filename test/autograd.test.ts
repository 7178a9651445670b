// The autograd engine itself: accumulation, no-grad scopes, detach, shared subgraphs, deep graphs,
// and that gradcheck does catch a wrong backward.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { add, batchNorm, buildModel, conv2d, crossEntropy, gradcheck, gradientPool, isGradEnabled, matmul, maxPool2d, mul, nativeAddon, noGrad, releaseArrays, relu, reshape, Rng, setBackend, setGradientPool, SGD, sum, tanh, tensor, Tensor, trackAllocations, vgg16Arch } from '../src/internal.js';
import { spawnSync } from 'node:child_process';
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

// ---- the gradient pool: buffers a backward pass made and consumed, handed out again ----

const BIG = 6000; // elements: over the pool's 4096-element floor

function bigLeaf(rng: Rng, n = BIG): Tensor {
  return tensor(Float32Array.from({ length: n }, () => rng.uniform(-1, 1)), [n], { requiresGrad: true });
}

/** run f with the pool on (default size) or off; the pool is left as it was */
function withPool<T>(on: boolean, f: () => T): T {
  const cap = gradientPool().capBytes;
  setGradientPool(on ? 256 * 2 ** 20 : 0);
  try {
    return f();
  } finally {
    setGradientPool(cap);
  }
}

A('gradient pool: a pass returns its spent gradients, and later ops reuse them zeroed', () => {
  withPool(true, () => {
    setGradientPool(0);
    setGradientPool(256 * 2 ** 20);
    const rng = new Rng(3);
    const x = bigLeaf(rng);
    sum(tanh(mul(relu(mul(x, 2)), 3))).backward();
    const after = gradientPool();
    // each node's spent gradient is taken by the next node's: the last one stays
    assert.ok(after.arrays >= 1, `the pool holds a spent gradient (${after.arrays} arrays)`);
    assert.is(after.bytes, after.arrays * BIG * 4);
    // the next op of that length takes one, zeroed and written by the op
    const y = mul(x.detach(), 1);
    assert.is(gradientPool().arrays, after.arrays - 1);
    assert.equal(Array.from(y.data), Array.from(x.data));
    // off: the pool is emptied and stays empty
    setGradientPool(0);
    assert.equal(gradientPool(), { bytes: 0, arrays: 0, capBytes: 0 });
    sum(tanh(mul(x, 2))).backward();
    assert.is(gradientPool().arrays, 0);
  });
});

A('gradient pool: the same gradients, bit for bit, where one gradient reaches several inputs', () => {
  // s1 = p + q, s2 = s1 + p: the backward of s1 gets s2's gradient G, adds it to p's pending G and
  // passes G on to q as well; G must not be reused while q's gradient is pending
  const run = (on: boolean): number[][] => withPool(on, () => {
    const rng = new Rng(5);
    const x = bigLeaf(rng), w = bigLeaf(rng);
    const grads: number[][] = [];
    for (let step = 0; step < 3; step++) {
      const p = mul(x, w), q = mul(tanh(x), 3);
      const s2 = add(add(p, q), p);
      sum(mul(reshape(s2, [2, BIG / 2]), reshape(tanh(w), [2, BIG / 2]))).backward();
      grads.push(Array.from(x.grad!.data), Array.from(w.grad!.data));
      // the next step's ops draw on what this one returned
    }
    return grads;
  });
  const off = run(false), on = run(true);
  for (let i = 0; i < off.length; i++) assert.ok(off[i].every((v, j) => Object.is(v, on[i][j])), `gradient ${i} differs with the pool`);
});

A("gradient pool: neither the caller's gradient nor a leaf's .grad is ever handed out", () => {
  withPool(true, () => {
    const rng = new Rng(7);
    const x = bigLeaf(rng), y = bigLeaf(rng);
    const g = tensor(Float32Array.from({ length: BIG }, () => rng.uniform(-1, 1)), [BIG]);
    const gCopy = Array.from(g.data);
    add(mul(x, 2), tanh(y)).backward(g);
    const xg = Array.from(x.grad!.data), yg = Array.from(y.grad!.data);
    // drain the pool and overwrite every buffer it handed out
    for (let i = 0; i < 8; i++) mul(x.detach(), 0).data.fill(123);
    assert.equal(Array.from(g.data), gCopy, "the caller's gradient");
    assert.equal(Array.from(x.grad!.data), xg, "x's .grad");
    assert.equal(Array.from(y.grad!.data), yg, "y's .grad");
    assert.ok(![g.data.buffer, x.grad!.data.buffer, y.grad!.data.buffer].some((b) => b === mul(x.detach(), 1).data.buffer));
    // a gradient made in the pass that a leaf takes while the same buffer flows on to another node
    // (add gives both inputs its gradient): spent by that node, it still is the leaf's .grad
    const u = bigLeaf(rng), v = bigLeaf(rng);
    const c = tensor(Float32Array.from({ length: BIG }, () => rng.uniform(-1, 1)), [BIG]);
    sum(mul(add(tanh(v), u), c)).backward();
    const ug = Array.from(u.grad!.data);
    assert.equal(ug, Array.from(c.data), "u's .grad is c");
    for (let i = 0; i < 8; i++) mul(u.detach(), 0).data.fill(123);
    assert.equal(Array.from(u.grad!.data), ug, "u's .grad after the pool was drained");
  });
});

A('gradient pool: a retained graph returns nothing to the pool; the cap holds', () => {
  withPool(true, () => {
    setGradientPool(0);
    setGradientPool(256 * 2 ** 20);
    const rng = new Rng(9);
    const x = bigLeaf(rng);
    const z = sum(tanh(mul(relu(mul(x, 2)), 3)));
    z.backward(undefined, { retainGraph: true });
    assert.is(gradientPool().arrays, 0, 'retainGraph: nothing returned');
    z.backward();
    assert.ok(gradientPool().arrays > 0);
    setGradientPool(BIG * 4);
    assert.ok(gradientPool().bytes <= BIG * 4, 'shrinking the cap below what is held empties the pool');
    sum(tanh(mul(relu(mul(x, 2)), 3))).backward();
    assert.ok(gradientPool().bytes <= BIG * 4, `held ${gradientPool().bytes} bytes under a cap of ${BIG * 4}`);
    assert.throws(() => setGradientPool(-1), /setGradientPool: expected a number of bytes >= 0, got -1/);
    assert.throws(() => setGradientPool(NaN), /setGradientPool/);
  });
});

A('gradient pool: three SGD steps of a narrow VGG-16 give the same weights with and without it and the reused activations', () => {
  const run = (on: boolean): Float32Array[] => withPool(on, () => {
    const model = buildModel(vgg16Arch([8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], 16), 1);
    model.train();
    const rng = new Rng(11);
    const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
    for (let step = 0; step < 3; step++) {
      const x = tensor(Float32Array.from({ length: 4 * 3 * 32 * 32 }, () => rng.uniform(-1, 1)), [4, 3, 32, 32]);
      const y = Int32Array.from({ length: 4 }, () => rng.int(10));
      // as fit does with the pool: last step's gradients and the forward's arrays reused
      opt.zeroGrad({ reuse: on });
      if (on) {
        const { result, buffers } = trackAllocations(() => model.forward(x));
        crossEntropy(result, y).backward(undefined, { spent: { buffers, keep: [result] } });
      } else {
        crossEntropy(model.forward(x), y).backward();
      }
      opt.step();
    }
    if (on) assert.ok(gradientPool().arrays > 0, 'the steps used the pool');
    return model.parameters().map((p) => Float32Array.from(p.data));
  });
  const off = run(false), on = run(true);
  assert.is(on.length, off.length);
  for (let i = 0; i < off.length; i++) assert.ok(off[i].every((v, j) => Object.is(v, on[i][j])), `parameter ${i} differs with the pool`);
});

A('releaseArrays: a handed-back array goes to one op once; views, small arrays and arrays past the cap stay out', () => {
  withPool(true, () => {
    setGradientPool(0);
    setGradientPool(256 * 2 ** 20);
    const rng = new Rng(15);
    const x = bigLeaf(rng);
    const a = new Float32Array(BIG).fill(5);
    releaseArrays([a, a]);
    releaseArrays([a]);
    assert.is(gradientPool().arrays, 1, 'the same array twice is held once');
    const y = mul(x.detach(), 2), z = mul(x.detach(), 3);
    assert.is(y.data, a, 'the next op of its length takes it');
    assert.ok(z.data !== a, 'and only one op');
    assert.equal(Array.from(y.data.subarray(0, 3)), Array.from(x.data.subarray(0, 3)).map((v) => Math.fround(v * 2)), 'cleared and written by the op');
    releaseArrays([new Float32Array(2 * BIG).subarray(0, BIG), new Float32Array(100)]);
    assert.is(gradientPool().arrays, 0, 'a view and a small array are not taken');
    setGradientPool(BIG * 4 - 4);
    releaseArrays([new Float32Array(BIG)]);
    assert.is(gradientPool().arrays, 0, 'past the cap');
  });
});

A("an optimizer's zeroGrad({ reuse: true }) hands its gradients to the pool; plain zeroGrad keeps them out", () => {
  withPool(true, () => {
    for (const reuse of [false, true]) {
      setGradientPool(0);
      setGradientPool(256 * 2 ** 20);
      const rng = new Rng(17);
      const w = bigLeaf(rng), b = bigLeaf(rng, 10);
      const opt = new SGD([w, b], { lr: 0.1 });
      sum(mul(add(w, 1), 2)).backward(undefined, { retainGraph: true });
      sum(b).backward();
      const held = [w.grad!.data, b.grad!.data];
      opt.step();
      opt.zeroGrad({ reuse });
      assert.is(w.grad, null);
      assert.is(b.grad, null);
      assert.is(gradientPool().arrays, reuse ? 1 : 0, `reuse ${reuse}: the large gradient only`);
      assert.is(mul(w.detach(), 1).data === held[0], reuse);
    }
  });
});

A("ops that leave their pooled output uncleared write every element: conv2d, batchNorm, maxPool2d with a NaN-filled pool, every backend", () => {
  // each geometry (arrays of at least the pool's 4096 elements): input, weight, stride, padding; 3x3 padded at 8x8 takes the input gradient as a
  // convolution (its output array uncleared), at 2x2 through col2im; 5x5 unpadded (LeNet-5), stride 2
  const cases: [number[], number[], number, number][] = [[[4, 32, 8, 8], [16, 32, 3, 3], 1, 1], [[128, 24, 2, 2], [24, 24, 3, 3], 1, 1], [[16, 3, 12, 12], [10, 3, 5, 5], 1, 0], [[16, 5, 9, 9], [8, 5, 3, 3], 2, 1]];
  const backends = nativeAddon() ? ['native', 'js'] : ['js'];
  for (const backend of backends) {
    setBackend(backend === 'native' ? null : 'js');
    try {
      for (const [xs, ws, stride, padding] of cases) {
        const run = (poison: boolean): { out: number[]; grads: number[][]; taken: number } => withPool(true, () => {
          setGradientPool(0);
          setGradientPool(256 * 2 ** 20);
          const rng = new Rng(19);
          const leaf = (shape: number[]) => tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.uniform(-1, 1)), shape, { requiresGrad: true });
          const x = leaf(xs), w = leaf(ws), gamma = leaf([ws[0]]), beta = leaf([ws[0]]);
          const state = { runningMean: tensor(new Float32Array(ws[0])), runningVar: tensor(new Float32Array(ws[0]).fill(1)) };
          const conv = (): Tensor => conv2d(x, w, null, { stride, padding });
          // the pool filled with NaN arrays of every length the ops below allocate (four of each)
          const lens = new Set([x.size, w.size, conv().size, maxPool2d(conv(), 2).size]);
          if (poison) for (const n of lens) releaseArrays(Array.from({ length: 4 }, () => new Float32Array(n).fill(NaN)));
          const before = gradientPool().arrays;
          const h = maxPool2d(batchNorm(conv(), gamma, beta, state, true, 0.1, 1e-5, true), 2);
          sum(mul(h, h)).backward();
          return { out: Array.from(h.data), grads: [x, w, gamma, beta].map((t) => Array.from(t.grad!.data)), taken: before - gradientPool().arrays };
        });
        const clean = run(false), poisoned = run(true);
        const what = `${backend} x ${xs} w ${ws} stride ${stride}`;
        assert.ok(poisoned.taken > 0, `${what}: the ops took ${poisoned.taken} arrays from the pool (net of what the pass returned)`);
        assert.ok(clean.out.every((v, j) => Object.is(v, poisoned.out[j])), `${what}: the output`);
        for (let i = 0; i < clean.grads.length; i++) assert.ok(clean.grads[i].every((v, j) => Object.is(v, poisoned.grads[i][j])), `${what}: gradient ${i}`);
      }
    } finally {
      setBackend(null);
    }
  }
});

A("spent activations: reused once the pass is done with them; the same gradients, the kept output intact", () => {
  // tanh's backward reads its own output after the reshape (a view of it) was done: the output may
  // be reused only once tanh's node has run
  const run = (spent: boolean): number[][] => withPool(true, () => {
    const rng = new Rng(13);
    const x = bigLeaf(rng), w = bigLeaf(rng);
    const c = tensor(Float32Array.from({ length: BIG }, () => rng.uniform(-1, 1)), [BIG]);
    const out: number[][] = [];
    for (let step = 0; step < 3; step++) {
      const { result: h, buffers } = trackAllocations(() => {
        const a = tanh(mul(x, w));
        const v = reshape(a, [2, BIG / 2]);
        return add(mul(reshape(mul(v, v), [BIG]), c), tanh(a));
      });
      const kept = Array.from(h.data);
      sum(mul(h, c)).backward(undefined, spent ? { spent: { buffers, keep: [h] } } : {});
      for (let i = 0; i < 6; i++) mul(x.detach(), 0).data.fill(7);
      assert.equal(Array.from(h.data), kept, 'the kept output');
      out.push(Array.from(x.grad!.data), Array.from(w.grad!.data));
    }
    return out;
  });
  const plain = run(false), spent = run(true);
  for (let i = 0; i < plain.length; i++) assert.ok(plain[i].every((v, j) => Object.is(v, spent[i][j])), `gradient ${i} differs when activations are reused`);
  // they were reused: a pass with spent buffers leaves more in the pool than one without
  withPool(true, () => {
    const rng = new Rng(13);
    const x = bigLeaf(rng);
    const count = (spent: boolean): number => {
      setGradientPool(0);
      setGradientPool(256 * 2 ** 20);
      const { result, buffers } = trackAllocations(() => tanh(tanh(tanh(mul(x, 2)))));
      assert.is(buffers.size, 4);
      sum(result).backward(undefined, spent ? { spent: { buffers } } : {});
      return gradientPool().arrays;
    };
    assert.ok(count(true) >= count(false) + 3, `${count(true)} arrays against ${count(false)}`);
  });
});

A('gradient pool: NEURONMERGE_GRAD_POOL sets the cap in MiB; a value it does not take leaves 1 GiB', () => {
  const index = new URL('../src/index.js', import.meta.url).pathname;
  const cap = (v: string): number => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { gradientPool } from ${JSON.stringify(index)}; process.stdout.write(String(gradientPool().capBytes))`], { encoding: 'utf8', env: { ...process.env, NEURONMERGE_GRAD_POOL: v } });
    assert.is(r.status, 0, r.stderr);
    return Number(r.stdout);
  };
  assert.is(cap('0'), 0);
  assert.is(cap('512'), 512 * 2 ** 20);
  assert.is(cap('1g'), 1024 * 2 ** 20);
});

A.run();
