// The re-run with huge pages (src/runtime/hugepages.ts, src/runtime/rerun.ts): when it happens, that it passes the arguments
// and the exit code through, prints once, and that the opt-outs hold.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { envWithoutRerun, HUGEPAGE_TUNABLES, RERUN_MARK, wantsHugePageRerun } from '../src/runtime/hugepages.js';
import { tempDir } from './helpers.js';

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
  const dir = tempDir('nm-hp-');
  const script = join(dir, 'probe.mjs');
  const mod = join(process.cwd(), 'dist', 'src', 'runtime', 'rerun.js');
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

H('stopping the first process (SIGTERM) stops the re-run too', async () => {
  if (process.platform !== 'linux') return;
  const dir = tempDir('nm-hp-');
  const script = join(dir, 'sleeper.mjs');
  const mod = join(process.cwd(), 'dist', 'src', 'runtime', 'rerun.js');
  writeFileSync(script, `import ${JSON.stringify(mod)};\nconsole.log('PID=' + process.pid + ' T=' + process.env.GLIBC_TUNABLES);\nsetTimeout(() => {}, 30000);\n`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.GLIBC_TUNABLES;
  delete env.NEURONMERGE_HUGEPAGES;
  const parent = spawn(process.execPath, [script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    parent.stdout!.on('data', (d) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    parent.on('exit', () => reject(new Error(`exited before printing: ${out}`)));
  });
  const m = /^PID=(\d+) T=(.*)$/.exec(line);
  assert.ok(m, line);
  const childPid = Number(m![1]);
  assert.is.not(childPid, parent.pid, 'the script runs in a second process');
  assert.is(m![2], HUGEPAGE_TUNABLES);
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => parent.on('exit', (code, signal) => resolve({ code, signal })));
  parent.kill('SIGTERM');
  const how = await exited;
  assert.is(how.signal, 'SIGTERM', 'the first process dies of the re-run\'s signal');
  const alive = () => {
    try {
      process.kill(childPid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 40 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.is(alive(), false, 'the re-run is gone');
});

H.run();
