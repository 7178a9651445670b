// The trained originals shipped in models/: each evaluates to the accuracy models/README.md and the
// README's results give it, and a reproduction takes it without training.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { needs, tempDir } from './helpers.js';

const M = suite('models');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
const table = readFileSync('models/README.md', 'utf8');
const rows = [...table.matchAll(/^\| `([\w.-]+\.safetensors)` \| [^|]+ \| ([\d,]+) \| ([\d.]+)% \|/gm)].map((m) => ({ file: join('models', m[1]), params: Number(m[2].replace(/,/g, '')), accuracy: Number(m[3]) }));

const SHARED_CIFAR = join(process.cwd(), '..', 'shared', 'datasets', 'cifar-10-jpeg75', 'cifar-10-batches-bin');
const readme = readFileSync('README.md', 'utf8');
const inReadme = (accuracy: number) => readme.includes(`Original ${accuracy.toFixed(2)}%`) || readme.includes(`Original\n${accuracy.toFixed(2)}%`) || readme.includes(`\n${accuracy.toFixed(2)}%. `);

M('every shipped MNIST original evaluates to its listed accuracy and parameter count, the one its report and the README give', () => {
  assert.is(rows.length, 3, 'models/README.md lists the LeNet-5, DBN and VGG-16 originals');
  for (const [r, report] of [[rows[0], 'lenet-default.json'], [rows[1], 'dbn-default.json']] as const) {
    const e = JSON.parse(run('eval', r.file, '--json').stdout);
    assert.is((100 * e.accuracy).toFixed(2), r.accuracy.toFixed(2), r.file);
    assert.is(e.params, r.params, r.file);
    assert.is(e.kind, 'original');
    assert.is(JSON.parse(readFileSync(join('docs', 'results', report), 'utf8')).original.accuracy, e.accuracy, `${report} was made from ${r.file}`);
    assert.ok(inReadme(r.accuracy), `README gives ${r.accuracy}%`);
  }
});

needs(M, existsSync(SHARED_CIFAR) ? null : '../shared/datasets/cifar-10-jpeg75 is not here')('the shipped VGG-16 original: 14,987,722 parameters, its listed accuracy on the CIFAR-10 copy, the README\'s', () => {
  const r = rows[2];
  assert.is(r.file, join('models', 'vgg16.safetensors'));
  assert.is(r.params, 14987722);
  const e = JSON.parse(run('eval', r.file, '--data', SHARED_CIFAR, '--json').stdout);
  assert.is(e.params, r.params);
  assert.is(e.kind, 'original');
  assert.is((100 * e.accuracy).toFixed(2), r.accuracy.toFixed(2), r.file);
  assert.ok(inReadme(r.accuracy), `README gives ${r.accuracy}%`);
});

needs(M, existsSync(SHARED_CIFAR) ? null : '../shared/datasets/cifar-10-jpeg75 is not here')('the shipped merged VGG-16: its report\'s parameters and accuracy after fine-tuning, the README\'s row', () => {
  const file = join('docs', 'results', 'vgg16-full-merged.safetensors');
  const row = JSON.parse(readFileSync(join('docs', 'results', 'vgg16-full-cutout.json'), 'utf8')).results[0];
  const e = JSON.parse(run('eval', file, '--data', SHARED_CIFAR, '--json').stdout);
  assert.is(e.params, row.params.after);
  assert.is(e.params, 1054186);
  assert.ok(Math.abs(e.accuracy - row.accuracy.finetuned) <= 0.0005, `${e.accuracy} against the report's ${row.accuracy.finetuned}`);
  const pct = (100 * row.accuracy.finetuned).toFixed(2);
  assert.match(readme, new RegExp(`\\| VGG-16 [^\\n]*\\| refit ${pct.replace('.', '\\.')}% \\|`), `the README's VGG-16 row gives refit ${pct}%`);
});

M('reproduce --checkpoint models/lenet5.safetensors trains nothing', () => {
  const out = tempDir('nm-models-');
  const r = run('reproduce', 'lenet', '--checkpoint', rows[0].file, '--ratios', '0.5', '--merge', 'mean', '--finetune-epochs', '0', '--out', out, '--json');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /reusing the trained lenet5 in models\/lenet5\.safetensors/);
  assert.not.match(r.stderr, /epoch \d/);
  assert.is((100 * JSON.parse(r.stdout).original.accuracy).toFixed(2), rows[0].accuracy.toFixed(2));
});

M.run();
