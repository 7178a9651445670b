// docs/how-merging-works.md holds: its code blocks, run one after the other as one program, print
// what the document shows under each.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const H = suite('howto');
const doc = readFileSync('docs/how-merging-works.md', 'utf8');
const MARK = '--- end of block ---';

H('every code block of the worked example prints what the document shows', () => {
  const pairs = [...doc.matchAll(/```js\n([\s\S]*?)```\n\nprints\n\n```text\n([\s\S]*?)```/g)].map((m) => ({ code: m[1], shown: m[2].trim() }));
  assert.is(pairs.length, (doc.match(/```js\n/g) ?? []).length, 'each block is followed by what it prints');
  assert.ok(pairs.length >= 6, `${pairs.length} blocks`);
  const program = pairs.map((p) => `${p.code}\nconsole.log(${JSON.stringify(MARK)});\n`).join('');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', program], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const printed = r.stdout.split(`${MARK}\n`);
  assert.is(printed.length, pairs.length + 1);
  pairs.forEach((p, i) => assert.is(printed[i].trim(), p.shown, `block ${i + 1}`));
});

H('the hand-worked numbers in the text are the ones the blocks print', () => {
  // the network's output on (1, 1) and (-1, 1), worked out in the first section
  assert.match(doc, /y = 1·3 \+ 2·3 \+ 0\.5·6 \+ 3·4 = 24/);
  assert.match(doc, /hidden units \[1, 2; 0\] \[1, 2; 0\] \[2, 4; 0\] \[2\.5, 1; 0\.5\], next layer reads 1, 2, 0\.5, 3; y = 24, 4/);
  // the mean of h0 and h2 moves y to 24.75; scaled gives back 24
  assert.match(doc, /y moves from 24 to 24\.75/);
  assert.match(doc, /next layer reads 1\.5, 2, 3; y = 24\.75, 4\.25\n.*next layer reads 1\.333, 2, 3; y = 24, 4/);
});

H.run();
