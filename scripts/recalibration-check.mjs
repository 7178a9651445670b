#!/usr/bin/env node
// What re-estimating a trained original's batch norms does to it, with no unit merged: its test accuracy
// as trained, then with every batch norm re-estimated on n seeded training images augmented as the
// network trains (crop and flip for VGG-16), without and with a Cutout square of the given side.
//   node scripts/recalibration-check.mjs CHECKPOINT [--data DIR] [--images 5120] [--cutout 16]
import '../dist/src/runtime/rerun.js';
import '../dist/src/backend/native.js';
import { accuracyOf, cloneModel, loadTask, modelFromCheckpoint, recalibrateBatchNorm, recalibrationSample } from '../dist/src/internal.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? dflt : process.argv[i + 1];
};
const file = process.argv[2];
if (!file || file.startsWith('--')) {
  console.error('usage: node scripts/recalibration-check.mjs CHECKPOINT [--data DIR] [--images N] [--cutout N]');
  process.exit(1);
}
const data = arg('--data', undefined);
const n = Number(arg('--images', '5120')), cutout = Number(arg('--cutout', '16'));
const m = modelFromCheckpoint(file);
const task = await loadTask(m.arch, data ? { path: data } : {});
const pct = (a) => `${(100 * a).toFixed(2)}%`;
const rows = [['as trained', accuracyOf(m.model, task).accuracy]];
for (const c of [0, cutout]) {
  const model = cloneModel(m.model, m.arch);
  recalibrateBatchNorm(model, recalibrationSample(task, n, 0, c));
  rows.push([`re-estimated on ${n} images${c ? `, Cutout ${c}` : ''}`, accuracyOf(model, task).accuracy]);
}
console.log(JSON.stringify({ checkpoint: file, images: n, cutout, accuracy: Object.fromEntries(rows) }));
for (const [what, a] of rows) console.log(`${what.padEnd(40)} ${pct(a)}`);
