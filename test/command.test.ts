// The command as a user meets it when something is wrong: each bad input gets one exact line on stderr
// and exit code 1 before any work starts, nothing the user had is changed, and no partial file is left.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCheckpoint, readSafetensors, stateSize, writeSafetensors } from '../src/internal.js';
import { needs, refusesWith, tempDir } from './helpers.js';

const C = suite('command');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const run = (args: string[], env: Record<string, string> = {}) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
const refuses = refusesWith(run);

// a small trained LeNet-5 shared by the tests below
const dir = tempDir('nm-cmd-');
const orig = join(dir, 'orig.safetensors');
const trained = run(['train', 'lenet', '--widths', '4,8,16', '--epochs', '1', '--limit', '300', '--checkpoint', orig, '--json']);
if (trained.status !== 0) throw new Error(trained.stderr);

C('numbers: an empty ratio list, a fractional count or seed, a bad NEURONMERGE_THREADS name the option', () => {
  refuses(['reproduce', 'lenet', '--ratios', '', '--out', join(dir, 'o')], '--ratios must list merge ratios separated by commas, got an empty list', dir);
  refuses(['train', 'lenet', '--epochs', '1.5'], "--epochs must be an integer from 1 to 10000, got '1.5'", dir);
  refuses(['train', 'lenet', '--seed', '1.5'], "--seed must be an integer from 0 to 2147483647, got '1.5'", dir);
  refuses(['train', 'lenet', '--label-smoothing', '1'], "--label-smoothing must be a number from 0 to 0.999, got '1'", dir);
  refuses(['train', 'lenet', '--cutout', '2.5'], "--cutout must be an integer from 0 to 10000, got '2.5'", dir);
  refuses(['merge', orig, '--ratio', '0.5', '--n-init', 'x', '--out', join(dir, 'm.safetensors')], "--n-init must be an integer from 1 to 1000, got 'x'", dir);
  refuses(['info', 'lenet'], 'NEURONMERGE_THREADS=two: must be an integer from 1 to 1024', dir, { NEURONMERGE_THREADS: 'two' });
  refuses(['info', 'lenet'], 'NEURONMERGE_THREADS=0: must be an integer from 1 to 1024', dir, { NEURONMERGE_THREADS: '0' });
  refuses(['info', 'lenet'], 'NEURONMERGE_BACKEND=cuda: must be js, native, webgpu', dir, { NEURONMERGE_BACKEND: 'cuda' });
  refuses(['info', 'lenet'], 'NEURONMERGE_GRAD_POOL=1g: must be a number of MiB, 0 or more', dir, { NEURONMERGE_GRAD_POOL: '1g' });
});

C('output paths are checked before any work: a folder, a path through a file, the input itself', () => {
  const sub = join(dir, 'sub');
  mkdirSync(sub, { recursive: true });
  refuses(['merge', orig, '--ratio', '0.5', '--out', sub], `--out ${sub}: is a folder; give a file name`, dir);
  refuses(['merge', orig, '--ratio', '0.5', '--out', join(orig, 'm.safetensors')], `--out ${join(orig, 'm.safetensors')}: ${orig} is a file, not a folder`, dir);
  refuses(['merge', orig, '--ratio', '0.5', '--out', orig], `--out ${orig}: is also the input; write to another file so that the input is kept`, dir);
  refuses(['prune', orig, '--ratio', '0.5', '--out', orig], `--out ${orig}: is also the input; write to another file so that the input is kept`, dir);
  refuses(['finetune', orig, '--out', orig], `--out ${orig}: is also the input; write to another file so that the input is kept`, dir);
  refuses(['reproduce', 'lenet', '--out', orig], `--out ${orig}: is a file, not a folder`, dir);
  refuses(['reproduce', 'lenet', '--checkpoint', sub], `--checkpoint ${sub}: is a folder; give a file name`, dir);
  refuses(['train', 'lenet', '--checkpoint', sub], `--checkpoint ${sub}: is a folder; give a file name`, dir);
  // reproduce all checks every network's data before the first one trains
  refuses(['reproduce', 'all', '--data', join(dir, 'no-cifar'), '--out', join(dir, 'all')], `${join(dir, 'no-cifar')}: no such file or folder`, dir);
  // a relative path is named as the user typed it
  const r = spawnSync(process.execPath, [bin, 'merge', 'orig.safetensors', '--ratio', '0.5', '--out', './orig.safetensors'], { encoding: 'utf8', cwd: dir });
  assert.is(r.stderr, 'neuronmerge: --out ./orig.safetensors: is also the input; write to another file so that the input is kept\n');
});

