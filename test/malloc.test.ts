// Malloc reuse (setMallocReuse in src/backend/native.ts, native/addon.cc): freed large blocks come back
// without page faults when on, fresh mappings fault page by page with glibc's defaults; the
// environment variable and the command's default; the state is reported.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { nativeAddon } from '../src/internal.js';
import { HUGEPAGE_TUNABLES } from '../src/runtime/hugepages.js';
import { needs, tempDir } from './helpers.js';

const M = suite('malloc');
const glibc = Boolean((process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime);
const usable = nativeAddon() !== null && glibc;
const MU = needs(M, usable ? null : 'needs the native addon and glibc');
const index = join(process.cwd(), 'dist', 'src', 'internal.js');
const rerun = join(process.cwd(), 'dist', 'src', 'runtime', 'rerun.js');
const dir = tempDir('nm-malloc-');

/** runs a module in a child without huge pages (they would hide the faults) and with the given NEURONMERGE_MALLOC */
function child(code: string, mode: string | undefined, flags: string[] = [], extra: NodeJS.ProcessEnv = {}): { out: string; err: string; status: number | null } {
  const file = join(dir, `probe-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(file, code);
  const env: NodeJS.ProcessEnv = { ...process.env, NEURONMERGE_HUGEPAGES: '0', NEURONMERGE_QUIET: '1' };
  delete env.GLIBC_TUNABLES;
  delete env.NEURONMERGE_MALLOC;
  if (mode !== undefined) env.NEURONMERGE_MALLOC = mode;
  Object.assign(env, extra);
  const r = spawnSync(process.execPath, [...flags, file], { encoding: 'utf8', env });
  return { out: r.stdout.trim(), err: r.stderr, status: r.status };
}

// 48 MiB arrays allocated, written and dropped in turn; the faults of the last round's allocation and
// write (12,288 pages of 4 KiB where each is a fresh mapping)
const faultProbe = `
const m = await import(${JSON.stringify(index)});
let last = 0;
for (let round = 0; round < 4; round++) {
  globalThis.gc(); globalThis.gc();
  await new Promise((r) => setTimeout(r, 20));
  const f0 = process.resourceUsage().minorPageFault;
  const a = new Float32Array(12 * 1024 * 1024);
  a.fill(1);
  last = process.resourceUsage().minorPageFault - f0;
  if (a[12345] !== 1) throw new Error('write lost');
}
console.log(JSON.stringify({ on: m.mallocReuseOn(), faults: last }));
`;

MU('with reuse on, a freed 48 MiB block is reused without page faults; with glibc defaults it faults', () => {
  const on = child(faultProbe, 'reuse', ['--expose-gc']);
  const off = child(faultProbe, 'default', ['--expose-gc']);
  assert.is(on.status, 0, on.err);
  assert.is(off.status, 0, off.err);
  const a = JSON.parse(on.out), b = JSON.parse(off.out);
  assert.is(a.on, true);
  assert.is(b.on, false);
  assert.ok(a.faults < 1500, `reuse: ${a.faults} page faults for a reused 48 MiB block`);
  assert.ok(b.faults > 6000, `glibc defaults: ${b.faults} page faults for a fresh 48 MiB block (a fresh mapping faults per 4 KiB page)`);
});

MU('NEURONMERGE_MALLOC: reuse turns it on, unset leaves malloc alone, other values warn and leave it', () => {
  const probe = `const m = await import(${JSON.stringify(index)}); console.log(String(m.mallocReuseOn()));`;
  assert.is(child(probe, 'reuse').out, 'true');
  assert.is(child(probe, undefined).out, 'false');
  const bad = child(probe, 'always');
  assert.is(bad.out, 'false');
  assert.match(bad.err, /NEURONMERGE_MALLOC=always is not 'reuse' or 'default'/);
});

MU('the command and the benchmarks (rerun.js first) turn it on, with or without huge pages; NEURONMERGE_MALLOC=default keeps it off', () => {
  const probe = `await import(${JSON.stringify(rerun)}); const m = await import(${JSON.stringify(index)}); console.log(String(m.mallocReuseOn()) + ' ' + (process.env.GLIBC_TUNABLES ?? 'unset'));`;
  assert.is(child(probe, undefined).out, 'true unset');
  assert.is(child(probe, 'default').out, 'false unset');
  // huge pages on (the re-run, here asked for directly): reuse as well, unless told otherwise
  assert.is(child(probe, undefined, [], { GLIBC_TUNABLES: HUGEPAGE_TUNABLES }).out, `true ${HUGEPAGE_TUNABLES}`);
  assert.is(child(probe, 'default', [], { GLIBC_TUNABLES: HUGEPAGE_TUNABLES }).out, `false ${HUGEPAGE_TUNABLES}`);
  // static imports, as the command and the benchmarks have them: the library is evaluated while
  // rerun.js awaits, so the choice must be made before that
  const staticProbe = `import ${JSON.stringify(rerun)}; import { mallocReuseOn } from ${JSON.stringify(index)}; console.log(String(mallocReuseOn()));`;
  assert.is(child(staticProbe, undefined).out, 'true');
  assert.is(child(staticProbe, 'default').out, 'false');
});

MU('setMallocReuse switches both ways and reports it', async () => {
  const m = await import('../src/internal.js');
  const before = m.mallocReuseOn();
  try {
    assert.is(m.setMallocReuse(true), true);
    assert.is(m.mallocReuseOn(), true);
    assert.is(m.setMallocReuse(false), true);
    assert.is(m.mallocReuseOn(), false);
  } finally {
    m.setMallocReuse(before);
  }
});

needs(M, nativeAddon() ? null : 'needs the native addon')('setMallocReuse checks its argument', () => {
  const a = nativeAddon()!;
  assert.throws(() => (a.setMallocReuse as unknown as (x: unknown) => boolean)('yes'), /setMallocReuse/);
  assert.throws(() => (a.setMallocReuse as unknown as () => boolean)(), /setMallocReuse/);
});

M.run();
