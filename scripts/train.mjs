#!/usr/bin/env node
// Train one of the paper's networks with its recipe until the command-line issue brings
// `neuronmerge train`:  node scripts/train.mjs lenet|dbn|vgg [--epochs N] [--pretrain-epochs N]
//   [--batch N] [--lr X] [--seed N] [--limit N] [--checkpoint FILE] [--resume FILE] [--data-dir DIR]
//   [--path DIR] [--json]
// first: re-runs this process with huge pages for large arrays, as the command does (Linux)
import '../dist/src/cli/rerun.js';
import { trainDbn, trainLenet, trainVgg } from '../dist/src/index.js';

const [name, ...rest] = process.argv.slice(2);
const recipes = { lenet: trainLenet, dbn: trainDbn, vgg: trainVgg };
if (!recipes[name]) {
  console.error(`usage: node scripts/train.mjs lenet|dbn|vgg [options]   (unknown model '${name ?? ''}')`);
  process.exit(2);
}
const opts = { data: {} };
const num = (flag, v) => {
  const x = Number(v);
  if (!Number.isFinite(x)) {
    console.error(`${flag}: expected a number, got '${v}'`);
    process.exit(2);
  }
  return x;
};
let json = false;
for (let i = 0; i < rest.length; i++) {
  const a = rest[i], v = rest[i + 1];
  switch (a) {
    case '--epochs': opts.epochs = num(a, v); i++; break;
    case '--pretrain-epochs': opts.pretrainEpochs = num(a, v); i++; break;
    case '--batch': opts.batchSize = num(a, v); i++; break;
    case '--lr': opts.lr = num(a, v); i++; break;
    case '--seed': opts.seed = num(a, v); i++; break;
    case '--limit': opts.limit = num(a, v); i++; break;
    case '--checkpoint': opts.checkpoint = v; i++; break;
    case '--resume': opts.resume = v; i++; break;
    case '--data-dir': opts.data.dataDir = v; i++; break;
    case '--path': opts.data.path = v; i++; break;
    case '--json': json = true; break;
    default:
      console.error(`unknown option '${a}'`);
      process.exit(2);
  }
}
try {
  const r = await recipes[name](opts);
  const out = { model: name, arch: r.arch, testAccuracy: r.testAccuracy, seconds: r.seconds, epochs: r.history.length, history: r.history, data: r.data };
  if (json) console.log(JSON.stringify(out));
  else console.log(`${name}: test accuracy ${(100 * r.testAccuracy).toFixed(2)}% after ${r.history.length} epochs, ${r.seconds.toFixed(0)} s`);
} catch (e) {
  console.error(`train ${name}: ${e.message}`);
  process.exit(1);
}
