#!/usr/bin/env node
// The neuronmerge command. Every error is one clear line on stderr and a non-zero exit code.
import { Command, InvalidArgumentError } from 'commander';
// the native kernels register themselves when this module loads (the TypeScript ones otherwise)
import '../backend/native.js';
import { datasetStatus, fetchDataset, listDatasets, summarizeDataset } from '../../datasets/catalog.js';
import { setBackend } from '../backend/registry.js';
import { modelStats } from '../compress/stats.js';
import { buildModel, parseArch } from '../models/index.js';
import type { Arch } from '../models/index.js';
import { loadCheckpoint } from '../train/checkpoint.js';
import { trainDbn, trainLenet, trainVgg } from '../train/recipes.js';
import { reportTable, reproduce } from './reproduce.js';

const program = new Command();
program.name('neuronmerge').description('Merging similar neurons for deep network compression (Zhong et al., 2020)').showHelpAfterError();

const num = (what: string, lo: number, hi: number) => (v: string) => {
  const x = Number(v);
  if (!Number.isFinite(x) || x < lo || x > hi) throw new InvalidArgumentError(`${what} must be a number in [${lo}, ${hi}], got '${v}'`);
  return x;
};
const ratios = (v: string) => v.split(',').map((s) => {
  const x = Number(s);
  if (!(x >= 0 && x < 1)) throw new InvalidArgumentError(`a merge ratio must be in [0, 1), got '${s}'`);
  return x;
});

function common(c: Command): Command {
  return c.option('--json', 'print JSON instead of text')
    .option('--seed <n>', 'seed of every random choice', num('--seed', 0, 2 ** 31), 0)
    .option('--backend <name>', 'js or native (default: the best available)')
    .option('--data-dir <dir>', 'dataset cache folder (default: NEURONMERGE_DATA or ~/.cache/neuronmerge)');
}

function useBackend(name?: string): void {
  if (name) setBackend(name);
}

common(program.command('reproduce').argument('<model>', 'dbn, lenet, vgg or all').description('train, merge, fine-tune and compare with the pruning baseline; writes report.json and report.md'))
  .option('--quick', 'a short run (minutes)')
  .option('--ratios <list>', 'merge ratios, comma-separated', ratios)
  .option('--out <dir>', 'folder for the reports', 'neuronmerge-out')
  .option('--epochs <n>', 'training epochs of the original', num('--epochs', 1, 10000))
  .option('--finetune-epochs <n>', 'fine-tuning epochs', num('--finetune-epochs', 0, 10000))
  .option('--limit <n>', 'train on the first n images only', num('--limit', 1, 1e9))
  .action(async (model: string, o) => {
    useBackend(o.backend);
    if (!['dbn', 'lenet', 'vgg', 'all'].includes(model)) throw new Error(`unknown model '${model}' (dbn, lenet, vgg or all)`);
    if (model === 'vgg' || model === 'all') throw new Error(`reproduce ${model} is not built yet: 'reproduce lenet' and 'reproduce dbn' exist so far`);
    const r = await reproduce(model as 'lenet' | 'dbn', { quick: o.quick, ratios: o.ratios, seed: o.seed, out: o.out, dataDir: o.dataDir, epochs: o.epochs, finetuneEpochs: o.finetuneEpochs, limit: o.limit });
    if (o.json) console.log(JSON.stringify(r));
    else console.log(`\n${r.model} on MNIST${o.quick ? ' (--quick)' : ''}: original ${(100 * r.original.accuracy).toFixed(2)}%, ${r.original.params.toLocaleString('en')} parameters; ${r.seconds.toFixed(0)} s\n\n${reportTable(r)}\n\nreports: ${o.out}/report.md, ${o.out}/report.json`);
  });

