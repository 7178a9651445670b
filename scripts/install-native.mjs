#!/usr/bin/env node
// npm install hook: build the native addon with node-gyp (binding.gyp, node-addon-api headers).
// Where the build fails the package still works on the TypeScript kernels, so this never fails the
// install; it says once why. NEURONMERGE_SKIP_NATIVE=1 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

if (process.env.NEURONMERGE_SKIP_NATIVE === '1') {
  console.log('neuronmerge: NEURONMERGE_SKIP_NATIVE=1, not building the native addon');
  process.exit(0);
}
const root = join(dirname(new URL(import.meta.url).pathname), '..');
const bundled = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const gyp = [process.env.npm_config_node_gyp, bundled].find((p) => p && existsSync(p));
const args = gyp ? [gyp, 'rebuild'] : null;
if (!args) {
  console.warn('neuronmerge: node-gyp not found; the native addon is not built, the TypeScript kernels will be used');
  process.exit(0);
}
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.warn(`neuronmerge: building the native addon failed (node-gyp exit ${r.status}); the TypeScript kernels will be used. Needs python3, make and a C++17 compiler.`);
}
process.exit(0);
