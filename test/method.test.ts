// The method's options through the library and the command: staged compression composes (exact on
// duplicates, the same widths as one step); a sensitivity allocation meets its budget and pruning takes
// the same units per layer from the ratios merge prints; scaling rules and distillation run end to end
// and bad combinations are refused with one line.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  buildModel, compressCheckpoint, lenet5Arch, loadCheckpoint, mergeSites, noGrad, Rng, saveCheckpoint, stageWidths, tensor,
} from '../src/internal.js';
import type { Conv2d, Linear, Sequential } from '../src/internal.js';
import { tempDir } from './helpers.js';

const T = suite('method');
const dir = tempDir('nm-method-');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
const json = (args: string[]) => {
  const r = run([...args, '--json']);
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
};

T('stage widths go geometrically from n to k and end at k', () => {
  assert.equal(stageWidths([20, 50, 500], [5, 10, 50], 1, 2), [10, 22, 158]);
  assert.equal(stageWidths([20, 50, 500], [5, 10, 50], 2, 2), [5, 10, 50]);
  assert.equal(stageWidths([8], [8], 1, 3), [8]);
  for (let s = 1; s <= 4; s++) assert.ok(stageWidths([100], [3], s, 4)[0] <= stageWidths([100], [3], s - 1 || 1, 4)[0]);
});

T('stages compose: two steps on exact copies are exact and end at the one-step widths', async () => {
  // every unit has three copies of itself: merging to half and then to a quarter keeps the function
  const arch = lenet5Arch([8, 16, 32]);
  const model = buildModel(arch, 3);
  const rng = new Rng(4);
  for (const site of mergeSites(model)) {
    const layer = model.layers[site.index] as Linear | Conv2d;
    const n = site.units, fan = layer.weight.size / n, m = n / 4;
    if (layer.bias) for (let u = 0; u < n; u++) layer.bias.data[u] = rng.uniform(-0.2, 0.2);
    for (let u = m; u < n; u++) {
      layer.weight.data.copyWithin(u * fan, (u % m) * fan, (u % m + 1) * fan);
      if (layer.bias) layer.bias.data[u] = layer.bias.data[u % m];
    }
  }
  const file = join(dir, 'copies.safetensors');
  saveCheckpoint(file, { arch, model });
  const x = tensor(Float32Array.from({ length: 3 * 784 }, () => rng.uniform(0, 1)), [3, 1, 28, 28], { copy: false });
  const out = (m: Sequential) => {
    m.eval();
    return noGrad(() => m.forward(x)).data;
  };
  const want = out(model);
  const one = await compressCheckpoint(file, 'merge', { out: join(dir, 'one.safetensors'), ratio: 0.75, method: 'complete', eval: false, recalibrate: false });
  const two = await compressCheckpoint(file, 'merge', { out: join(dir, 'two.safetensors'), ratio: 0.75, method: 'complete', eval: false, recalibrate: false, stages: 2, stageEpochs: 0 });
  assert.equal(two.units.map((u) => u.after), one.units.map((u) => u.after));
  assert.equal(two.units.map((u) => u.after), [2, 4, 8]);
  assert.is(two.stages, 2);
  for (const f of ['one', 'two']) {
    const c = loadCheckpoint(join(dir, `${f}.safetensors`));
    const m = buildModel(c.arch, 0);
    m.loadStateDict(c.state);
    const got = out(m);
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
    assert.ok(worst < 1e-5, `${f}: outputs moved by ${worst}`);
  }
});

// a small trained LeNet-5 for the command
const orig = join(dir, 'orig.safetensors');
json(['train', 'lenet', '--widths', '6,12,40', '--epochs', '1', '--limit', '2000', '--checkpoint', orig]);

