// Loading the native addon through its fallbacks, in child processes: a missing or broken addon leaves
// the package on the TypeScript kernels with one message; NEURONMERGE_BACKEND forces a backend;
// NEURONMERGE_THREADS sizes the pool.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from './helpers.js';

const F = suite('fallback');
const entry = join(process.cwd(), 'dist', 'src', 'internal.js');
const script = `
  const nm = await import(${JSON.stringify(entry)});
  const y = nm.matmul(nm.tensor([[1, 2]]), nm.tensor([[3], [4]]));
  console.log(JSON.stringify({ gemm: nm.kernelBackend('gemm', 'float32'), y: y.item(), threads: nm.nativeAddon()?.threads() ?? null }));
`;

function run(env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NEURONMERGE_BACKEND: '', NEURONMERGE_QUIET: '', ...env }, encoding: 'utf8' });
  let out: { gemm?: string; y?: number; threads?: number | null } = {};
  try {
    out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  } catch {
    /* left empty: the assertions below say what was printed */
  }
  return { status: r.status, out, stderr: r.stderr };
}

F('a missing addon: TypeScript kernels, right answer, one message saying why', () => {
  const r = run({ NEURONMERGE_NATIVE_PATH: join(tmpdir(), 'no-such-addon.node') });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.out.gemm, 'js');
  assert.is(r.out.y, 11);
  const lines = r.stderr.split('\n').filter((l) => l.includes('native addon is not available'));
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /no-such-addon\.node: not built/);
});

F('a broken addon file: the load error is in the message, and the package still works', () => {
  const bad = join(tempDir('nm-addon-'), 'neuronmerge.node');
  writeFileSync(bad, 'not a shared object');
  const r = run({ NEURONMERGE_NATIVE_PATH: bad });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.out.gemm, 'js');
  assert.is(r.out.y, 11);
  assert.match(r.stderr, /neuronmerge\.node: .*(invalid ELF|too short|file)/i);
});

F('NEURONMERGE_BACKEND=js skips the addon silently; =native without it is an error at first use', () => {
  const js = run({ NEURONMERGE_BACKEND: 'js' });
  assert.is(js.out.gemm, 'js');
  assert.not.match(js.stderr, /native addon/);
  const nat = run({ NEURONMERGE_BACKEND: 'native', NEURONMERGE_NATIVE_PATH: join(tmpdir(), 'missing.node') });
  assert.is.not(nat.status, 0);
  assert.match(nat.stderr, /NEURONMERGE_BACKEND=native, but no backend of that name is available/);
});

F('with the built addon: native kernels; NEURONMERGE_THREADS sizes the pool', () => {
  const r = run({ NEURONMERGE_THREADS: '1' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.out.gemm, 'native');
  assert.is(r.out.y, 11);
  assert.is(r.out.threads, 1);
  const r3 = run({ NEURONMERGE_THREADS: '3' });
  assert.is(r3.out.threads, 3);
});

F.run();