C('checkpoints record what they hold; reproduce --checkpoint takes only an original', () => {
  const m = join(dir, 'merged.safetensors');
  const r = run(['merge', orig, '--ratio', '0.5', '--out', m, '--no-eval', '--json']);
  assert.is(r.status, 0, r.stderr);
  assert.is(loadCheckpoint(orig).kind, 'original');
  assert.is(loadCheckpoint(m).kind, 'merged');
  const p = join(dir, 'pruned.safetensors');
  assert.is(run(['prune', orig, '--ratio', '0.5', '--out', p, '--no-eval']).status, 0);
  assert.is(loadCheckpoint(p).kind, 'pruned');
  const f = join(dir, 'ft.safetensors');
  assert.is(run(['finetune', m, '--epochs', '1', '--limit', '100', '--out', f]).status, 0);
  assert.is(loadCheckpoint(f).kind, 'finetuned');
  assert.is(JSON.parse(run(['info', f, '--json']).stdout).kind, 'finetuned');
  refuses(['reproduce', 'lenet', '--checkpoint', m, '--out', join(dir, 'rep')], `${m}: checkpoint holds a merged model; reproduce's --checkpoint takes a trained original (as training lenet writes it)`, dir);
  refuses(['reproduce', 'lenet', '--checkpoint', f, '--out', join(dir, 'rep')], `${f}: checkpoint holds a finetuned model; reproduce's --checkpoint takes a trained original (as training lenet writes it)`, dir);
});

C('a checkpoint whose metadata lies is refused before anything is allocated; a folder is named as one', () => {
  const { tensors, metadata } = readSafetensors(orig);
  const lie = (name: string, meta: Record<string, string>) => {
    const p = join(dir, name);
    writeSafetensors(p, tensors, { ...metadata, ...meta });
    return p;
  };
  const opt = JSON.parse(metadata.optimizer);
  const huge = lie('optim-lie.safetensors', { optimizer: JSON.stringify({ ...opt, params: 1e12 }) });
  const t0 = Date.now();
  const modelTensors = [...tensors.keys()].filter((k) => k.startsWith('model.')).length;
  refuses(['eval', huge], `${huge}: metadata field 'optimizer' names 1000000000000 parameters; the file holds ${modelTensors} model tensors and optimizer state for ${opt.params}`, dir);
  assert.ok(Date.now() - t0 < 20000, 'refused quickly');
  const arch = JSON.parse(metadata.arch);
  const wide = lie('wide-lie.safetensors', { arch: JSON.stringify({ ...arch, widths: [3000, 3000, 3000] }) });
  const want = stateSize({ ...arch, widths: [3000, 3000, 3000] }), held = stateSize(arch);
  assert.ok(want > 3e8 && held < 1e4);
  refuses(['info', wide], `${wide}: metadata field 'arch' describes a model of ${want.toLocaleString('en')} values, the file holds ${held.toLocaleString('en')}`, dir);
  const kind = lie('kind-lie.safetensors', { kind: 'distilled' });
  refuses(['info', kind], `${kind}: metadata field 'kind' is "distilled", not one of original, merged, pruned, finetuned`, dir);
  const sub = join(dir, 'a-folder');
  mkdirSync(sub, { recursive: true });
  refuses(['eval', sub], `${sub}: is a folder, not a checkpoint file`, dir);
  refuses(['merge', sub, '--ratio', '0.5', '--out', join(dir, 'x.safetensors')], `${sub}: is a folder, not a checkpoint file`, dir);
});

