// What a new user and a hostile input must not be able to do: lose a file (an input overwritten, a
// device or a link replaced, two runs mixing their outputs), read a wrong figure (non-finite weights,
// a dataset under another's name, a page describing a rule that did not run), or redo hours of work
// after Ctrl-C. Each case runs the built command as a user would.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildModel, loadCheckpoint, readSafetensors, saveCheckpoint, Tensor, vgg16Arch, writeSafetensors } from '../src/internal.js';
import { accuracySpec, unitsSpec } from '../src/report/plots.js';
import { needs, refusesWith, tempDir } from './helpers.js';

const G = suite('guard');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
/** no download can succeed: datasets come only from the paths a test gives */
const OFFLINE = { NEURONMERGE_MIRRORS: 'http://127.0.0.1:9/' };
const run = (args: string[], env: Record<string, string> = {}, cwd?: string) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...OFFLINE, ...env }, cwd });
const refuses = refusesWith(run);

// a small trained LeNet-5 and its merged form, shared by the tests below
const dir = tempDir('nm-guard-');
const orig = join(dir, 'orig.safetensors');
const trained = run(['train', 'lenet', '--widths', '4,8,16', '--epochs', '1', '--limit', '300', '--checkpoint', orig]);
if (trained.status !== 0) throw new Error(trained.stderr);
const merged = join(dir, 'merged.safetensors');
const m = run(['merge', orig, '--ratio', '0.5', '--out', merged, '--no-eval', '--no-report']);
if (m.status !== 0) throw new Error(m.stderr);

G('no input is an output: --distill, the positional input and --report each named with the file at fault', () => {
  refuses(['finetune', merged, '--distill', orig, '--out', orig, '--epochs', '1', '--limit', '50'], `--out ${orig}: is also --distill ${orig}; write to another file so that it is kept`, dir);
  const x = join(dir, 'x.safetensors');
  refuses(['merge', orig, '--ratio', '0.5', '--out', x, '--report', x], `--report ${x}: is also --out ${x}; write to another file so that the two do not overwrite each other`, dir);
  refuses(['merge', orig, '--ratio', '0.5', '--out', x, '--report', orig], `--report ${orig}: is also the input; write to another file so that the input is kept`, dir);
  refuses(['explain', orig, '--ratio', '0.5', '--report', orig], `--report ${orig}: is also the input; write to another file so that the input is kept`, dir);
  refuses(['export', orig, '--out', orig], `--out ${orig}: is also the input; write to another file so that the input is kept`, dir);
  // through a link to the input, too
  const link = join(dir, 'link-to-orig.safetensors');
  symlinkSync(orig, link);
  refuses(['finetune', merged, '--distill', orig, '--out', link], `--out ${link}: is also --distill ${orig}; write to another file so that it is kept`, dir);
});

G('an output path is a regular file or nothing: a device and a pipe are refused, a link is written through', () => {
  refuses(['merge', orig, '--ratio', '0.5', '--out', '/dev/full', '--no-eval', '--no-report'], '--out /dev/full: is a device, not a regular file; give a file name', dir);
  assert.ok(lstatSync('/dev/full').isCharacterDevice());
  const fifo = join(dir, 'pipe');
  assert.is(spawnSync('mkfifo', [fifo]).status, 0);
  refuses(['merge', orig, '--ratio', '0.5', '--out', fifo, '--no-eval', '--no-report'], `--out ${fifo}: is a named pipe, not a regular file; give a file name`, dir);
  refuses(['finetune', merged, '--out', fifo], `--out ${fifo}: is a named pipe, not a regular file; give a file name`, dir);
  assert.ok(lstatSync(fifo).isFIFO());
  // a link stays a link; its target (not there yet) gets the model
  const sub = join(dir, 'links');
  mkdirSync(sub);
  const link = join(sub, 'out.safetensors');
  symlinkSync('target.safetensors', link);
  const r = run(['merge', orig, '--ratio', '0.5', '--out', link, '--no-eval', '--report', join(sub, 'page.html')]);
  assert.is(r.status, 0, r.stderr);
  assert.ok(lstatSync(link).isSymbolicLink(), 'the link was replaced by a file');
  assert.is(loadCheckpoint(join(sub, 'target.safetensors')).kind, 'merged');
  assert.equal(readdirSync(sub).sort(), ['out.safetensors', 'page.html', 'target.safetensors']);
});

