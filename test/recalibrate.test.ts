// Batch-norm re-estimation: after it, the network in eval mode computes on the calibration images what
// it computes in training mode (batch statistics) on them as one batch; chunking does not change it;
// a second pass finds nothing stale; through the command, merged and pruned models both get it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BatchNorm2d, BatchNorm1d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, recalibrateBatchNorm, Rng, Sequential, Tensor, noGrad } from '../src/index.js';
import { assertClose } from './helpers.js';

const R = suite('recalibrate');
const net = (seed: number) => {
  const rng = new Rng(seed);
  return new Sequential(
    new Conv2d(3, 6, 3, { padding: 1, bias: false, rng }), new BatchNorm2d(6), new ReLU(), new MaxPool2d(2),
    new Conv2d(6, 8, 3, { padding: 1, bias: false, rng }), new BatchNorm2d(8), new ReLU(), new Flatten(),
    new Linear(8 * 4 * 4, 12, { rng }), new BatchNorm1d(12), new ReLU(), new Linear(12, 5, { rng }),
  );
};
const rng = new Rng(3);
const x = new Tensor(Float32Array.from({ length: 40 * 3 * 8 * 8 }, () => rng.uniform(-1, 3)), [40, 3, 8, 8]);

R('after re-estimation, eval mode on the calibration images equals training mode on them as one batch', () => {
  const a = net(1), b = net(1);
  const before = noGrad(() => {
    a.eval();
    return Float32Array.from(a.forward(x).data);
  });
  const drift = recalibrateBatchNorm(a, x, 40);
  assert.is(drift.length, 3);
  assert.ok(drift.every((d) => d > 0.01), `stale statistics were found: ${drift}`);
  const evalOut = noGrad(() => {
    a.eval();
    return a.forward(x).data;
  });
  const trainOut = noGrad(() => {
    b.train();
    return b.forward(x).data;
  });
  assertClose(evalOut, trainOut, 2e-4, 'eval after re-estimation vs training mode');
  assert.ok(evalOut.some((v, i) => Math.abs(v - before[i]) > 1e-2), 'the output changed');
  assert.is(a.training, false, 'the mode is left as it was');
});

R('chunks of any size give the same statistics; a second pass finds nothing stale', () => {
  const a = net(2), b = net(2);
  recalibrateBatchNorm(a, x, 40);
  recalibrateBatchNorm(b, x, 7);
  const bns = (m: Sequential) => m.layers.filter((l): l is BatchNorm2d => l instanceof BatchNorm2d || l instanceof BatchNorm1d);
  bns(a).forEach((bn, i) => {
    assertClose(bn.runningMean.data, bns(b)[i].runningMean.data, 1e-5, `mean ${i}`);
    assertClose(bn.runningVar.data, bns(b)[i].runningVar.data, 1e-5, `var ${i}`);
  });
  const again = recalibrateBatchNorm(a, x, 13);
  assert.ok(again.every((d) => d < 1e-5), `second pass: ${again}`);
  assert.throws(() => recalibrateBatchNorm(a, new Tensor(new Float32Array(0), [0, 3, 8, 8])), /recalibrate: no calibration inputs/);
});

R.run();
