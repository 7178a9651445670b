#!/usr/bin/env node
// Merging against pruning before any fine-tuning, on one trained checkpoint: for each merge ratio (the
// same in every layer, or a named allocation) and each merging rule, the test accuracy of the merged
// model and of the L1-pruned one with the same units per layer, batch norms re-estimated on the same
// seeded training images for both (networks with batch norm). One JSON line per figure, then a table.
//   node scripts/method-study.mjs CHECKPOINT [--data DIR] [--ratios 0.5,0.75,0.9] [--rules mean,scaled,medoid]
//        [--seeds 0,1,2] [--kim] [--recalibrate 5120] [--recalibrate-cutout 0] [--fit 1000]
// --kim adds Kim et al.'s VGG-16 allocation: the first convolution and the last six halved.
import '../dist/src/runtime/rerun.js';
import '../dist/src/backend/native.js';
import {
  accuracyOf, archOf, BatchNorm, readsActivations, calibrationSample, recalibrationSample, cloneModel, loadTask, mergeModel, mergeSites, modelFromCheckpoint, pruneModel, recalibrateBatchNorm,
} from '../dist/src/internal.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? dflt : process.argv[i + 1];
};
const file = process.argv[2];
if (!file || file.startsWith('--')) {
  console.error('usage: node scripts/method-study.mjs CHECKPOINT [--data DIR] [--ratios LIST] [--rules LIST] [--seeds LIST] [--kim] [--recalibrate N] [--recalibrate-cutout N]');
  process.exit(2);
}
const list = (v) => (v === '' ? [] : v.split(',').map(Number));
const ratios = list(arg('--ratios', '0.5,0.6,0.7,0.75,0.8,0.9'));
const rules = arg('--rules', 'mean,scaled,medoid,fitted').split(',');
const seeds = list(arg('--seeds', '0'));
const { model, arch } = modelFromCheckpoint(file);
const task = await loadTask(arch, arg('--data') ? { path: arg('--data') } : {});
const hasBn = model.layers.some((m) => m instanceof BatchNorm);
const recalN = Number(arg('--recalibrate', '5120'));
const recalCutout = Number(arg('--recalibrate-cutout', '0'));
const recal = hasBn && recalN > 0 ? recalibrationSample(task, recalN, 0, recalCutout) : null;
const sites = mergeSites(model);
const fitOn = calibrationSample(task, Number(arg('--fit', '1000')), 3);
const t0 = performance.now();
const original = accuracyOf(model, task).accuracy;
console.log(JSON.stringify({ checkpoint: file, arch, original, recalibrated: recal ? recal.shape[0] : null, recalibrateCutout: recal ? recalCutout : null }));

const allocations = ratios.map((r) => ({ name: String(r), ratio: r }));
if (process.argv.includes('--kim')) {
  if (sites.length !== 14) throw new Error('--kim: the allocation is VGG-16\'s (14 mergeable layers)');
  allocations.push({ name: 'Kim et al.', ratio: sites.map((_, i) => (i === 0 || (i >= 7 && i <= 12) ? 0.5 : 0)) });
}
const rows = [];
for (const a of allocations) {
  const measure = (m) => {
    if (recal) recalibrateBatchNorm(m, recal);
    return accuracyOf(m, task).accuracy;
  };
  const p = cloneModel(model, arch);
  pruneModel(p, { ratio: a.ratio });
  const pruned = measure(p);
  const params = p.numParameters();
  const row = { allocation: a.name, removed: 1 - params / model.numParameters(), pruned, widths: archOf(p, arch).widths };
  for (const rule of rules) {
    const accs = seeds.map((seed) => {
      const m = cloneModel(model, arch);
      mergeModel(m, { ratio: a.ratio, rule, seed, nInit: 3, calibration: readsActivations(rule) ? fitOn : undefined, reestimate: recal ?? undefined });
      return measure(m);
    });
    const sorted = [...accs].sort((x, y) => x - y);
    row[rule] = { median: sorted[Math.floor(sorted.length / 2)], all: accs };
  }
  rows.push(row);
  console.log(JSON.stringify({ ...row, seconds: (performance.now() - t0) / 1000 }));
}
const pct = (x) => (100 * x).toFixed(2);
console.log(`\n| ratio | parameters removed | ${rules.map((r) => `merged (${r})`).join(' | ')} | pruned (L1) |`);
console.log(`|---|---|${rules.map(() => '---|').join('')}---|`);
for (const r of rows) console.log(`| ${r.allocation} | ${pct(r.removed)}% | ${rules.map((x) => pct(r[x].median) + (seeds.length > 1 ? ` (${r[x].all.map(pct).join(', ')})` : '')).join(' | ')} | ${pct(r.pruned)} |`);
console.log(`\noriginal ${pct(original)}%; ${((performance.now() - t0) / 1000).toFixed(0)} s`);
