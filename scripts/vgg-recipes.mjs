#!/usr/bin/env node
// Compares VGG-16 training recipes on a narrow variant of the network (the full one takes hours an
// epoch on a CPU): each variant trains from the same seed on the same batches and prints one JSON line
// with its test accuracy per epoch, its last training accuracy and its time.
//   node scripts/vgg-recipes.mjs --data DIR [--width-scale 0.25] [--epochs 10] [--only NAME,...]
import '../dist/src/runtime/rerun.js';
import '../dist/src/backend/native.js';
import { archFor, buildModel, cosineLr, fit, loadTask, oneCycleLr, SGD, trainLoader } from '../dist/src/internal.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? dflt : process.argv[i + 1];
};
const data = arg('--data');
if (!data) {
  console.error('usage: node scripts/vgg-recipes.mjs --data CIFAR10_DIR [--width-scale F] [--epochs N] [--only NAME,...]');
  process.exit(2);
}
const scale = Number(arg('--width-scale', '0.25'));
const epochs = Number(arg('--epochs', '10'));
const only = arg('--only')?.split(',');

// the variants: the learning rate, Nesterov momentum, the schedule (cosine from lr to 0, or one-cycle:
// a linear warm-up from lr/25 over the first `warm` of the steps, then cosine to lr/1e4), weight decay
const VARIANTS = {
  'cosine-0.05': { lr: 0.05, nesterov: false, schedule: 'cosine', wd: 5e-4 },
  'onecycle-0.1-nesterov': { lr: 0.1, nesterov: true, schedule: 'onecycle', warm: 0.15, wd: 5e-4 },
  'onecycle-0.2-nesterov': { lr: 0.2, nesterov: true, schedule: 'onecycle', warm: 0.15, wd: 5e-4 },
  'onecycle-0.1-nesterov-wd1e-4': { lr: 0.1, nesterov: true, schedule: 'onecycle', warm: 0.15, wd: 1e-4 },
  'cosine-0.1-nesterov': { lr: 0.1, nesterov: true, schedule: 'cosine', wd: 5e-4 },
};

const arch = archFor('vgg', { widthScale: scale });
const task = await loadTask(arch, { path: data });
for (const [name, v] of Object.entries(VARIANTS)) {
  if (only && !only.includes(name)) continue;
  const model = buildModel(arch, 0);
  const loader = trainLoader(task, { seed: 0 });
  const steps = epochs * loader.length;
  const schedule = v.schedule === 'cosine' ? cosineLr(v.lr, steps) : oneCycleLr(v.lr, steps, v.warm, 25, 1e4);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const r = fit(model, {
    arch, loader, optimizer: new SGD(model.parameters(), { lr: v.lr, momentum: 0.9, nesterov: v.nesterov, weightDecay: v.wd }), epochs, schedule,
    evalSet: task.ev, progress: false,
  });
  const cpu = process.cpuUsage(cpu0);
  const last = r.history.at(-1);
  console.log(JSON.stringify({
    variant: name, ...v, widthScale: scale, epochs, testAccuracy: last.evalAccuracy, trainAccuracy: last.trainAccuracy,
    perEpoch: r.history.map((h) => Number(h.evalAccuracy.toFixed(4))), seconds: Math.round((performance.now() - t0) / 1000), cpuSeconds: Math.round((cpu.user + cpu.system) / 1e6),
  }));
}
