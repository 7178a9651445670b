#!/usr/bin/env node
// Runs the uvu suite over the compiled tests (dist/test) and ends with one line "N passed, N failed",
// which CI reads, followed by ", N skipped": tests whose prerequisite is missing (test.skip). Any extra arguments are passed to uvu (a pattern to pick test files, for instance).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
if (!existsSync(join(root, 'dist/test'))) {
  console.error('dist/test is missing: run `npm run build` first (npm test does).');
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const uvuBin = join(root, 'node_modules', 'uvu', 'bin.js');
const args = [uvuBin, 'dist/test', process.argv[2] ?? '\\.test\\.js$', ...process.argv.slice(3)];
const child = spawn(process.execPath, args, { cwd: root, stdio: ['inherit', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  out += d.toString();
});
child.on('close', (code) => {
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  const passed = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  const skipped = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  if (Number.isNaN(total) || Number.isNaN(passed)) {
    // uvu died before its summary (an error while loading a test file, say)
    console.log(`${Number.isNaN(passed) ? 0 : passed} passed, 1 failed`);
    process.exit(code || 1);
  }
  // uvu's total leaves skipped tests out
  const failed = total - passed;
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed > 0 || code ? 1 : 0);
});