G('non-finite weights are refused on loading, naming the file, the tensor and the index', () => {
  const { tensors, metadata } = readSafetensors(orig);
  const names = [...tensors.keys()];
  const bad = (file: string, at: number, v: number) => {
    const t = new Map([...tensors].map(([k, x]) => [k, x]));
    const w = tensors.get(names[at])!;
    const d = Float32Array.from(w.data);
    d[3] = v;
    t.set(names[at], new Tensor(d, w.shape));
    writeSafetensors(join(dir, file), t, metadata);
    return join(dir, file);
  };
  const nan = bad('nan.safetensors', 2, NaN), inf = bad('inf.safetensors', 0, -Infinity);
  const why = (f: string, t: string, v: string) => `${f}: tensor '${t}' holds ${v} at index 3; a model with non-finite weights cannot be used`;
  refuses(['merge', nan, '--ratio', '0.5', '--out', join(dir, 'q.safetensors')], why(nan, names[2], 'NaN'), dir);
  refuses(['eval', nan], why(nan, names[2], 'NaN'), dir);
  refuses(['explain', nan, '--ratio', '0.5'], why(nan, names[2], 'NaN'), dir);
  refuses(['finetune', nan, '--out', join(dir, 'q.safetensors')], why(nan, names[2], 'NaN'), dir);
  refuses(['info', inf], why(inf, names[0], '-Infinity'), dir);
  refuses(['finetune', merged, '--distill', inf, '--out', join(dir, 'q.safetensors')], why(inf, names[0], '-Infinity'), dir);
});

