// The training recipes end to end on small settings: LeNet-5 and a narrow DBN (RBM pretraining copied
// into the sigmoid network, then fine-tuning) learn real MNIST digits.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dbnArch, lenet5Arch, trainDbn, trainLenet } from '../src/internal.js';

const R = suite('recipes');

R('LeNet-5 recipe: 1,000 digits, 2 epochs, well above chance on the 10,000 test digits', async () => {
  const r = await trainLenet({ arch: lenet5Arch([6, 12, 50]), limit: 1000, epochs: 2, progress: false });
  assert.ok(r.testAccuracy > 0.7, `test accuracy ${r.testAccuracy}`);
  assert.is(r.history.length, 2);
  assert.is(r.data.test, 10000);
});

R('DBN recipe: pretrained RBM weights go into the network, then fine-tuning learns', async () => {
  const lines: string[] = [];
  const r = await trainDbn({ arch: dbnArch([64, 32]), limit: 2000, batchSize: 25, pretrainEpochs: 2, epochs: 3, log: (l) => lines.push(l) });
  assert.ok(lines.some((l) => /rbm 2\/2 \(64-32\) epoch 2\/2: reconstruction error/.test(l)), lines.join('\n'));
  assert.ok(r.testAccuracy > 0.6, `test accuracy ${r.testAccuracy}`);
});

R.run();