common(program.command('train').argument('<model>', 'dbn, lenet or vgg').description('train a network with its recipe'))
  .option('--epochs <n>', 'epochs', num('--epochs', 1, 10000))
  .option('--checkpoint <file>', 'write a checkpoint (safetensors) every epoch')
  .option('--resume <file>', 'continue from a checkpoint')
  .action(async (model: string, o) => {
    useBackend(o.backend);
    const recipes: Record<string, typeof trainLenet> = { lenet: trainLenet, dbn: trainDbn, vgg: trainVgg };
    if (!recipes[model]) throw new Error(`unknown model '${model}' (dbn, lenet or vgg)`);
    const r = await recipes[model]({ epochs: o.epochs, seed: o.seed, checkpoint: o.checkpoint, resume: o.resume, data: { dataDir: o.dataDir } });
    if (o.json) console.log(JSON.stringify({ model, arch: r.arch, testAccuracy: r.testAccuracy, seconds: r.seconds, history: r.history }));
    else console.log(`${model}: test accuracy ${(100 * r.testAccuracy).toFixed(2)}% (${r.seconds.toFixed(0)} s)`);
  });

common(program.command('info').argument('<what>', 'a checkpoint file, or lenet, vgg, dbn').description('layers, units, parameters and FLOPs'))
  .action((what: string, o) => {
    let arch: Arch;
    let model;
    if (['lenet', 'vgg', 'dbn'].includes(what)) {
      arch = parseArch({ lenet: { model: 'lenet5', widths: [20, 50, 500], classes: 10, inChannels: 1, inSize: 28 }, vgg: { model: 'vgg16', widths: [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512], fc: 512, classes: 10, inChannels: 3, inSize: 32 }, dbn: { model: 'dbn', widths: [500, 500, 2000], classes: 10, inFeatures: 784 } }[what]);
      model = buildModel(arch, 0);
    } else {
      const c = loadCheckpoint(what);
      arch = c.arch;
      model = buildModel(arch, 0);
      model.loadStateDict(c.state, what);
    }
    const shape = arch.model === 'dbn' ? [arch.inFeatures] : [arch.inChannels, arch.inSize, arch.inSize];
    const s = modelStats(model, shape);
    if (o.json) console.log(JSON.stringify({ arch, ...s }));
    else {
      console.log(`${arch.model}: ${s.params.toLocaleString('en')} parameters, ${s.flops.toLocaleString('en')} FLOPs per input, ${s.bytes.toLocaleString('en')} bytes`);
      for (const l of s.layers) console.log(`  ${String(l.index).padStart(3)} ${l.layer.padEnd(26)} units ${String(l.units).padStart(5)}  params ${String(l.params).padStart(9)}  FLOPs ${l.flops}`);
    }
  });

const data = program.command('data').description('list, verify and fetch datasets');
common(data.command('list').description('the datasets neuronmerge knows and what the cache holds')).action(async (o) => {
  const out = [];
  for (const d of listDatasets()) out.push(await datasetStatus(d.name, { dataDir: o.dataDir }));
  if (o.json) console.log(JSON.stringify(out));
  else for (const s of out) console.log(`${s.name.padEnd(14)} ${s.title}; cache ${s.cacheDir}: ${s.files.filter((f) => f.present).length}/${s.files.length} files${s.embedded ? '; embedded copy available' : ''}`);
});
common(data.command('verify').argument('<name>', 'mnist, fashion-mnist or cifar10').option('--path <dir>', 'read from this folder or archive').description('load a dataset and print its counts and class counts')).action(async (name: string, o) => {
  const s = await summarizeDataset(name, { dataDir: o.dataDir, path: o.path, download: false });
  if (o.json) console.log(JSON.stringify(s));
  else console.log(`${s.name} from ${s.source}\n  train ${s.train.count} images, per class ${s.train.classCounts.join(' ')}\n  test ${s.test.count} images, per class ${s.test.classCounts.join(' ')}`);
});
common(data.command('fetch').argument('<name>', 'mnist, fashion-mnist or cifar10').description('download into the cache, checked against the official checksums')).action(async (name: string, o) => {
  let last = 0;
  const paths = await fetchDataset(name, {
    dataDir: o.dataDir,
    onProgress: (p) => {
      const now = Date.now();
      if (!o.json && now - last > 500) {
        last = now;
        process.stderr.write(`\r${p.file}: ${(p.received / 1e6).toFixed(1)}${p.total ? ` / ${(p.total / 1e6).toFixed(1)}` : ''} MB`);
      }
    },
  });
  if (!o.json) process.stderr.write('\n');
  console.log(o.json ? JSON.stringify(paths) : paths.join('\n'));
});

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`neuronmerge: ${e.message.split('\n')[0]}\n`);
  process.exit(1);
});
