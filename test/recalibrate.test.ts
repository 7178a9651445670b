// Batch-norm re-estimation: after it, the network in eval mode computes on the calibration images what
// it computes in training mode (batch statistics) on them as one batch; chunking does not change it;
// a second pass finds nothing stale; through the command, merged and pruned models both get it.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BatchNorm2d, BatchNorm1d, calibrationSample, Conv2d, Flatten, Linear, MaxPool2d, networkOf, ReLU, recalibrateBatchNorm, recalibrationSample, Rng, Sequential, Tensor, noGrad, UNIT, vgg16Arch, lenet5Arch } from '../src/internal.js';
import type { TaskData } from '../src/internal.js';
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

R('`to` re-estimates the batch norms up to that layer and leaves the later ones alone', () => {
  const a = net(5), b = net(5);
  const bns = (m: Sequential) => m.layers.filter((l): l is BatchNorm2d => l instanceof BatchNorm2d || l instanceof BatchNorm1d);
  const old = bns(a).map((bn) => Float32Array.from(bn.runningMean.data));
  const d = recalibrateBatchNorm(a, x, 16, 0, 5); // layers 1 and 5 are the two conv batch norms
  recalibrateBatchNorm(b, x, 16);
  assert.is(d.length, 2);
  for (const i of [0, 1]) assertClose(bns(a)[i].runningMean.data, bns(b)[i].runningMean.data, 1e-6, `batch norm ${i} as a full pass`);
  assert.equal(Array.from(bns(a)[2].runningMean.data), Array.from(old[2]), 'the last batch norm untouched');
  assert.ok(bns(b)[2].runningMean.data.some((v, c) => Math.abs(v - old[2][c]) > 1e-3), 'a full pass moves it');
});


R('re-estimation images: the calibration sample, augmented as the network trains, the same for a seed', () => {
  const rng = new Rng(9);
  const count = 50, C = 3, H = 8;
  const images = Uint8Array.from({ length: count * C * H * H }, () => rng.int(256));
  const set = { name: 'cifar10', split: 'train', count, channels: C, height: H, width: H, images, labels: new Uint8Array(count), classes: [], source: 'test' };
  const task = (arch: Parameters<typeof networkOf>[0]) => ({ settings: networkOf(arch), train: set, norm: UNIT }) as unknown as TaskData;
  const vgg = task(vgg16Arch());
  assert.ok(networkOf(vgg16Arch()).augment, 'VGG-16 trains on augmented images');
  const plain = calibrationSample(vgg, 20, 4), a = recalibrationSample(vgg, 20, 4);
  assert.equal(a.shape, plain.shape);
  assert.equal(Array.from(recalibrationSample(vgg, 20, 4).data), Array.from(a.data), 'seeded');
  assert.not.equal(Array.from(recalibrationSample(vgg, 20, 5).data), Array.from(a.data), 'another seed, other crops');
  // each image is a shifted (and maybe flipped) crop of its plain image: some pixel of a 4-pixel shift matches
  let differ = 0;
  const S = C * H * H;
  for (let i = 0; i < 20; i++) {
    const p = plain.data.subarray(i * S, (i + 1) * S), q = a.data.subarray(i * S, (i + 1) * S);
    if (p.some((v, j) => v !== q[j])) differ++;
    // the image's own pixels: its centre pixel's value occurs in the plain image's channel 0
    const centre = q[(H / 2) * H + H / 2];
    assert.ok(Array.from(p.subarray(0, H * H)).includes(centre) || centre === 0, `image ${i} is a crop of its own plain image`);
  }
  assert.ok(differ >= 15, `${differ} of 20 images augmented`);
  // with Cutout (a network trained with it): the same crops, each with one square of at most 4×4 pixels
  // set to 0 in every channel
  const cut = recalibrationSample(vgg, 20, 4, 4);
  let cutImages = 0;
  for (let i = 0; i < 20; i++) {
    const rows: number[] = [], cols: number[] = [];
    for (let c = 0; c < C; c++) {
      for (let j = 0; j < H * H; j++) {
        const k = i * S + c * H * H + j;
        if (cut.data[k] === a.data[k]) continue;
        assert.is(cut.data[k], 0, `image ${i}: a changed pixel is cut out`);
        rows.push(Math.floor(j / H));
        cols.push(j % H);
      }
    }
    if (rows.length) cutImages++;
    if (rows.length) assert.ok(Math.max(...rows) - Math.min(...rows) < 4 && Math.max(...cols) - Math.min(...cols) < 4, `image ${i}: the cut pixels lie in one 4×4 square`);
  }
  assert.ok(cutImages >= 15, `${cutImages} of 20 images with a square cut out`);
  // a network trained without augmentation re-estimates on the plain images
  const lenet = task(lenet5Arch());
  assert.equal(Array.from(recalibrationSample(lenet, 20, 4).data), Array.from(calibrationSample(lenet, 20, 4).data));
});

R.run();
