#!/usr/bin/env node
// How much faster a compressed model runs than its original, measured on this machine: inference
// (eval mode, no autograd, each model through an InferenceSession) on random inputs of the network's shape, the two models timed in
// alternating rounds (the machine's speed drifts; a round's ratio compares neighbouring timings),
// beside the ratio of their FLOPs:
//   node scripts/compare-speed.mjs ORIGINAL.safetensors COMPRESSED.safetensors [--batch 1,128] [--rounds 7]
import '../dist/src/runtime/rerun.js';
import { compare, InferenceSession, inputShape, modelFromCheckpoint, modelStats, nativeAddon, Rng, tensor } from '../dist/src/internal.js';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const files = args.filter((a, i) => !a.startsWith('--') && !['--batch', '--rounds'].includes(args[i - 1]));
if (files.length !== 2) {
  console.error('usage: node scripts/compare-speed.mjs ORIGINAL.safetensors COMPRESSED.safetensors [--batch 1,128] [--rounds 7]');
  process.exit(2);
}
const batches = opt('--batch', '1,128').split(',').map(Number);
const rounds = Number(opt('--rounds', '7'));
if (batches.some((b) => !Number.isInteger(b) || b < 1) || !Number.isInteger(rounds) || rounds < 1) {
  console.error('compare-speed: --batch takes positive integers (1,128), --rounds a positive integer');
  process.exit(2);
}
const a = modelFromCheckpoint(files[0]), b = modelFromCheckpoint(files[1]);
const inShape = inputShape(a.arch);
if (a.arch.model !== b.arch.model || inputShape(b.arch).join('x') !== inShape.join('x')) {
  console.error(`compare-speed: ${files[0]} holds a ${a.arch.model} on ${inShape.join('x')} inputs, ${files[1]} a ${b.arch.model} on ${inputShape(b.arch).join('x')}`);
  process.exit(2);
}
a.model.eval();
b.model.eval();
const c = compare(modelStats(a.model, inShape), modelStats(b.model, inShape));
const addon = nativeAddon();
console.log(`# ${addon ? `native kernels, ${addon.isa()}, ${addon.threads()} threads` : 'TypeScript kernels'}; ${a.arch.model}: ${c.params.before} -> ${c.params.after} parameters, FLOPs ratio ${c.flopsRatio.toFixed(2)}x`);
const [sa, sb] = [new InferenceSession(a.model), new InferenceSession(b.model)];
const median = (v) => v.slice().sort((p, q) => p - q)[v.length >> 1];
for (const batch of batches) {
  const rng = new Rng(2);
  const shape = [batch, ...inShape];
  const x = tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.random()), shape, { copy: false });
  const time = (m) => {
    // enough repetitions for about 0.3 s a timing
    const t0 = performance.now();
    m.run(x);
    const once = Math.max(performance.now() - t0, 0.01);
    const reps = Math.max(1, Math.min(1000, Math.round(300 / once)));
    const t1 = performance.now();
    for (let i = 0; i < reps; i++) m.run(x);
    return (performance.now() - t1) / reps;
  };
  time(sa);
  time(sb);
  const ta = [], tb = [], r = [];
  for (let i = 0; i < rounds; i++) {
    const p = time(sa), q = time(sb);
    ta.push(p);
    tb.push(q);
    r.push(p / q);
  }
  const s = median(r);
  console.log(`batch ${String(batch).padStart(3)}: ${median(ta).toFixed(2)} ms -> ${median(tb).toFixed(2)} ms, measured speedup ${s.toFixed(2)}x (rounds ${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)}), ${(s / c.flopsRatio).toFixed(2)} of the FLOPs ratio`);
}