T('merge --budget --allocate sensitivity meets the budget; prune --ratio with the printed ratios keeps the same units', () => {
  const m = json(['merge', orig, '--budget', '0.2', '--allocate', 'sensitivity', '--calibration', '300', '--merge', 'scaled', '--out', join(dir, 'alloc.safetensors')]);
  assert.is(m.allocation, 'sensitivity');
  assert.ok(m.params.after <= 0.2 * m.params.before, `${m.params.after} of ${m.params.before}`);
  assert.ok(m.params.after > 0.15 * m.params.before, 'the budget is used');
  assert.equal(m.notes, []);
  const p = json(['prune', orig, '--ratio', m.ratios.map((r: number) => +r.toFixed(6)).join(','), '--out', join(dir, 'alloc-p.safetensors')]);
  assert.equal(p.units.map((u: { after: number }) => u.after), m.units.map((u: { after: number }) => u.after));
  assert.is(p.params.after, m.params.after);
  // the printed line says the same
  const text = run(['merge', orig, '--budget', '0.2', '--allocate', 'sensitivity', '--calibration', '300', '--merge', 'scaled', '--no-eval', '--out', join(dir, 'alloc2.safetensors')]).stdout;
  assert.match(text, new RegExp(`the same units per layer: --ratio ${m.ratios.map((r: number) => String(+r.toFixed(6)).replace('.', '\\.')).join(',')}\\n`));
});

T('merge in stages with fine-tuning between; distillation fine-tunes from the original', () => {
  const s = json(['merge', orig, '--ratio', '0.75', '--stages', '2', '--stage-epochs', '1', '--merge', 'scaled', '--out', join(dir, 'staged.safetensors')]);
  assert.is(s.stages, 2);
  assert.equal(s.units.map((u: { after: number }) => u.after), [2, 3, 10]);
  // the fine-tuning between the stages is what makes it differ from two plain steps
  const plain = json(['merge', orig, '--ratio', '0.75', '--stages', '2', '--stage-epochs', '0', '--merge', 'scaled', '--out', join(dir, 'staged0.safetensors')]);
  assert.equal(plain.units, s.units);
  assert.is.not(s.accuracy.after, plain.accuracy.after);
  const f = json(['finetune', join(dir, 'staged.safetensors'), '--distill', orig, '--epochs', '1', '--limit', '2000', '--schedule', 'onecycle', '--out', join(dir, 'ft.safetensors')]);
  assert.ok(f.accuracy.after >= f.accuracy.before - 0.05, `${f.accuracy.before} → ${f.accuracy.after}`);
  assert.is(loadCheckpoint(join(dir, 'ft.safetensors')).kind, 'finetuned');
  // --weight-decay reaches the optimizer: the same steps with a strong decay leave smaller weights
  const norm = (file: string) => [...loadCheckpoint(file).state.values()].reduce((p, t) => p + Array.from(t.data as ArrayLike<number>).reduce((q: number, v: number) => q + v * v, 0), 0);
  for (const wd of ['0', '1']) json(['finetune', join(dir, 'staged.safetensors'), '--epochs', '1', '--limit', '500', '--lr', '0.1', '--weight-decay', wd, '--out', join(dir, `wd${wd}.safetensors`)]);
  const [n0, n5] = [norm(join(dir, 'wd0.safetensors')), norm(join(dir, 'wd1.safetensors'))];
  assert.ok(n5 < 0.8 * n0, `weight decay 1: squared norm ${n5} against ${n0} without`);
  const bad = run(['finetune', join(dir, 'staged.safetensors'), '--weight-decay', '-1', '--out', join(dir, 'wdneg.safetensors')]);
  assert.is(bad.stderr, "neuronmerge: --weight-decay must be a number from 0 to 1, got '-1'\n");
  assert.is(bad.status, 1);
});

