// `reproduce NETWORK` with no options takes the network's best measured recipe (the one table,
// src/experiment/networks.ts); `--paper` the paper's setting; a rule that falls back to another on a
// network is not among its defaults.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { buildModel, mergeModel, NETWORK_NAMES, NETWORKS } from '../src/internal.js';
import { tempDir } from './helpers.js';

const D = suite('defaults');
const bin = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
const dir = tempDir('nm-defaults-');
const short = ['--widths', '4,8,16', '--epochs', '1', '--limit', '300', '--ratios', '0.5', '--finetune-epochs', '1', '--json'];

D('reproduce lenet: the network\'s rules and fine-tuning recipe; --paper: the mean rule and plain fine-tuning; --no-distill', () => {
  const best = JSON.parse(run('reproduce', 'lenet', ...short, '--out', join(dir, 'best')).stdout);
  const r = NETWORKS.lenet;
  assert.equal(best.results[0].merges.map((m: { rule: string }) => m.rule), r.rules);
  assert.equal(best.finetune, { epochs: 1, lr: r.finetune.lr, schedule: r.finetune.schedule, weightDecay: r.finetune.weightDecay, distill: r.finetune.distill ? { temperature: 4, weight: 0.9 } : null });
  assert.is(best.paper, undefined);
  const paper = JSON.parse(run('reproduce', 'lenet', ...short, '--paper', '--out', join(dir, 'paper')).stdout);
  const p = r.paper.finetune;
  assert.equal(paper.results[0].merges.map((m: { rule: string }) => m.rule), ['mean']);
  assert.equal(paper.finetune, { epochs: 1, lr: p.lr, schedule: p.schedule, weightDecay: p.weightDecay, distill: null });
  assert.is(paper.paper, true);
  // the two settings differ where it matters: the best distils, the paper's does not
  assert.ok(r.finetune.distill && !p.distill);
  const plain = JSON.parse(run('reproduce', 'lenet', ...short, '--no-distill', '--merge', 'mean', '--out', join(dir, 'plain')).stdout);
  assert.is(plain.finetune.distill, null);
  assert.is(plain.finetune.schedule, r.finetune.schedule);
  // the same original in all three (one seed, one recipe of training): only the fine-tuning differs
  assert.is(plain.original.accuracy, best.original.accuracy);
  assert.is(paper.original.accuracy, best.original.accuracy);
  assert.is.not(paper.results[0].accuracy.finetuned, best.results[0].accuracy.finetuned);
});

D('no network lists a rule among its defaults that falls back to another on it (scaled through sigmoid units)', () => {
  for (const name of NETWORK_NAMES) {
    const s = NETWORKS[name];
    assert.is(s.rules[0], 'mean', `${name}: the paper's rule comes first`);
    for (const rule of s.rules.filter((x) => x === 'scaled' || x === 'medoid' || x === 'compensate')) {
      const model = buildModel(s.quick.arch ?? s.arch(), 0);
      const notes = mergeModel(model, { ratio: 0.5, rule, seed: 0 }).notes;
      assert.equal(notes, [], `${name}: ${rule} falls back on this network`);
    }
  }
  // the check can fail: scaled does fall back on the DBN
  const dbn = buildModel(NETWORKS.dbn.quick.arch ?? NETWORKS.dbn.arch(), 0);
  assert.ok(mergeModel(dbn, { ratio: 0.5, rule: 'scaled', seed: 0 }).notes.length > 0);
  assert.not.ok(NETWORKS.dbn.rules.includes('scaled'));
});

D.run();
