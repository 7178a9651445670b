// The real command end to end on tiny settings: report files and their figures; clear one-line errors.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { webgpu } from '../src/backend/webgpu.js';
import { cliJson, needs, runCli, tempDir } from './helpers.js';

const C = suite('cli');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const run = runCli, json = cliJson;

C('reproduce lenet on tiny settings writes report.json and report.md with consistent figures', () => {
  const out = tempDir('nm-cli-');
  const r = run('reproduce', 'lenet', '--epochs', '1', '--finetune-epochs', '1', '--limit', '300', '--ratios', '0.5,0.8', '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  for (const f of ['original', 'merged', 'finetuned', 'pruned']) assert.type(rep.accuracy[f], 'number', `accuracy.${f}`);
  assert.type(rep.params.before, 'number');
  assert.type(rep.params.after, 'number');
  assert.ok(Math.abs(rep.compressionRatio - (1 - rep.params.after / rep.params.before)) < 1e-12);
  // merging at 0.5 keeps a quarter of the conv FLOPs: the merged model must run measurably faster
  assert.ok(rep.speedup.flops > 2.5 && rep.speedup.measured > 1.2, `speedup ${JSON.stringify(rep.speedup)}`);
  assert.is(rep.results.length, 2);
  assert.ok(rep.results[1].params.after < rep.results[0].params.after);
  assert.equal(rep.results[0].units.map((u: { after: number }) => u.after), [10, 25, 250]);
  // per class, weighted by the test set's class counts, gives back the overall accuracy
  const counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
  assert.equal(rep.original.perClass.map((c: { name: string }) => c.name), ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
  const weighted = rep.original.perClass.reduce((s: number, c: { accuracy: number }, i: number) => s + c.accuracy * counts[i], 0) / 10000;
  assert.ok(Math.abs(weighted - rep.original.accuracy) < 1e-9, `${weighted} vs ${rep.original.accuracy}`);
  assert.equal(rep.original.batchNorm, []);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, /\| 0\.5 \| /);
  assert.match(md, /Conv2d\(1→20, 5x5\) 20→10/);
  assert.match(md, /## What merging did to each layer/);
  const ex = rep.results[0].explain;
  assert.is(ex.length, 3);
  assert.is(ex[0].clusters, 10);
  assert.ok(ex.every((e: { outputShift: number; spread: number }) => e.outputShift > 0 && e.outputShift < 2 && e.spread > 0 && e.spread < 1.5));
  const marks = (f: string, what: string) => (readFileSync(join(out, f), 'utf8').match(new RegExp(`aria-roledescription="${what}"`, 'g')) ?? []).length;
  const rules = rep.results[0].merges.length;
  // a line per rule and for pruning, before and after fine-tuning, a point per ratio on each
  assert.is(marks('accuracy.svg', 'line mark'), 2 * (rules + 1));
  assert.is(marks('accuracy.svg', 'point'), 2 * (rules + 1) * rep.results.length);
  // a bar per layer for the original and for each ratio
  assert.is(marks('units.svg', 'bar'), rep.results[0].units.length * (1 + rep.results.length));
  assert.match(readFileSync(join(out, 'units.svg'), 'utf8'), /merged at 0\.8/);
});

C('reproduce dbn on tiny settings: RBM pretraining, merge, prune, reports', () => {
  const out = tempDir('nm-cli-dbn-');
  const r = run('reproduce', 'dbn', '--epochs', '2', '--finetune-epochs', '1', '--limit', '3000', '--ratios', '0.5', '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.is(rep.model, 'dbn');
  assert.equal(rep.results[0].units.map((u: { after: number }) => u.after), [250, 250, 1000]);
  assert.is(rep.params.before, 1665010);
  // the original the run trained into its work folder evaluates to the report's figure
  const trained = readdirSync(join(out, 'work')).find((f) => /^original-\w+\.safetensors$/.test(f))!;
  assert.is(json(run('eval', join(out, 'work', trained), '--json')).accuracy, rep.accuracy.original);
});

const SHARED_CIFAR = join(process.cwd(), '..', 'shared', 'datasets', 'cifar-10-jpeg75', 'cifar-10-batches-bin');

C('train, eval, merge, finetune, prune and explain chain through checkpoints', () => {
  const d = tempDir('nm-chain-');
  const a = join(d, 'a.safetensors'), m = join(d, 'm.safetensors'), f = join(d, 'f.safetensors'), p = join(d, 'p.safetensors');
  const t = json(run('train', 'lenet', '--epochs', '1', '--limit', '500', '--checkpoint', a, '--json'));
  const e = json(run('eval', a, '--json'));
  assert.is(e.accuracy, t.testAccuracy);
  assert.is(e.images, 10000);
  // with mirror images: other figures, said so
  const flip = json(run('eval', a, '--tta', 'flip', '--json'));
  assert.is(flip.tta, 'flip');
  assert.is.not(flip.loss, e.loss);
  const mg = json(run('merge', a, '--ratio', '0.5', '--out', m, '--json'));
  assert.equal(mg.units.map((u: { after: number }) => u.after), [10, 25, 250]);
  assert.equal(mg.arch.widths, [10, 25, 250]);
  assert.is(mg.accuracy.before, e.accuracy);
  assert.ok(Math.abs(mg.compressionRatio - (1 - mg.params.after / mg.params.before)) < 1e-12);
  const info = json(run('info', m, '--json'));
  assert.is(info.params, mg.params.after);
  const em = json(run('eval', m, '--json'));
  assert.is(em.accuracy, mg.accuracy.after);
  const ft = json(run('finetune', m, '--epochs', '1', '--limit', '500', '--out', f, '--json'));
  assert.is(ft.accuracy.before, mg.accuracy.after);
  assert.is(json(run('eval', f, '--json')).accuracy, ft.accuracy.after);
  assert.ok(ft.accuracy.after > ft.accuracy.before, `fine-tuning did not help: ${ft.accuracy.before} -> ${ft.accuracy.after}`);
  const pr = json(run('prune', a, '--ratio', '0.5', '--out', p, '--json', '--no-eval'));
  assert.is(pr.accuracy.before, null);
  assert.equal(pr.arch.widths, [10, 25, 250]);
  assert.is(pr.params.after, mg.params.after);
  const ex = json(run('explain', a, '--ratio', '0.5', '--layer', '0', '--rules', 'mean', '--json'));
  const at = ex.ratios[0];
  assert.is(at.clusters.length, 10);
  assert.equal(at.clusters.flat().sort((x: number, y: number) => x - y), Array.from({ length: 20 }, (_, i) => i));
  assert.ok(at.clusters[0].length >= at.clusters[9].length);
  assert.is(at.layers[0].clusters, 10);
  assert.is(at.accuracy.mean, mg.accuracy.after, 'the curve\'s figure is the merge command\'s');
  const rp = json(run('merge', a, '--ratio', '0.5', '--repair', '200', '--out', join(d, 'r.safetensors'), '--json'));
  assert.is(rp.repair.length, 3);
  assert.ok(rp.repair.every((x: number) => x >= 0) && rp.repair.some((x: number) => x > 0));
  assert.is(rp.accuracy.before, e.accuracy);
  assert.is.not(rp.accuracy.after, mg.accuracy.after);
  // a ratio per layer: the first convolution halved, the second kept, the fc cut to a fifth
  const per = json(run('merge', a, '--ratio', '0.5,0,0.8', '--out', join(d, 'per.safetensors'), '--json', '--no-eval'));
  assert.equal(per.units.map((u: { after: number }) => u.after), [10, 50, 100]);
  assert.equal(json(run('prune', a, '--ratio', '0.5,0,0.8', '--out', join(d, 'perp.safetensors'), '--json', '--no-eval')).arch.widths, [10, 50, 100]);
  // units rounded to multiples of 8: to the nearest with a ratio (20 → 10 → 8, 25 → 24, 250 → 248),
  // down with a budget (a layer below the multiple left as it is, with a note); prune takes the same
  const r8 = json(run('merge', a, '--ratio', '0.5', '--multiple-of', '8', '--out', join(d, 'r8.safetensors'), '--json', '--no-eval', '--no-report'));
  assert.equal(r8.units.map((u: { after: number }) => u.after), [8, 24, 248]);
  assert.equal(json(run('prune', a, '--ratio', '0.5', '--multiple-of', '8', '--out', join(d, 'p8.safetensors'), '--json', '--no-eval')).arch.widths, [8, 24, 248]);
  const b8 = json(run('merge', a, '--budget', '0.1', '--multiple-of', '8', '--out', join(d, 'b8.safetensors'), '--json', '--no-eval', '--no-report'));
  assert.ok(b8.units.every((u: { layer: string; after: number }) => u.after % 8 === 0 || b8.notes.some((n: string) => n.startsWith(`${u.layer} keeps ${u.after} of`))) && b8.params.after <= 0.1 * b8.params.before, JSON.stringify(b8));
  // a multiple larger than a budget's layers: nothing rounded up past the budget, each layer left named
  const over = json(run('merge', a, '--budget', '0.01', '--multiple-of', '64', '--out', join(d, 'o.safetensors'), '--no-eval', '--no-report', '--json'));
  assert.ok(over.params.after <= 0.01 * over.params.before, JSON.stringify(over.params));
  assert.is(over.notes.length, 3, JSON.stringify(over.notes));
  const wrong = run('merge', a, '--ratio', '0.5,0.5', '--out', join(d, 'w.safetensors'), '--no-eval');
  assert.is(wrong.stderr, 'neuronmerge: merge: 2 ratios for 3 mergeable layers\n');
  assert.is(wrong.status, 1);
  const th = json(run('merge', a, '--threshold', '0.5', '--method', 'ward', '--out', m, '--json', '--no-eval'));
  assert.ok(th.units.every((u: { after: number; before: number }) => u.after >= 1 && u.after <= u.before));
  // the pages: merge writes one beside --out (a dendrogram per layer for ward), explain beside the checkpoint
  assert.is(th.report, join(d, 'm.html'));
  const page = readFileSync(th.report, 'utf8');
  assert.is((page.match(/<svg class="dendrogram"/g) ?? []).length, 3);
  assert.is((page.match(/<svg class="unit-map"/g) ?? []).length, 3);
  assert.match(page, /<td>merged checkpoint<\/td><td>[^<]*m\.safetensors<\/td>/);
  assert.is(mg.report, join(d, 'm.html'));
  assert.is(per.report, join(d, 'per.html'));
  assert.ok(!existsSync(join(d, 'p.html')), 'prune writes no page');
  assert.ok(existsSync(join(d, 'r.html')));
  const none = json(run('merge', a, '--ratio', '0.5', '--out', join(d, 'n.safetensors'), '--no-report', '--no-eval', '--json'));
  assert.is(none.report, null);
  assert.ok(!existsSync(join(d, 'n.html')));
  assert.is(ex.report, join(d, 'a.explain.html'));
  assert.match(readFileSync(ex.report, 'utf8'), /<h1>lenet5: merging by the mean rule at ratios 0\.5 to 0\.5<\/h1>/);
  const exw = run('explain', a, '--ratio', '0.8', '--method', 'average', '--rules', 'mean', '--report', join(d, 'w.html'));
  assert.is(exw.status, 0, exw.stderr);
  assert.match(exw.stdout, /average linkage/);
  assert.match(exw.stdout, /the page: .*w\.html/);
  assert.is((readFileSync(join(d, 'w.html'), 'utf8').match(/<svg class="dendrogram"/g) ?? []).length, 3);
  const clash = run('merge', a, '--ratio', '0.5', '--out', join(d, 'c.safetensors'), '--report', a);
  assert.is(clash.status, 1);
  assert.match(clash.stderr, /^neuronmerge: --report/);
  assert.ok(!existsSync(join(d, 'c.safetensors')), 'nothing written before the error');
});

C('reproduce --multiple-of 8: merged and pruned models take units in multiples of 8, and the reports say so', () => {
  const out = tempDir('nm-cli-m8-');
  const r = run('reproduce', 'lenet', '--epochs', '1', '--finetune-epochs', '0', '--limit', '300', '--ratios', '0.5', '--budgets', '0.1', '--merge', 'mean', '--multiple-of', '8', '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.is(rep.multipleOf, 8);
  assert.equal(rep.results[0].units.map((u: { after: number }) => u.after), [8, 24, 248]);
  assert.is(rep.results[0].ratio, 0.5);
  // a layer left unrounded (a budget's k below 8) is named in the notes
  assert.ok(rep.results[1].units.every((u: { layer: string; after: number }) => u.after % 8 === 0 || rep.notes.some((n: string) => n.includes(`${u.layer} keeps ${u.after} of`))), JSON.stringify(rep.results[1].units));
  assert.ok(rep.results[1].params.after <= 0.1 * rep.results[1].params.before);
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /Every layer's units rounded to a multiple of 8/);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<td>units per layer<\/td><td>rounded to multiples of 8<\/td>/);
});

C('reproduce --multiple-of with a small budget: the budget holds, and each layer it cannot round is named with why', () => {
  const out = tempDir('nm-cli-m64-');
  const r = run('reproduce', 'lenet', '--epochs', '1', '--limit', '300', '--finetune-epochs', '0', '--budgets', '0.003', '--merge', 'mean', '--multiple-of', '64', '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  const row = rep.results[0];
  assert.ok(row.params.after <= 0.003 * row.params.before, `${row.params.after} parameters break the budget`);
  // LeNet-5's 20- and 50-unit layers have no more than 64 units; the 500-unit one keeps fewer than 64
  assert.equal(rep.notes.filter((n: string) => n.startsWith('budget 0.003, units in multiples of 64: ')).map((n: string) => n.replace(/^.*?: /, '').replace(/ keeps .*?: /, ': ')), [
    'Conv2d(1→20, 5x5): it has 20 units, no more than 64',
    'Conv2d(20→50, 5x5): it has 50 units, no more than 64',
    `Linear(800→500): ${row.units[2].after} units are fewer than 64, and a budget is not rounded up`,
  ]);
});

C('reproduce reuses a finished checkpoint, resumes a cut-short one, and rejects another model\'s', () => {
  const d = tempDir('nm-reuse-');
  const c = join(d, 'lenet.safetensors');
  json(run('train', 'lenet', '--epochs', '1', '--limit', '300', '--checkpoint', c, '--json'));
  const r1 = run('reproduce', 'lenet', '--checkpoint', c, '--epochs', '2', '--limit', '300', '--finetune-epochs', '0', '--ratios', '0.5', '--out', join(d, 'o1'), '--json');
  assert.is(r1.status, 0, r1.stderr);
  assert.match(r1.stderr, /stopped after epoch 1 of 2; resuming/);
  assert.match(r1.stderr, /epoch 2\/2/);
  assert.not.match(r1.stderr, /epoch 1\/2/);
  const r2 = run('reproduce', 'lenet', '--checkpoint', c, '--epochs', '2', '--finetune-epochs', '0', '--ratios', '0.5', '--repair', '100', '--out', join(d, 'o2'), '--json');
  assert.is(r2.status, 0, r2.stderr);
  assert.match(r2.stderr, /reusing the trained lenet5/);
  assert.not.match(r2.stderr, /epoch \d/);
  assert.is(JSON.parse(r2.stdout).original.accuracy, JSON.parse(r1.stdout).original.accuracy);
  assert.type(JSON.parse(r2.stdout).results[0].accuracy.repaired, 'number');
  assert.is(JSON.parse(r1.stdout).results[0].accuracy.repaired, undefined);
  assert.match(readFileSync(join(d, 'o2', 'report.md'), 'utf8'), /\| merged \(mean\) \| mean \+ repair \| mean \+ fine-tune \| merged \(refit\) \| refit \+ fine-tune \|/);
  const dbn = join(d, 'dbn.safetensors');
  json(run('train', 'dbn', '--epochs', '1', '--limit', '200', '--checkpoint', dbn, '--json'));
  const bad = run('reproduce', 'lenet', '--checkpoint', dbn);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /^neuronmerge: .*dbn\.safetensors: checkpoint holds a dbn, not a lenet5\n$/);
});

needs(C, existsSync(SHARED_CIFAR) ? null : '../shared/datasets/cifar-10-jpeg75 is not here')('VGG-16 variant on the CIFAR-10 copy: merging at ratio 0 folds batch norm without changing accuracy; reproduce vgg', () => {
  const d = tempDir('nm-vgg-');
  const a = join(d, 'vgg.safetensors');
  const t = json(run('train', 'vgg', '--width-scale', '0.0625', '--epochs', '1', '--limit', '512', '--data', SHARED_CIFAR, '--checkpoint', a, '--json'));
  assert.equal(t.arch.widths, [4, 4, 8, 8, 16, 16, 16, 32, 32, 32, 32, 32, 32]);
  assert.is(t.arch.fc, 32);
  const m = json(run('merge', a, '--ratio', '0', '--no-recalibrate', '--out', join(d, 'm.safetensors'), '--data', SHARED_CIFAR, '--json'));
  assert.is(m.arch.convBias, true);
  assert.is(m.accuracy.after, m.accuracy.before);
  assert.is(m.accuracy.before, t.testAccuracy);
  // batch-norm re-estimation after merging and after pruning: recorded, and it changes what the model computes
  const plain = json(run('merge', a, '--ratio', '0.5', '--no-recalibrate', '--out', join(d, 'm5.safetensors'), '--data', SHARED_CIFAR, '--json'));
  const recal = json(run('merge', a, '--ratio', '0.5', '--recalibrate', '300', '--out', join(d, 'm5r.safetensors'), '--data', SHARED_CIFAR, '--json'));
  assert.is(plain.recalibrated, null);
  assert.is(recal.recalibrated, 300);
  assert.is.not(recal.accuracy.after, plain.accuracy.after);
  assert.equal(recal.arch, plain.arch);
  const pr = json(run('prune', a, '--ratio', '0.5', '--recalibrate', '300', '--out', join(d, 'p5r.safetensors'), '--data', SHARED_CIFAR, '--json'));
  assert.is(pr.recalibrated, 300);
  assert.is(pr.recalibrateCutout, 0);
  // re-estimated on cut-out images (an original trained with Cutout): recorded, and other statistics
  const cut = json(run('merge', a, '--ratio', '0.5', '--recalibrate', '300', '--recalibrate-cutout', '16', '--out', join(d, 'm5c.safetensors'), '--data', SHARED_CIFAR, '--json'));
  assert.is(cut.recalibrateCutout, 16);
  assert.equal(cut.arch, recal.arch);
  assert.is.not(cut.accuracy.after, recal.accuracy.after);
  const out = join(d, 'out');
  const r = json(run('reproduce', 'vgg', '--checkpoint', a, '--epochs', '1', '--ratios', '0.5', '--finetune-epochs', '1', '--limit', '256', '--recalibrate', '300', '--merge', 'mean', '--data', SHARED_CIFAR, '--out', out, '--json'));
  assert.is(r.recalibrated, 300);
  // the same merge and re-estimation as the command's, so the same accuracy before fine-tuning
  assert.is(r.results[0].accuracy.merged, recal.accuracy.after);
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /batch norms were re-estimated on 300 training images/);
  assert.is(r.model, 'vgg16');
  assert.is(r.results[0].units.length, 14);
  assert.equal(r.results[0].units.slice(0, 3).map((u: { after: number }) => u.after), [2, 2, 4]);
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.ok(Math.abs(rep.compressionRatio - (1 - rep.params.after / rep.params.before)) < 1e-12);
  assert.ok(rep.speedup.flops > 3);
  // the original's statistics: 1,000 test images a class, so the per-class mean is the accuracy
  assert.is(rep.original.perClass[3].name, 'cat');
  const mean = rep.original.perClass.reduce((s: number, c: { accuracy: number }) => s + c.accuracy, 0) / 10;
  assert.ok(Math.abs(mean - rep.original.accuracy) < 1e-9, `${mean} vs ${rep.original.accuracy}`);
  assert.is(rep.original.batchNorm.length, 14, 'the 13 convolutions\' and the fc\'s batch norms');
  assert.ok(rep.original.batchNorm.every((b: { min: number; median: number; max: number; units: number; small: number }) => b.min <= b.median && b.median <= b.max && b.max > 0 && b.small >= 0 && b.small < b.units));
  assert.is(rep.original.batchNorm[0].units, 4);
  // the same reproduction with cut-out re-estimation images: recorded, and the fine-tunings of the run
  // before (other statistics) are not reused
  const again = run('reproduce', 'vgg', '--checkpoint', a, '--epochs', '1', '--ratios', '0.5', '--finetune-epochs', '1', '--limit', '256', '--recalibrate', '300', '--recalibrate-cutout', '8', '--merge', 'mean', '--data', SHARED_CIFAR, '--out', out, '--json');
  assert.is(again.status, 0, again.stderr);
  assert.not.match(again.stderr, /done before/);
  const rc = JSON.parse(again.stdout);
  assert.is(rc.recalibrateCutout, 8);
  assert.is.not(rc.results[0].accuracy.merged, r.results[0].accuracy.merged);
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /re-estimated on 300 training images \(Cutout 8×8\)/);
});

C('--backend webgpu where no adapter can be had: trains on the CPU with a message', () => {
  const none = spawnSync(process.execPath, [bin, 'train', 'lenet', '--backend', 'webgpu', '--epochs', '1', '--limit', '500', '--json'], { encoding: 'utf8', env: { ...process.env, NEURONMERGE_WEBGPU_FLAGS: 'backend=d3d12' } });
  assert.is(none.status, 0, none.stderr);
  assert.match(none.stderr, /WebGPU is unavailable \(no WebGPU adapter: flags 'backend=d3d12': no adapter\); the CPU kernels run instead/);
  // one epoch on 500 digits: well above chance (10%)
  assert.ok(JSON.parse(none.stdout).testAccuracy > 0.5, none.stdout);
});

let adapter: string | null = null;
try {
  await webgpu();
} catch (e) {
  adapter = `no WebGPU adapter here (${(e as Error).message.split('\n')[0]})`;
}
needs(C, adapter)('--backend webgpu on an adapter: trains there, and the checkpoint evaluates to the same accuracy', () => {
  const d = tempDir('nm-gpu-');
  const c = join(d, 'g.safetensors');
  const r = spawnSync(process.execPath, [bin, 'train', 'dbn', '--widths', '16,8', '--backend', 'webgpu', '--epochs', '1', '--limit', '300', '--checkpoint', c, '--json'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /WebGPU: .*\n/);
  assert.match(r.stderr, /img\/s, WebGPU\)/);
  const t = JSON.parse(r.stdout);
  assert.is(json(run('eval', c, '--json')).accuracy, t.testAccuracy);
});

needs(C, adapter)('--backend webgpu runs every op through the WebGPU kernels: eval as the CPU, label smoothing and an exact resume', () => {
  const d = tempDir('nm-gpu-');
  const c = join(d, 'l.safetensors');
  const args = ['dbn', '--widths', '16,8', '--epochs', '2', '--limit', '300', '--label-smoothing', '0.1', '--checkpoint', c, '--json'];
  const first = spawnSync(process.execPath, [bin, 'train', ...args.map((a) => (a === '2' ? '1' : a)), '--backend', 'webgpu'], { encoding: 'utf8' });
  assert.is(first.status, 0, first.stderr);
  assert.match(first.stderr, /WebGPU: /);
  const resumed = spawnSync(process.execPath, [bin, 'train', ...args, '--resume', c, '--backend', 'webgpu'], { encoding: 'utf8' });
  assert.is(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming .*: epoch 2 of 2, batch 0 of \d+ done/);
  const whole = spawnSync(process.execPath, [bin, 'train', ...args.map((a) => (a === c ? join(d, 'w.safetensors') : a)), '--backend', 'webgpu'], { encoding: 'utf8' });
  assert.is(whole.status, 0, whole.stderr);
  assert.is(JSON.parse(resumed.stdout).testAccuracy, JSON.parse(whole.stdout).testAccuracy, 'resumed and unbroken runs agree');
  const onGpu = json(run('eval', c, '--json', '--backend', 'webgpu')), onCpu = json(run('eval', c, '--json'));
  assert.ok(Math.abs(onGpu.accuracy - onCpu.accuracy) <= 2e-4, `${onGpu.accuracy} vs ${onCpu.accuracy}`);
  assert.ok(Math.abs(onGpu.loss - onCpu.loss) < 1e-4, `${onGpu.loss} vs ${onCpu.loss}`);
});

C('errors: unknown model, ratio out of range, missing data, wrong checkpoint: one line, non-zero exit', () => {
  const cases: [string[], RegExp][] = [
    [['reproduce', 'resnet'], /^neuronmerge: unknown model 'resnet' \(lenet, dbn, vgg, mlp or all\)\n$/],
    [['reproduce', 'lenet', '--ratios', '1.5'], /^neuronmerge: --ratios: each merge ratio must be in \[0, 1\), got '1\.5'\n$/],
    [['data', 'verify', 'cifar10', '--data-dir', tempDir('nm-empty-')], /^neuronmerge: cifar10 is not in .* and downloading is off: put cifar-10-binary\.tar\.gz there/],
    [['info', join(tmpdir(), 'no-such.safetensors')], /^neuronmerge: .*no-such\.safetensors: cannot read \(ENOENT\)\n$/],
    [['merge', join(tmpdir(), 'no-such.safetensors'), '--ratio', '0.5', '--out', join(tmpdir(), 'x.safetensors')], /^neuronmerge: .*no-such\.safetensors: cannot read \(ENOENT\)\n$/],
    [['merge', 'a.safetensors', '--out', 'b.safetensors'], /^neuronmerge: merge: give exactly one of --ratio, --threshold and --budget\n$/],
    [['merge', 'a.safetensors', '--ratio', '1', '--out', 'b.safetensors'], /^neuronmerge: --ratio must be in \[0, 1\), got '1'\n$/],
    [['train', 'vgg', '--widths', '8,8'], /^neuronmerge: --widths: vgg takes 13 or 14 widths, got 2\n$/],
    [['train', 'alexnet'], /^neuronmerge: unknown model 'alexnet' \(lenet, dbn, vgg, mlp\)\n$/],
    [['eval', join(tmpdir(), 'no-such.safetensors')], /cannot read \(ENOENT\)/],
  ];
  for (const [args, re] of cases) {
    const r = run(...args);
    assert.is(r.status, 1, args.join(' '));
    assert.match(r.stderr, re);
  }
});

C('the command runs on the native backend where it is built', () => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `process.argv = ['node', ${JSON.stringify(bin)}, 'info', 'lenet']; await import(${JSON.stringify(bin)}); const { kernelBackend } = await import(${JSON.stringify(join(process.cwd(), 'dist', 'src', 'backend', 'registry.js'))}); console.log('BACKEND=' + kernelBackend('gemm', 'float32'));`], { encoding: 'utf8' });
  assert.match(r.stdout, /BACKEND=native/, r.stderr);
});

C('info and data verify print what a user needs', () => {
  const i = run('info', 'lenet', '--json');
  assert.is(JSON.parse(i.stdout).params, 431080);
  const d = run('data', 'verify', 'mnist', '--json');
  assert.equal(JSON.parse(d.stdout).test.count, 10000);
});

C.run();