C('--resume without --checkpoint keeps writing the file it resumed from, and says so', () => {
  const c = join(dir, 'resume.safetensors');
  copyFileSync(orig, c);
  const r = run(['train', 'lenet', '--widths', '4,8,16', '--epochs', '2', '--limit', '300', '--resume', c, '--json']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`train lenet: checkpoints go to ${c.replace(/[.]/g, '\\.')} \\(the file resumed from\\)`));
  assert.match(r.stderr, /resuming .*resume\.safetensors: epoch 2 of 2, batch 0 of 5 done \(step 5 of 10\); \d+ s of CPU time and \d+ s so far; about \d+ s left/);
  assert.is(loadCheckpoint(c).train!.epoch, 2);
  assert.match(readFileSync(`${c}.log`, 'utf8'), /epoch 2\/2: loss/);
  assert.is(JSON.parse(r.stdout).checkpoint, c);
});

const SHARED_CIFAR = join(process.cwd(), '..', 'shared', 'datasets', 'cifar-10-jpeg75', 'cifar-10-batches-bin');
needs(C, existsSync(SHARED_CIFAR) ? null : '../shared/datasets/cifar-10-jpeg75 is not here')('a CIFAR-10 batch file cut to 5,000 whole records is refused, naming the file', () => {
  const d = tempDir('nm-cut-');
  for (const f of readdirSync(SHARED_CIFAR)) symlinkSync(join(SHARED_CIFAR, f), join(d, f));
  const cut = join(d, 'data_batch_3.bin');
  const whole = readFileSync(join(SHARED_CIFAR, 'data_batch_3.bin'));
  // a real file in place of the link: the first 5,000 records
  spawnSync('rm', [cut]);
  writeFileSync(cut, whole.subarray(0, 5000 * 3073));
  refuses(['data', 'verify', 'cifar10', '--data', d], `${cut}: holds 5,000 records; a CIFAR-10 batch file holds exactly 10,000 (cut short or not a CIFAR-10 batch)`, d);
});

const rerunChildren = (pid: number): number[] => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).flatMap((p) => {
  try {
    const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid ? [Number(p)] : [];
  } catch {
    return [];
  }
});
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/^\S+ \S+ Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, 'x'));
  } catch {
    return false;
  }
};
needs(C, process.platform === 'linux' ? null : 'the re-run with huge pages happens on Linux only')('SIGKILL of the command ends its re-run child too: no training left running', async () => {
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES;
  delete env.NEURONMERGE_HUGEPAGES;
  const p = spawn(process.execPath, [bin, 'train', 'lenet', '--epochs', '50', '--limit', '3000'], { env, stdio: 'ignore' });
  let kids: number[] = [];
  for (let i = 0; i < 100 && kids.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    kids = rerunChildren(p.pid!);
  }
  assert.is(kids.length, 1, 'the command re-ran itself');
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok(alive(kids[0]), 'the child is training');
  p.kill('SIGKILL');
  let gone = false;
  for (let i = 0; i < 40 && !gone; i++) {
    await new Promise((r) => setTimeout(r, 100));
    gone = !alive(kids[0]);
  }
  if (!gone) process.kill(kids[0], 'SIGKILL');
  assert.ok(gone, `child ${kids[0]} still running 4 s after its parent was killed`);
});

C('--version prints the package version; reproduce names the command as typed in its report', () => {
  const v = run(['--version']);
  assert.is(v.status, 0);
  assert.is(v.stdout.trim(), JSON.parse(readFileSync('package.json', 'utf8')).version);
  const out = join(dir, 'rep-title');
  const r = run(['reproduce', 'lenet', '--checkpoint', orig, '--finetune-epochs', '0', '--ratios', '0.5', '--out', out]);
  assert.is(r.status, 0, r.stderr);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.is(md.split('\n')[0], `# neuronmerge reproduce lenet --checkpoint ${orig} --finetune-epochs 0 --ratios 0.5 --out ${out}`);
  assert.is(JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')).command, `reproduce lenet --checkpoint ${orig} --finetune-epochs 0 --ratios 0.5 --out ${out}`);
  assert.equal(readdirSync(out).sort(), ['accuracy.svg', 'drop.svg', 'models', 'report.html', 'report.json', 'report.md', 'units.svg']);
  assert.equal(readdirSync(join(out, 'models')).sort(), ['ratio-0.5-mean.safetensors', 'ratio-0.5-pruned.safetensors', 'ratio-0.5-refit.safetensors'], 'no fine-tuning: no work folder, the compressed models, one per rule (LeNet-5\'s: mean and refit)');
});

C.run();