G('a second run writing the same output is refused while the first holds it; a dead run\'s lock is taken over', async () => {
  const out = join(dir, 'busy.safetensors');
  const first = spawn(process.execPath, [bin, 'finetune', merged, '--out', out, '--epochs', '30', '--limit', '3000'], { env: { ...process.env, ...OFFLINE }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  first.stderr!.on('data', (d) => (err += d));
  for (let i = 0; i < 200 && !/epoch 1\//.test(err); i++) await new Promise((r) => setTimeout(r, 50));
  const lock = readdirSync(dir).find((f) => f === '.busy.safetensors.lock');
  assert.ok(lock, 'the first run holds a lock beside its output');
  const holder = Number(readFileSync(join(dir, lock!), 'utf8'));
  const r = run(['merge', orig, '--ratio', '0.5', '--out', out, '--no-eval']);
  assert.is(r.status, 1);
  assert.is(r.stderr, `neuronmerge: --out ${out}: another neuronmerge run (process ${holder}) is writing it; wait for that run to end or write elsewhere\n`);
  first.kill('SIGKILL');
  await new Promise((r) => first.on('close', r));
  // the re-run child of a killed command exits with its parent; its lock is stale once it has
  for (let i = 0; i < 60; i++) {
    try {
      process.kill(holder, 0);
      await new Promise((r) => setTimeout(r, 100));
    } catch {
      break;
    }
  }
  const again = run(['merge', orig, '--ratio', '0.5', '--out', out, '--no-eval', '--no-report']);
  assert.is(again.status, 0, again.stderr);
  assert.is(loadCheckpoint(out).kind, 'merged');
  assert.not.ok(existsSync(join(dir, '.busy.safetensors.lock')), 'the lock is gone when the run ends');
});

/** starts the command, sends SIGINT once its stderr matches `when`, and returns its status and stderr */
async function interrupted(args: string[], when: RegExp): Promise<{ status: number | null; stderr: string }> {
  const p = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...OFFLINE }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '', sent = false;
  p.stderr!.on('data', (d) => {
    err += d;
    if (!sent && when.test(err)) {
      sent = true;
      p.kill('SIGINT');
    }
  });
  const status = await new Promise<number | null>((r) => p.on('close', (c) => r(c)));
  return { status, stderr: err };
}

G('Ctrl-C in finetune: exit 130 with where it stopped, the file marked unfinished, the same command resumes it bit for bit', async () => {
  const a = join(dir, 'ft-cut.safetensors'), b = join(dir, 'ft-whole.safetensors');
  const args = (out: string) => ['finetune', merged, '--out', out, '--epochs', '3', '--limit', '4000', '--seed', '2'];
  const r = await interrupted(args(a), /epoch 2\/3 \[/);
  assert.is(r.status, 130, r.stderr);
  assert.match(r.stderr, new RegExp(`neuronmerge: interrupted \\(SIGINT\\) at epoch 2 of 3, batch \\d+ of 63 \\(step \\d+ of 189\\); ${a.replace(/\./g, '\\.')} holds that point: the same command resumes it\\n$`));
  const info = run(['info', a]);
  assert.match(info.stdout, /^lenet5 \(finetuned, unfinished: epoch 1 of 3 done and \d+ steps of the next\)/);
  // another number of epochs would not continue the same run
  const other = run([...args(a).slice(0, 5), '2', ...args(a).slice(6)]);
  assert.is(other.stderr, `neuronmerge: --out ${a}: holds a fine-tuning of 3 epochs cut short after epoch 1; give --epochs 3 to resume it, or another --out\n`);
  const resumed = run(args(a));
  assert.is(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming .*ft-cut\.safetensors: epoch 2 of 3/);
  assert.match(resumed.stdout, /\(3 epochs, resumed, \d+ s\)/);
  const whole = run(args(b));
  assert.is(whole.status, 0, whole.stderr);
  const wa = loadCheckpoint(a).state, wb = loadCheckpoint(b).state;
  for (const [k, t] of wb) assert.equal(Array.from(wa.get(k)!.data), Array.from(t.data), `${k} differs between the interrupted-and-resumed run and the whole one`);
  assert.match(run(['info', a]).stdout, /^lenet5 \(finetuned\)/);
  const one = run(['finetune', merged, '--out', join(dir, 'ft-one.safetensors'), '--epochs', '1', '--limit', '100']);
  assert.match(one.stdout, /\(1 epoch, \d+ s\)/);
});

G('reproduce keeps its original in DIR/work: Ctrl-C while training it, and the rerun resumes it; one model per rule', async () => {
  const out = join(dir, 'rep');
  const args = ['reproduce', 'lenet', '--widths', '4,8,16', '--epochs', '2', '--limit', '6000', '--ratios', '0.5', '--merge', 'mean,lstsq', '--finetune-epochs', '1', '--out', out, '--json'];
  const r = await interrupted(args, /epoch 1\/2 \[/);
  assert.is(r.status, 130, r.stderr);
  assert.match(r.stderr, /interrupted \(SIGINT\) at epoch 1 of 2, .* holds that point: the same command resumes it/);
  const originals = readdirSync(join(out, 'work')).filter((f) => /^original-[0-9a-f]{12}\.safetensors$/.test(f));
  assert.is(originals.length, 1, 'the original is kept in the work folder');
  const again = run(args);
  assert.is(again.status, 0, again.stderr);
  assert.match(again.stderr, /stopped after epoch 0 of 2 \(and \d+ steps of the next\); resuming/);
  const rep = JSON.parse(again.stdout);
  assert.equal(readdirSync(join(out, 'models')).sort(), ['ratio-0.5-lstsq.safetensors', 'ratio-0.5-mean.safetensors', 'ratio-0.5-pruned.safetensors']);
  assert.equal(rep.results[0].models.rules, { mean: 'models/ratio-0.5-mean.safetensors', lstsq: 'models/ratio-0.5-lstsq.safetensors' });
  // the lstsq model on disk is the one the table reports after fine-tuning
  const ev = run(['eval', join(out, 'models', 'ratio-0.5-lstsq.safetensors'), '--json']);
  assert.is(JSON.parse(ev.stdout).accuracy, rep.results[0].merges.find((x: { rule: string }) => x.rule === 'lstsq').finetuned);
  // a third run trains nothing: the original is reused from the work folder
  const third = run(args);
  assert.match(third.stderr, /reusing the trained lenet5 in .*work\/original-/);
  assert.is(JSON.parse(third.stdout).original.accuracy, rep.original.accuracy);
});

G('Ctrl-C while reproduce measures the sensitivity: exit 130 at once, the layers measured kept, the rerun goes on from the next', async () => {
  const out = join(dir, 'rep-sens');
  const args = ['reproduce', 'lenet', '--epochs', '1', '--limit', '2000', '--budgets', '0.3', '--allocate', 'sensitivity', '--merge', 'refit', '--finetune-epochs', '1', '--out', out, '--json'];
  const r = await interrupted(args, /sensitivity: layer 0 /);
  assert.is(r.status, 130, r.stderr);
  const m = /neuronmerge: interrupted \(SIGINT\) while measuring the sensitivity of layer (\d+) \((\d) of 3 mergeable layers, (\d) done\); (\S+) holds the (layer|2 layers) measured: the same command goes on from there\n$/.exec(r.stderr);
  assert.ok(m, r.stderr.slice(-400));
  const [, , nth, done, partial] = m!;
  assert.is(Number(nth), Number(done) + 1);
  assert.ok(partial.startsWith(join(out, 'work', 'sensitivity-')) && partial.endsWith('.json.partial'), partial);
  const rows = JSON.parse(readFileSync(partial, 'utf8')).loss as number[][];
  assert.is(rows.length, Number(done));
  assert.not.match(r.stderr, /reproduce lenet: merging/, 'nothing after the measurement ran');
  const again = run(args);
  assert.is(again.status, 0, again.stderr);
  assert.ok(again.stderr.includes(`going on with the sensitivity measured before (${partial}: ${done} layer${done === '1' ? '' : 's'})`), again.stderr);
  assert.ok(again.stderr.includes(`sensitivity: layers 1 to ${done} of 3 measured before; going on from layer ${Number(done) + 1}`));
  assert.not.ok(existsSync(partial), 'the partial rows are gone once the table is whole');
  const whole = JSON.parse(readFileSync(partial.replace(/\.partial$/, ''), 'utf8'));
  assert.is(whole.loss.length, 3);
  assert.equal(whole.loss.slice(0, rows.length), rows, 'the kept rows are the table\'s');
  assert.is(JSON.parse(again.stdout).results.length, 1);
});

G('a command needs a dataset only where it evaluates, calibrates or trains; a CIFAR-shaped model merges and exports offline', () => {
  const d = tempDir('nm-offline-');
  const env = { NEURONMERGE_DATA: join(d, 'no-data') };
  const arch = vgg16Arch([4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], 16);
  const model = buildModel(arch, 1);
  const norm = { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] };
  const ck = join(d, 'vgg.safetensors');
  saveCheckpoint(ck, { arch, model, normalization: norm });
  const onnx = join(d, 'vgg.onnx');
  const e = run(['export', ck, '--out', onnx], env);
  assert.is(e.status, 0, e.stderr);
  const m1 = run(['merge', onnx, '--ratio', '0.5', '--no-eval', '--no-recalibrate', '--no-report', '--out', join(d, 'm.onnx')], env);
  assert.is(m1.status, 0, m1.stderr);
  const m2 = run(['merge', ck, '--ratio', '0.5', '--no-eval', '--no-recalibrate', '--no-report', '--out', join(d, 'm.safetensors')], env);
  assert.is(m2.status, 0, m2.stderr);
  assert.equal(loadCheckpoint(join(d, 'm.safetensors')).normalization, norm, 'the merged checkpoint keeps the input statistics');
  const p = run(['prune', ck, '--ratio', '0.5', '--no-eval', '--no-recalibrate', '--out', join(d, 'p.safetensors')], env);
  assert.is(p.status, 0, p.stderr);
  // what does need the data says so, and how to do without
  const cal = run(['prune', ck, '--ratio', '0.5', '--no-eval', '--out', join(d, 'p2.safetensors')], env);
  assert.is(cal.status, 1);
  assert.match(cal.stderr, /^neuronmerge: prune: re-estimating the batch norms \(--no-recalibrate skips it\) needs the dataset: cannot download cifar-10-binary\.tar\.gz/);
  // a checkpoint written before the statistics were recorded: export reads them from the dataset
  const old = join(d, 'old.safetensors');
  saveCheckpoint(old, { arch, model });
  const o = run(['export', old, '--out', join(d, 'old.onnx')], env);
  assert.is(o.status, 1);
  assert.match(o.stderr, /cannot download cifar-10-binary\.tar\.gz/);
});

const FASHION = '/usr/share/datasets/fashion-mnist';
const MNIST = join(process.cwd(), '..', 'shared', 'datasets', 'mnist');
needs(G, existsSync(FASHION) ? null : `${FASHION} is missing (apt-get install dataset-fashion-mnist)`)('Fashion-MNIST is named as such: by reproduce\'s title and report, and when given as MNIST', () => {
  const out = join(dir, 'fashion');
  const r = run(['reproduce', 'mlp', '--dataset', 'fashion-mnist', '--data', FASHION, '--widths', '32', '--epochs', '1', '--limit', '2000', '--ratios', '0.5', '--merge', 'mean', '--finetune-epochs', '0', '--out', out]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^\nmlp on Fashion-MNIST: original /);
  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(md, new RegExp(`Fashion-MNIST \\(${FASHION}\\)`));
  assert.not.match(md, /MNIST \(.*train-images/);
  assert.match(readFileSync(join(out, 'report.html'), 'utf8'), /<td>data<\/td><td>Fashion-MNIST \(\/usr\/share\/datasets\/fashion-mnist\)<\/td>/);
  refuses(['data', 'verify', 'mnist', '--data', FASHION], `${FASHION}: these files are Fashion-MNIST (their labels match its official files), not MNIST; name the set they are: fashion-mnist`, dir);
  refuses(['eval', orig, '--data', FASHION], `${FASHION}: these files are Fashion-MNIST (their labels match its official files), not MNIST; name the set they are: fashion-mnist`, dir);
  if (existsSync(MNIST)) refuses(['data', 'verify', 'fashion-mnist', '--data', MNIST], `${MNIST}: these files are MNIST (their labels match its official files), not Fashion-MNIST; name the set they are: mnist`, dir);
  const v = run(['data', 'verify', 'fashion-mnist', '--data', FASHION]);
  assert.match(v.stdout, new RegExp(`^fashion-mnist from ${FASHION}\\n`));
});

G('the page of a kept-unit rule describes that rule and rings the kept units; the mean rule\'s marks merged units', () => {
  const page = (rule: string) => {
    const f = join(dir, `page-${rule}.html`);
    const r = run(['merge', orig, '--ratio', '0.5', '--merge', rule, '--out', join(dir, `page-${rule}.safetensors`), '--report', f, '--calibration', '200']);
    assert.is(r.status, 0, r.stderr);
    return readFileSync(f, 'utf8');
  };
  const lstsq = page('lstsq');
  assert.not.match(lstsq, /k-means clusters/);
  assert.not.match(lstsq, /the mean of its members/);
  assert.match(lstsq, /no clustering: the units L1 pruning keeps stay/);
  assert.match(lstsq, /a ring marks a kept unit/);
  // LeNet-5 4,8,16 at ratio 0.5 keeps 2 + 4 + 8 units
  assert.is((lstsq.match(/<circle class="kept"/g) ?? []).length, 14);
  assert.is((lstsq.match(/<path class="merged"/g) ?? []).length, 0);
  const mean = page('mean');
  assert.match(mean, /k-means clusters, each merged into the mean of its members/);
  assert.is((mean.match(/<circle class="kept"/g) ?? []).length, 0);
  assert.ok((mean.match(/<path class="merged"/g) ?? []).length > 0);
  // a list of facts opens with its first fact, not an empty header row
  assert.match(mean, /<table class="facts"><tr><td>command<\/td>/);
});

G('report.html: the ratio column is named as such; accuracy in two panels, the second zoomed; units on a log axis', () => {
  const out = join(dir, 'rep-page');
  const r = run(['reproduce', 'lenet', '--checkpoint', orig, '--ratios', '0.5,0.8', '--merge', 'mean', '--finetune-epochs', '1', '--limit', '500', '--out', out, '--json']);
  assert.is(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /<table class="results"><tr><th>ratio<\/th><th>parameters kept<\/th><th>removed<\/th>/);
  assert.match(html, /<table class="facts"><tr><td>command<\/td>/);
  const spec = accuracySpec(rep) as { hconcat: { title: { text: string }; layer: { encoding: { y: { scale: { domain: number[] } } } }[] }[] };
  assert.equal(spec.hconcat.map((p) => p.title.text), ['before fine-tuning', 'after fine-tuning']);
  const after = rep.results.flatMap((x: { merges: { finetuned: number }[]; accuracy: { prunedFinetuned: number } }) => [...x.merges.map((y) => y.finetuned), x.accuracy.prunedFinetuned]);
  const [lo, hi] = spec.hconcat[1].layer[0].encoding.y.scale.domain;
  assert.ok(lo <= Math.min(...after, rep.original.accuracy) && hi >= Math.max(...after, rep.original.accuracy), 'every point inside the zoomed axis');
  const span = Math.max(...after, rep.original.accuracy) - Math.min(...after, rep.original.accuracy);
  assert.ok(hi - lo <= span * 1.2 + 0.005, `the after-fine-tuning axis spans ${lo}..${hi}, not zoomed to the data (span ${span})`);
  assert.equal(spec.hconcat[0].layer[0].encoding.y.scale.domain, [0, 1]);
  const units = unitsSpec(rep) as { encoding: { y: { scale: { type: string } } } };
  assert.is(units.encoding.y.scale.type, 'symlog');
  assert.match(html, /before fine-tuning/);
  assert.match(html, /after fine-tuning/);
});

G('--multiple-of: a layer it cannot round is named with why; a budget is never rounded up past itself', () => {
  const L = join(dir, 'wide.safetensors');
  const t = run(['train', 'lenet', '--widths', '20,50,100', '--epochs', '1', '--limit', '200', '--checkpoint', L]);
  assert.is(t.status, 0, t.stderr);
  const r = run(['merge', L, '--ratio', '0.5', '--multiple-of', '32', '--out', join(dir, 'r32.safetensors'), '--no-eval', '--no-report']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^note: Conv2d\(1→20, 5x5\) keeps 10 of 20 units, not a multiple of 32: it has 20 units, no more than 32$/m);
  for (const m of ['16', '32', '64']) {
    const b = run(['merge', L, '--budget', '0.1', '--multiple-of', m, '--out', join(dir, `b${m}.safetensors`), '--no-eval', '--no-report', '--json']);
    assert.is(b.status, 0, `--multiple-of ${m}: ${b.stderr}`);
    const res = JSON.parse(b.stdout);
    assert.ok(res.params.after <= 0.1 * res.params.before, `--multiple-of ${m} broke the budget`);
    for (const u of res.units) assert.ok(u.after === u.before || u.after % Number(m) === 0 || res.notes.some((n: string) => n.startsWith(`${u.layer} keeps ${u.after} of ${u.before} units`)), `--multiple-of ${m}: ${u.layer} at ${u.after} units without a note`);
  }
});

G('the environment: an empty variable is unset, too many threads draw a note, a bad NEURONMERGE_NATIVE_PATH is refused', () => {
  const empty = run(['info', 'lenet'], { NEURONMERGE_THREADS: '', NEURONMERGE_SIMD: '' });
  assert.is(empty.status, 0, empty.stderr);
  const many = run(['info', 'lenet'], { NEURONMERGE_THREADS: '1024' });
  assert.is(many.status, 0);
  assert.match(many.stderr, /^neuronmerge: note: NEURONMERGE_THREADS=1024 is more threads than the \d+ cores here; the kernels run slower when threads wait for cores \(leave it unset to use \d+\)\n$/);
  refuses(['info', 'lenet'], `NEURONMERGE_NATIVE_PATH=${join(dir, 'none.node')}: cannot load it (no such file)`, dir, { NEURONMERGE_NATIVE_PATH: join(dir, 'none.node') });
});

G('messages name models and counts as a user reads them; help texts say what each command takes', () => {
  const mlp = join(dir, 'mlp.safetensors');
  assert.is(run(['train', 'mlp', '--widths', '16', '--epochs', '1', '--limit', '200', '--checkpoint', mlp]).status, 0);
  assert.match(run(['info', mlp]).stdout, /^mlp \(original\): /);
  assert.match(run(['info', join(process.cwd(), 'test', 'fixtures', 'onnx', 'cnn.onnx')]).stdout, /^imported model \(original\): /);
  const ex = run(['explain', orig, '--ratio', '0.75', '--layer', '0', '--rules', 'mean', '--no-report']);
  assert.match(ex.stdout, /\n\s+0: \d+ units?: /);
  assert.not.match(ex.stdout, /: 1 units/);
  const prune = run(['prune', '--help']).stdout;
  assert.not.match(prune, /--merge/);
  const merge = run(['merge', '--help']).stdout.replace(/\s+/g, ' ');
  assert.match(merge, /calibration activations\), lstsq \(each/);
  const missing = spawnSync(process.execPath, ['scripts/onnx-accuracy.mjs', join(dir, 'none.onnx')], { encoding: 'utf8' });
  assert.is(missing.status, 1);
  assert.is(missing.stderr, `onnx-accuracy: ${join(dir, 'none.onnx')}: no such file\n`);
  assert.not.ok(existsSync('.npmrc'), 'npm reads no project config it would warn about');
});

G.run();
