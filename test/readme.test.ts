// The README says what holds: its environment table is the one the command checks, and its library
// example is examples/merge-lenet.mjs, which runs and prints what the README shows it printing.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ENVIRONMENT } from '../src/internal.js';

const R = suite('readme');
const readme = readFileSync('README.md', 'utf8');

R('the environment table lists every variable the command checks, as ENVIRONMENT describes it', () => {
  const rows = new Map([...readme.matchAll(/^\| `(NEURONMERGE_[A-Z_]+)` \| ([^|]+) \| ([^|]+) \|$/gm)].map((m) => [m[1], [m[2].trim(), m[3].trim()]]));
  assert.equal([...rows.keys()].sort(), ENVIRONMENT.map((v) => v.name).sort());
  for (const v of ENVIRONMENT) assert.equal(rows.get(v.name), [v.accepts, v.meaning], v.name);
});

R('the library example is examples/merge-lenet.mjs and prints what the README says', () => {
  const example = readFileSync('examples/merge-lenet.mjs', 'utf8').split('\n').filter((l) => !l.startsWith('//')).join('\n').trim();
  const block = /```js\n([\s\S]*?)```/.exec(readme)![1].trim();
  assert.is(block, example);
  const r = spawnSync(process.execPath, ['examples/merge-lenet.mjs'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const shown = /prints, in about[^\n]*\n\n```\n([\s\S]*?)```/.exec(readme)![1];
  const lines = r.stdout.trim().split('\n');
  // the unit counts and parameters are exact; the accuracies depend on the CPU's summation order
  assert.equal(lines.slice(0, 4), shown.trim().split('\n').slice(0, 4));
  // each accuracy within a point and a half of the README's (another CPU's summation order moves the
  // trained weights a little; a broken merge or fine-tuning moves them by tens of points)
  const figures = (text: string) => [...text.matchAll(/([\d.]+)%/g)].slice(-3).map((m) => Number(m[1]));
  const got = figures(lines.slice(4, 6).join('\n')), want = figures(shown.trim().split('\n').slice(4, 6).join('\n'));
  assert.is(got.length, 3, lines.slice(4).join('\n'));
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= 1.5, `${['original', 'merged', 'fine-tuned'][i]} ${g}% against the README's ${want[i]}%`));
  assert.ok(got[2] > got[1] + 10, 'fine-tuning recovers what merging lost');
});

R.run();
