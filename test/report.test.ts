// The report writers on a made-up report: the accuracy plot draws one line per method and stage with a
// legend for each, the markdown names the command as typed, and every file is written whole.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { accuracySpec, renderSvg, reportMarkdown, saveCheckpoint, buildModel, lenet5Arch, writeFileAtomic, writeReports } from '../src/index.js';
import type { Report } from '../src/index.js';
import { tempDir } from './helpers.js';

const R = suite('report');
const report: Report = {
  command: 'reproduce lenet --ratios 0.5,0.8', recalibrated: null, model: 'lenet5', data: 'MNIST', quick: false, seed: 3, machine: 'a CPU, 2 cores', seconds: 12,
  original: {
    accuracy: 0.99, params: 431080, flops: 4586000, epochs: 12, arch: { model: 'lenet5', widths: [20, 50, 500], classes: 10, inChannels: 1, inSize: 28 },
    perClass: [{ name: 'cat', accuracy: 0.875 }, { name: 'dog', accuracy: 0.5 }],
    batchNorm: [{ index: 1, layer: 'Conv2d(3→64, 3x3)', units: 64, min: 0.001, median: 0.5, max: 2, small: 3 }],
  },
  results: [0.5, 0.8].map((ratio, i) => ({
    ratio, units: [{ layer: 'Conv2d(1→20, 5x5)', before: 20, after: 10 }], params: { before: 431080, after: 100000 - 50000 * i }, compressionRatio: 0.77 + 0.1 * i,
    flops: { before: 4586000, after: 1000000 }, bytes: { before: 1, after: 1 },
    accuracy: { original: 0.99, merged: 0.81 - 0.3 * i, finetuned: 0.985 - 0.01 * i, pruned: 0.8 - 0.45 * i, prunedFinetuned: 0.984 - 0.01 * i },
    speedup: { flops: 4, measured: 2.5 }, explain: [],
  })),
};

R('accuracy.svg: a line per method and stage through the report\'s points, and both legends', async () => {
  const svg = await renderSvg(accuracySpec(report));
  const lines = [...svg.matchAll(/aria-roledescription="line mark" d="([^"]+)"/g)];
  assert.is(lines.length, 4, 'merged and pruned, before and after fine-tuning');
  for (const [method, stage, key] of [['merged', 'before', 'merged'], ['merged', 'after', 'finetuned'], ['pruned \\(L1\\)', 'before', 'pruned'], ['pruned \\(L1\\)', 'after', 'prunedFinetuned']] as const) {
    const label = new RegExp(`aria-label="[^"]*test accuracy: ([0-9.]+)%; method: ${method}; stage: ${stage} fine-tuning[^"]*"[^>]*aria-roledescription="line mark"`);
    const m = label.exec(svg);
    assert.ok(m, `${method} ${stage}: no line`);
    assert.ok(Math.abs(Number(m![1]) - 100 * report.results[0].accuracy[key]) < 1e-4, `${method} ${stage}: starts at ${m![1]}%`);
  }
  const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((t) => t[1]);
  for (const t of ['method', 'merged', 'pruned (L1)', 'stage', 'before fine-tuning', 'after fine-tuning']) assert.ok(texts.includes(t), `legend entry '${t}' missing`);
});

R('report.md is titled by the command as typed; writeReports leaves the four files and nothing else', async () => {
  const md = reportMarkdown(report);
  assert.is(md.split('\n')[0], '# neuronmerge reproduce lenet --ratios 0.5,0.8');
  assert.match(md, /Test accuracy per class: cat 87\.50%, dog 50\.00%\./);
  assert.match(md, /\| Conv2d\(3→64, 3x3\) \| 64 \| 0\.00100 \| 0\.500 \| 2\.00 \| 3 \|/);
  const d = tempDir('nm-report-');
  await writeReports(d, report);
  assert.equal(readdirSync(d).sort(), ['accuracy.svg', 'report.json', 'report.md', 'units.svg']);
  const json = JSON.parse(readFileSync(join(d, 'report.json'), 'utf8'));
  assert.is(json.command, report.command);
  assert.is(json.compressionRatio, report.results[0].compressionRatio);
});

R('a write that fails names the path given, not a temporary file, and leaves nothing behind', () => {
  const d = tempDir('nm-atomic-');
  const file = join(d, 'a.json');
  writeFileSync(file, 'good');
  // a folder in the way of the rename, and a file in the way of the folder
  const folder = join(d, 'taken');
  mkdirSync(join(folder, 'inside'), { recursive: true });
  assert.throws(() => writeFileAtomic(folder, 'x'), (e: Error) => e.message.startsWith(`${folder}: cannot write (`) && !e.message.includes('.tmp'));
  assert.throws(() => writeFileAtomic(join(file, 'b.json'), 'x'), (e: Error) => e.message.startsWith(`${join(file, 'b.json')}: cannot write (`) && !e.message.includes('.tmp'));
  const arch = lenet5Arch([2, 2, 4]);
  assert.throws(() => saveCheckpoint(folder, { arch, model: buildModel(arch, 0) }), (e: Error) => e.message.startsWith(`${folder}: cannot write checkpoint (`) && e.message.endsWith('the previous file is untouched') && !e.message.includes('.tmp'));
  assert.equal(readdirSync(d).sort(), ['a.json', 'taken']);
  assert.is(readFileSync(file, 'utf8'), 'good');
});

R.run();
