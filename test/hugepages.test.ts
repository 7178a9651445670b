// The re-run with huge pages (src/cli/hugepages.ts, src/cli/rerun.ts): when it happens, that it passes the arguments
// and the exit code through, prints once, and that the opt-outs hold.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { envWithoutRerun, HUGEPAGE_TUNABLES, RERUN_MARK, wantsHugePageRerun } from '../src/cli/hugepages.js';

const H = suite('hugepages');

H('wantsHugePageRerun: Linux with GLIBC_TUNABLES unset only, NEURONMERGE_HUGEPAGES=0 opts out', () => {
  assert.is(wantsHugePageRerun({}, 'linux'), true);
  assert.is(wantsHugePageRerun({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, 'linux'), false);
  assert.is(wantsHugePageRerun({ GLIBC_TUNABLES: '' }, 'linux'), false);
  assert.is(wantsHugePageRerun({ NEURONMERGE_HUGEPAGES: '0' }, 'linux'), false);
  assert.is(wantsHugePageRerun({ NEURONMERGE_HUGEPAGES: '1' }, 'linux'), true);
  assert.is(wantsHugePageRerun({}, 'darwin'), false);
});

H('envWithoutRerun drops what the re-run added, and only that', () => {
  assert.equal(envWithoutRerun({ GLIBC_TUNABLES: HUGEPAGE_TUNABLES, [RERUN_MARK]: '1', HOME: '/h' }), { HOME: '/h' });
  assert.equal(envWithoutRerun({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2', HOME: '/h' }), { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2', HOME: '/h' });
  assert.is(process.env[RERUN_MARK], undefined, 'the test process itself was not re-run');
});

H('a script importing it first runs once, re-run with the tunable, with its arguments and exit code', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nm-hp-'));
  const script = join(dir, 'probe.mjs');
  const mod = join(process.cwd(), 'dist', 'src', 'cli', 'rerun.js');
  writeFileSync(script, `import ${JSON.stringify(mod)};\nconsole.log('T=' + (process.env.GLIBC_TUNABLES ?? 'unset') + ' A=' + process.argv.slice(2).join(','));\nprocess.exit(Number(process.argv[2]));\n`);
  const env = (extra: Record<string, string>) => {
    const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
    if (!('GLIBC_TUNABLES' in extra)) delete e.GLIBC_TUNABLES;
    if (!('NEURONMERGE_HUGEPAGES' in extra)) delete e.NEURONMERGE_HUGEPAGES;
    return e;
  };
  const run = (extra: Record<string, string>, ...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: env(extra) });
  const r = run({}, '3', 'x y');
  assert.is(r.status, 3, r.stderr);
  const expected = process.platform === 'linux' ? HUGEPAGE_TUNABLES : 'unset';
  assert.is(r.stdout, `T=${expected} A=3,x y\n`);
  const off = run({ NEURONMERGE_HUGEPAGES: '0' }, '0');
  assert.is(off.status, 0, off.stderr);
  assert.is(off.stdout, 'T=unset A=0\n');
  const own = run({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, '0');
  assert.is(own.stdout, 'T=glibc.malloc.arena_max=2 A=0\n');
});

H.run();
