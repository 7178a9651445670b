// OptionError: a library error names each option as {name}; the library words it by the option's
// field name, the command by its flag.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { compressCheckpoint, OptionError, quote } from '../src/internal.js';

const E = suite('errors');
const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');
const lenet = join(process.cwd(), 'models', 'lenet5.safetensors');

E('an option error words its options by name, or by any wording given; quoted text keeps its braces', () => {
  const e = new OptionError(`merge: {multipleOf} needs {ratio} or {budget}; ${quote('out{1}.json')} ({eval:false} skips it)`);
  assert.is(e.message, 'merge: multipleOf needs ratio or budget; out{1}.json (eval: false skips it)');
  assert.equal(e.options, ['multipleOf', 'ratio', 'budget', 'eval']);
  const flag = (o: string, off: boolean) => (off ? `--no-${o}` : `--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  assert.is(e.worded(flag), 'merge: --multiple-of needs --ratio or --budget; out{1}.json (--no-eval skips it)');
  assert.ok(e instanceof Error);
});

E('compressCheckpoint rejects bad options with an OptionError naming the fields, before any work; the command names the flags', async () => {
  let caught: unknown = null;
  try {
    await compressCheckpoint(lenet, 'merge', { out: '/tmp/neuronmerge-errors-test.safetensors', threshold: 1, multipleOf: 8 });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof OptionError, String(caught));
  assert.is((caught as OptionError).message, 'merge: multipleOf needs ratio or budget (a threshold decides the units only as it merges)');
  let out = '';
  try {
    execFileSync(process.execPath, [CLI, 'merge', lenet, '--out', '/tmp/neuronmerge-errors-test.safetensors', '--threshold', '1', '--multiple-of', '8'], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    out = (e as { stderr: string }).stderr;
  }
  assert.is(out.trim(), 'neuronmerge: merge: --multiple-of needs --ratio or --budget (a threshold decides the units only as it merges)');
  // an output that is the input: the option named, the path as given
  await compressCheckpoint(lenet, 'merge', { out: lenet, ratio: 0.5 }).then(() => assert.unreachable('wrote over its input'), (e: Error) => {
    assert.instance(e, OptionError);
    assert.is(e.message, `out ${lenet}: is also the input; write to another file so that the input is kept`);
  });
});

E.run();
