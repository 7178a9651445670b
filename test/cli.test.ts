// The real command end to end on tiny settings: report files and their figures; clear one-line errors.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const C = suite('cli');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });

C('reproduce lenet on tiny settings writes report.json and report.md with consistent figures', () => {
  const out = mkdtempSync(join(tmpdir(), 'nm-cli-'));
  const r = run('reproduce', 'lenet', '--epochs', '1', '--finetune-epochs', '1', '--limit', '300', '--ratios', '0.5,0.8', '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  for (const f of ['original', 'merged', 'finetuned', 'pruned']) assert.type(rep.accuracy[f], 'number', `accuracy.${f}`);
  assert.type(rep.params.before, 'number');
  assert.type(rep.params.after, 'number');
  assert.ok(Math.abs(rep.compressionRatio - (1 - rep.params.after / rep.params.before)) < 1e-12);
  assert.ok(rep.speedup.flops > 1 && rep.speedup.measured > 0);
  assert.is(rep.results.length, 2);
  assert.ok(rep.results[1].params.after < rep.results[0].params.after);
  assert.equal(rep.results[0].units.map((u: { after: number }) => u.after), [10, 25, 250]);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, /\| 0\.5 \| /);
  assert.match(md, /Conv2d\(1→20, 5x5\) 20→10/);
  assert.match(md, /## What merging did to each layer/);
  const ex = rep.results[0].explain;
  assert.is(ex.length, 3);
  assert.is(ex[0].clusters, 10);
  assert.ok(ex.every((e: { outputShift: number; spread: number }) => e.outputShift > 0 && e.outputShift < 2 && e.spread > 0 && e.spread < 1.5));
  for (const f of ['accuracy.svg', 'units.svg']) {
    const svg = readFileSync(join(out, f), 'utf8');
    assert.match(svg, /^<svg /, f);
    assert.ok(svg.length > 2000, `${f} looks empty`);
  }
  assert.match(readFileSync(join(out, 'units.svg'), 'utf8'), /merged at 0\.8/);
});

C('reproduce dbn on tiny settings: RBM pretraining, merge, prune, reports', () => {
  const out = mkdtempSync(join(tmpdir(), 'nm-cli-dbn-'));
  const r = run('reproduce', 'dbn', '--epochs', '2', '--finetune-epochs', '1', '--limit', '3000', '--ratios', '0.5', '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
  assert.is(rep.model, 'dbn');
  assert.equal(rep.results[0].units.map((u: { after: number }) => u.after), [250, 250, 1000]);
  assert.is(rep.params.before, 1665010);
  assert.ok(rep.accuracy.original > 0.5, `original ${rep.accuracy.original}`);
});

C('errors: unknown model, ratio out of range, missing data, wrong checkpoint: one line, non-zero exit', () => {
  const cases: [string[], RegExp][] = [
    [['reproduce', 'resnet'], /^neuronmerge: unknown model 'resnet' \(dbn, lenet, vgg or all\)\n$/],
    [['reproduce', 'lenet', '--ratios', '1.5'], /a merge ratio must be in \[0, 1\), got '1\.5'/],
    [['data', 'verify', 'cifar10', '--data-dir', mkdtempSync(join(tmpdir(), 'nm-empty-'))], /^neuronmerge: cifar10 is not in .* and downloading is off: put cifar-10-binary\.tar\.gz there/],
    [['info', join(tmpdir(), 'no-such.safetensors')], /^neuronmerge: .*no-such\.safetensors: cannot read \(ENOENT\)\n$/],
  ];
  for (const [args, re] of cases) {
    const r = run(...args);
    assert.is.not(r.status, 0, args.join(' '));
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
