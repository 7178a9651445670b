#!/usr/bin/env node
// One-off comparison with gpu.js (its WebGPU mode), which the project does not depend on:
//   npm i --no-save gpu.js && npm run build && node bench/gpujs-matmul.mjs [N]
// Prints the GFLOP/s of an N×N×N fp32 product, upload and readback included, for gpu.js and for our
// WGSL SGEMM on the same adapter (NEURONMERGE_WEBGPU_FLAGS=backend=opengles for the software one).
import { create, globals } from 'webgpu';
import { webgpu } from '../dist/src/backend/webgpu.js';

Object.assign(globalThis, globals);
const flags = (process.env.NEURONMERGE_WEBGPU_FLAGS ?? '').split(/\s+/).filter(Boolean);
if (flags.some((f) => f.includes('opengl'))) process.env.EGL_PLATFORM ??= 'surfaceless';
const g = create(flags);
const compat = flags.some((f) => f.includes('opengl'));
Object.defineProperty(globalThis, 'navigator', { value: { gpu: { requestAdapter: (o) => g.requestAdapter({ ...(o ?? {}), ...(compat ? { featureLevel: 'compatibility' } : {}) }), getPreferredCanvasFormat: () => 'rgba8unorm', wgslLanguageFeatures: new Set() } }, configurable: true });
let GPU;
try {
  ({ GPU } = await import('gpu.js'));
} catch {
  console.error('gpu.js is not installed: npm i --no-save gpu.js');
  process.exit(2);
}
const n = Number(process.argv[2] ?? 256);
const reps = 3;
const time = async (f) => {
  await f();
  const t = performance.now();
  for (let r = 0; r < reps; r++) await f();
  return (2 * n ** 3) / ((performance.now() - t) / 1000 / reps) / 1e9;
};
const rows = Array.from({ length: n }, (_, i) => Float32Array.from({ length: n }, (_, j) => Math.sin(i * n + j)));
const k = new GPU({ mode: 'webgpu' }).createKernel(function (a, b) {
  let s = 0;
  for (let i = 0; i < this.constants.n; i++) s += a[this.thread.y][i] * b[i][this.thread.x];
  return s;
}, { constants: { n }, output: [n, n] });
const gj = await time(() => k(rows, rows));
const ours = await webgpu();
const flat = new Float32Array(n * n);
rows.forEach((r, i) => flat.set(r, i * n));
const mine = await time(async () => {
  const A = ours.upload(flat), B = ours.upload(flat), C = ours.alloc(n * n);
  ours.gemm(false, false, n, n, n, 1, A, n, B, n, 0, C, n);
  await ours.read(C);
  for (const b of [A, B, C]) b.destroy();
});
console.log(`${n}³ on ${ours.info.description}, upload and readback included: gpu.js ${gj.toFixed(2)} GFLOP/s, neuronmerge WGSL ${mine.toFixed(2)} GFLOP/s (gpu.js / ours ${(gj / mine).toFixed(2)})`);