T('fine-tuning with Cutout: other weights than without from the same seed; reproduce keys and reports it', () => {
  const base = ['finetune', orig, '--epochs', '1', '--limit', '400', '--lr', '0.05'];
  json([...base, '--out', join(dir, 'ft-plain.safetensors')]);
  json([...base, '--cutout', '8', '--out', join(dir, 'ft-cut.safetensors')]);
  json([...base, '--out', join(dir, 'ft-plain2.safetensors')]);
  const first = (file: string) => Array.from(loadCheckpoint(file).state.values()[Symbol.iterator]().next().value!.data as Float32Array);
  assert.equal(first(join(dir, 'ft-plain2.safetensors')), first(join(dir, 'ft-plain.safetensors')), 'the same seed without Cutout: the same weights');
  assert.not.equal(first(join(dir, 'ft-cut.safetensors')), first(join(dir, 'ft-plain.safetensors')), 'Cutout changes the training images');
  const bad = run([...base, '--cutout', '-2', '--out', join(dir, 'ft-bad.safetensors')]);
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /--cutout/);
  // reproduce: a fine-tuning with Cutout is another work file than one without, and the report says so
  const out = join(dir, 'rep-cut');
  const args = ['reproduce', 'lenet', '--checkpoint', orig, '--epochs', '1', '--ratios', '0.5', '--finetune-epochs', '1', '--limit', '400', '--merge', 'mean', '--out', out];
  const plain = json(args);
  const cut = json([...args, '--finetune-cutout', '8']);
  assert.is(plain.finetune.cutout, undefined);
  assert.is(cut.finetune.cutout, 8);
  assert.is.not(cut.results[0].accuracy.finetuned, plain.results[0].accuracy.finetuned);
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /Cutout 8×8\./);
});

T('reproduce reports every rule asked for, side by side, with the pruning baseline', () => {
  const out = join(dir, 'rep');
  const r = json(['reproduce', 'lenet', '--checkpoint', orig, '--epochs', '1', '--ratios', '0.5', '--finetune-epochs', '0', '--merge', 'mean,fitted,compensate', '--out', out]);
  const x = r.results[0];
  assert.equal(x.merges.map((m: { rule: string }) => m.rule), ['mean', 'fitted', 'compensate']);
  assert.is(x.merges[0].merged, x.accuracy.merged, 'the first rule is the headline');
  for (const m of x.merges) {
    assert.is(m.finetuned, m.merged, `${m.rule}: no fine-tuning, the same figure`);
    // the figure is the kept model's: eval of the file the report names gives it again
    assert.is(json(['eval', join(out, x.models.rules[m.rule])]).accuracy, m.merged, `${m.rule}: the kept model`);
  }
  assert.is(r.recalibrated, null, 'LeNet-5 has no batch norm to re-estimate');
  assert.match(r.machine, /, \d+ cores; (native kernels, (avx512|avx2|generic), \d+ threads|TypeScript kernels)$/, 'the report names the kernels and instruction set');
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, /\| merged \(mean\) \| mean \+ fine-tune \| merged \(fitted\) \| fitted \+ fine-tune \| merged \(compensate\) \| compensate \+ fine-tune \| pruned \| pruned \+ fine-tune \|/);
  assert.match(readFileSync(join(out, 'accuracy.svg'), 'utf8'), /merged \(fitted\)/);
  // the teaching view of each rule: the same clusters as the merge, the output shift of that rule
  const shifts = ['mean', 'compensate', 'fitted'].map((rule) => json(['explain', orig, '--ratio', '0.5', '--merge', rule, '--rules', rule]).ratios[0].layers.map((l: { outputShift: number }) => l.outputShift));
  for (const s of shifts) assert.ok(s.length === 3 && s.every((v: number) => v > 0 && Number.isFinite(v)));
  assert.is.not(shifts[1][0], shifts[2][0], 'compensate and fitted fold the others in differently');
});

T('reproduce --budgets: a row per budget, spread by sensitivity, recorded in the report', () => {
  const out = join(dir, 'rep-budget');
  const r = json(['reproduce', 'lenet', '--checkpoint', orig, '--epochs', '1', '--ratios', '0.5', '--budgets', '0.3', '--allocate', 'sensitivity', '--finetune-epochs', '0', '--merge', 'fitted,mean', '--out', out]);
  assert.is(r.results.length, 2);
  const b = r.results[1];
  assert.is(b.ratio, null);
  assert.is(b.budget.fraction, 0.3);
  assert.is(b.budget.allocate, 'sensitivity');
  assert.is(b.budget.ratios.length, 3);
  assert.ok(b.params.after <= 0.3 * b.params.before, `${b.params.after} of ${b.params.before}`);
  assert.equal(b.units.map((u: { after: number; before: number }) => u.after), b.units.map((u: { before: number }, i: number) => Math.round((1 - b.budget.ratios[i]) * u.before)));
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, /\| budget 0\.3 \(sensitivity\) \| /);
  assert.match(md, /Budget 0\.3 \(sensitivity; ratios /);
});

