// A reproduction stopped part-way (a crash, a closed terminal) and run again continues where it was:
// fine-tunings resume exactly from their step checkpoints in <out>/work/, finished ones and sensitivity
// measurements are reused, and the report is the one an unbroken run writes. Other settings start
// fresh beside the old work instead of picking it up.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { loadCheckpoint } from '../src/internal.js';
import { reproduce } from '../src/experiment/reproduce.js';
import type { ReproduceOptions } from '../src/experiment/reproduce.js';
import type { Report } from '../src/report/types.js';
import { tempDir } from './helpers.js';

const T = suite('resume');
const dir = tempDir('nm-resume-');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const orig = join(dir, 'orig.safetensors');
const trained = spawnSync(process.execPath, [bin, 'train', 'lenet', '--widths', '6,12,40', '--epochs', '1', '--limit', '1000', '--checkpoint', orig], { encoding: 'utf8' });
if (trained.status !== 0) throw new Error(trained.stderr);

class Stop extends Error {}
// the progress lines reach the log callback (on a terminal they would redraw a bar instead)
Object.defineProperty(process.stderr, 'isTTY', { value: false });

// 300 images at batch 64: 5 steps an epoch; checkpoints at steps 3, 6, 9
const settings = (out: string, log: (l: string) => void): ReproduceOptions => ({
  checkpoint: orig, epochs: 1, limit: 300, finetuneEpochs: 2, checkpointEvery: 3, ratios: [0.5], budgets: [0.3], allocate: 'sensitivity',
  rules: ['mean', 'lstsq'], out, log, command: 'reproduce lenet (test)',
});

/** what must not depend on being stopped: every accuracy, the allocation, the widths, the parameters */
const figures = (r: Report) => r.results.map((x) => ({ ratio: x.ratio, budget: x.budget, units: x.units, params: x.params, accuracy: x.accuracy, merges: x.merges }));

T('a reproduction stopped mid-fine-tuning and run again gives the unbroken run\'s report and weights', async () => {
  const a = join(dir, 'a'), b = join(dir, 'b');
  const whole = await reproduce('lenet', settings(a, () => {}));
  // the second run stops inside the third fine-tuning, in its second epoch, one step past a checkpoint
  let begun = 0;
  const stopped = await reproduce('lenet', settings(b, (l) => {
    if (/: fine-tuning .*checkpoints in /.test(l)) begun++;
    if (begun === 3 && /^epoch 2\/2 \S+ 2\/5 /.test(l)) throw new Stop('stopped');
  })).then(() => null, (e) => e);
  assert.instance(stopped, Stop, `the run stopped where the test stopped it: ${stopped}`);
  const lines: string[] = [];
  const again = await reproduce('lenet', settings(b, (l) => lines.push(l)));
  assert.equal(figures(again), figures(whole));
  assert.ok(lines.some((l) => /^reusing the sensitivity measured before /.test(l)), 'the sensitivity is not measured again');
  assert.is(lines.filter((l) => /: all 2 epochs done before .*; reusing it$/.test(l)).length, 2, 'two fine-tunings had finished');
  assert.ok(lines.some((l) => /^resuming .*: epoch 2 of 2, batch 1 of 5 done \(step 6 of 10\)/.test(l)), lines.join('\n'));
  assert.is(lines.filter((l) => /^epoch 1\/2 /.test(l)).length, 5 * 3, 'only the unstarted fine-tunings run their first epoch (3 of 6)');
  // the compressed models, weights only, where the report says: eval gives the report's accuracy
  for (const x of again.results) {
    for (const [which, acc] of [['merged', x.accuracy.finetuned], ['pruned', x.accuracy.prunedFinetuned]] as const) {
      const file = join(b, x.models![which]);
      const ev = spawnSync(process.execPath, [bin, 'eval', file, '--json'], { encoding: 'utf8' });
      assert.is(ev.status, 0, ev.stderr);
      assert.is(JSON.parse(ev.stdout).accuracy, acc, file);
      assert.is(loadCheckpoint(file).optimizer, null, 'no optimizer state in the model files');
    }
  }
  // the same bits in every fine-tuned checkpoint
  const files = readdirSync(join(a, 'work')).filter((f) => f.endsWith('.safetensors')).sort();
  assert.is(files.length, 6, files.join(', '));
  assert.equal(readdirSync(join(b, 'work')).filter((f) => f.endsWith('.safetensors')).sort(), files);
  for (const f of files) {
    const x = loadCheckpoint(join(a, 'work', f)), y = loadCheckpoint(join(b, 'work', f));
    assert.is(x.kind, 'finetuned');
    for (const [name, t] of x.state) assert.equal(Array.from(y.state.get(name)!.data), Array.from(t.data), `${f}: ${name}`);
  }
});

T('a rerun with other settings starts fresh beside the earlier work', async () => {
  const a = join(dir, 'a');
  const tuned = () => readdirSync(join(a, 'work')).filter((f) => f.endsWith('.safetensors')).length;
  const before = tuned();
  const lines: string[] = [];
  await reproduce('lenet', { ...settings(a, (l) => lines.push(l)), finetuneEpochs: 1, budgets: [], rules: ['mean'] });
  assert.not.ok(lines.some((l) => /continuing from|reusing it/.test(l)), lines.join('\n'));
  assert.is(tuned(), before + 2, 'merged and pruned fine-tunings of the new settings');
  const r = await reproduce('lenet', { ...settings(a, () => {}), finetuneEpochs: 1, budgets: [], rules: ['mean'], finetuneLr: 0.02 });
  assert.is(tuned(), before + 4, 'another learning rate is another fine-tuning');
  assert.is(r.finetune?.lr, 0.02);
});

T.run();
