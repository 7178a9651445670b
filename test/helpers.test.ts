// The test helpers' own contract: a temporary directory a test makes is gone when its process ends.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('test helpers');
const helpers = join(fileURLToPath(new URL('.', import.meta.url)), 'helpers.js');

test('tempDir: the directories and their files are removed when the process exits', () => {
  const code = `import { tempDir } from ${JSON.stringify(helpers)};
import { writeFileSync, existsSync } from 'node:fs';
const a = tempDir('nm-helper-'), b = tempDir('nm-helper-');
writeFileSync(a + '/file.bin', new Uint8Array(1024));
console.log(JSON.stringify({ a, b, made: existsSync(a + '/file.bin') && existsSync(b) }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const { a, b, made } = JSON.parse(r.stdout.trim());
  assert.ok(made, 'the child made its directories');
  assert.not.equal(a, b);
  assert.not.ok(existsSync(a), `${a} is still there`);
  assert.not.ok(existsSync(b), `${b} is still there`);
});

test.run();
