// Creation, conversion and the seeded generator.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { arange, full, kernelBackend, normal, ones, Rng, tensor, uniform, zeros, listBackends } from '../src/internal.js';

const T = suite('tensor');

T('creation from numbers, nested arrays and typed arrays', () => {
  assert.equal(tensor(3).shape, []);
  assert.is(tensor(3).item(), 3);
  const t = tensor([[1, 2, 3], [4, 5, 6]]);
  assert.equal(t.shape, [2, 3]);
  assert.equal(t.toArray(), [[1, 2, 3], [4, 5, 6]]);
  assert.is(t.dtype, 'float32');
  const f = new Float64Array([1, 2, 3, 4]);
  const shared = tensor(f, [2, 2], { copy: false });
  assert.is(shared.data, f);
  assert.is(shared.dtype, 'float64');
  assert.ok(tensor(f, [2, 2]).data !== f);
  assert.equal(Array.from(zeros([2, 2]).data), [0, 0, 0, 0]);
  assert.equal(Array.from(ones([3]).data), [1, 1, 1]);
  assert.equal(Array.from(full([2], 7.5, { dtype: 'float64' }).data), [7.5, 7.5]);
  assert.equal(Array.from(arange(4).data), [0, 1, 2, 3]);
  assert.equal(zeros([0, 3]).size, 0);
});

T('dtype conversion round-trips and rounds to float32', () => {
  const x = tensor([1 / 3], undefined, { dtype: 'float64' });
  const y = x.to('float32');
  assert.is(y.dtype, 'float32');
  assert.is(y.data[0], Math.fround(1 / 3));
  assert.is(x.to('float64'), x);
});

T('the generator is deterministic per seed, uniform in range, normal with the right moments', () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const sa = Array.from({ length: 5 }, () => a.nextU32());
  assert.equal(sa, Array.from({ length: 5 }, () => b.nextU32()));
  assert.not.equal(sa, Array.from({ length: 5 }, () => c.nextU32()));
  const u = uniform([20000], -2, 3, new Rng(1));
  assert.ok(Array.from(u.data).every((v) => v >= -2 && v < 3));
  const n = normal([20000], 1, 2, new Rng(2));
  const vals = Array.from(n.data);
  const m = vals.reduce((p, v) => p + v, 0) / n.size;
  const sd = Math.sqrt(vals.reduce((p, v) => p + (v - m) ** 2, 0) / n.size);
  assert.ok(Math.abs(m - 1) < 0.05 && Math.abs(sd - 2) < 0.05, `mean ${m} sd ${sd}`);
  const counts = new Array(7).fill(0);
  const r = new Rng(3);
  for (let i = 0; i < 7000; i++) counts[r.int(7)]++;
  assert.ok(counts.every((k) => k > 850 && k < 1150), `counts ${counts}`);
});

T('generator state saves and restores mid-stream, normal spare included', () => {
  const r = new Rng(9);
  r.normal();
  const st = JSON.parse(JSON.stringify(r.getState()));
  const next = [r.normal(), r.random(), r.normal()];
  const q = Rng.fromState(st);
  assert.equal([q.normal(), q.random(), q.normal()], next);
  const p = new Rng(5).permutation(10);
  assert.equal([...p].sort((x, y) => x - y), [...Array(10).keys()]);
});

T('the pure TypeScript backend serves every kernel for both dtypes', () => {
  const js = listBackends().find((b) => b.name === 'js')!;
  assert.ok(js.kernels.length >= 17);
  assert.equal(js.dtypes, ['float32', 'float64']);
  assert.is(kernelBackend('gemm', 'float64'), 'js');
});

T.run();