T('reproduce --budgets without --ratios: the budget rows only, and the plots still drawn', () => {
  const out = join(dir, 'rep-budget-only');
  const r = json(['reproduce', 'lenet', '--checkpoint', orig, '--epochs', '1', '--budgets', '0.3', '--finetune-epochs', '0', '--merge', 'mean', '--out', out]);
  assert.equal(r.results.map((x: { ratio: number | null; budget?: { fraction: number } }) => [x.ratio, x.budget?.fraction]), [[null, 0.3]]);
  assert.match(readFileSync(join(out, 'accuracy.svg'), 'utf8'), /<svg/);
});

T('merge --merge refit through the command: the same units as lstsq, the accuracy measured', () => {
  const a = json(['merge', orig, '--ratio', '0.75', '--merge', 'refit', '--calibration', '300', '--no-report', '--out', join(dir, 'refit.safetensors')]);
  const b = json(['merge', orig, '--ratio', '0.75', '--merge', 'lstsq', '--calibration', '300', '--no-report', '--out', join(dir, 'lstsq.safetensors')]);
  assert.equal(a.units, b.units);
  assert.equal(loadCheckpoint(join(dir, 'refit.safetensors')).arch, loadCheckpoint(join(dir, 'lstsq.safetensors')).arch);
  assert.is(json(['eval', join(dir, 'refit.safetensors')]).accuracy, a.accuracy.after, 'the accuracy is the written model\'s');
  assert.ok(a.accuracy.after > a.accuracy.before - 0.5, `refit at 0.75 keeps most of the original: ${a.accuracy.before} → ${a.accuracy.after}`);
  assert.is.not(a.accuracy.after, b.accuracy.after, 'refit is not lstsq');
});

T('bad method requests: one line each', () => {
  const refuses = (args: string[], msg: string) => {
    const r = run(args);
    assert.is(r.stderr, `neuronmerge: ${msg}\n`, args.join(' '));
    assert.is(r.status, 1);
  };
  const out = join(dir, 'x.safetensors');
  refuses(['merge', orig, '--ratio', '0.5', '--merge', 'max', '--out', out], "--merge must be mean, scaled, medoid, fitted, compensate, lstsq, refit, got 'max'");
  refuses(['merge', orig, '--ratio', '0.5', '--allocate', 'sensitivity', '--out', out], 'merge: --allocate sensitivity spreads a --budget; give one');
  refuses(['prune', orig, '--ratio', '0.5', '--budget', '0.3', '--out', out], 'prune: give exactly one of --ratio and --budget');
  refuses(['merge', orig, '--threshold', '0.5', '--method', 'ward', '--stages', '2', '--out', out], 'merge: --stages needs --ratio or --budget (a threshold decides the units only as it merges)');
  refuses(['reproduce', 'lenet', '--budgets', '0.2,0', '--out', join(dir, 'r')], "--budgets must list fractions in (0, 1] separated by commas, got '0'");
  refuses(['reproduce', 'lenet', '--merge', 'mean,avg', '--out', join(dir, 'r')], "--merge must list rules from mean, scaled, medoid, fitted, compensate, lstsq, refit, got 'avg'");
  const dbn = join(dir, 'dbn.safetensors');
  json(['train', 'dbn', '--widths', '8,8', '--epochs', '1', '--limit', '200', '--checkpoint', dbn]);
  refuses(['finetune', orig, '--distill', dbn, '--out', out], `--distill ${dbn}: the teacher is a dbn, the model being fine-tuned a lenet5`);
});

T.run();
