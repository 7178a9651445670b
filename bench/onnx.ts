// onnxruntime against neuronmerge: inference of the original and merged DBN, LeNet-5 and VGG-16 (every
// hidden layer merged at 0.5; VGG-16 also to 7.04% of its parameters, one ratio everywhere, and the same
// with every layer's units rounded down to a multiple of 8) exported as
// ONNX and run by onnxruntime-node (2 intra-op threads, all graph optimisations) and by neuronmerge, at
// batch 1 and 128 (neuronmerge through an InferenceSession, as onnxruntime through its own), in one run: each model's time in both, their ratio, and each runtime's measured
// speedup from merging beside the FLOPs ratio. Rounds alternate the two runtimes (the machine's speed
// drifts), each timing 50 ms after the last (see SETTLE_MS); the figures are the medians of the rounds.
import { cpus } from 'node:os';
import { buildModel, compare, dbnArch, InferenceSession, lenet5Arch, mergeModel, mergeSites, modelStats, nativeAddon, ratioForBudget, Rng, roundUnits, tensor, toOnnx, unitsAfter, vgg16Arch } from '../src/internal.js';
import type { Arch, Sequential } from '../src/internal.js';
import { emit, fmt, median } from './util.js';
import type { BenchArgs } from './util.js';

const ROUNDS = 5;

// onnxruntime's worker threads spin for a while after its last call, on the same two cores: the
// merged half-width VGG-16 at batch 1 through neuronmerge read 913-928 us right after onnxruntime's
// runs and 710-776 us 20 ms or more later (Zen 5, 2 threads). Each timing therefore starts
// SETTLE_MS after the previous one ended (neuronmerge's own helpers spin at most 0.5 ms)
const SETTLE_MS = 50;

/** ms per call: calls repeated for about `ms` milliseconds (at least 2) after one warm-up, once the
 *  other runtime's threads have gone quiet */
async function timeIt(fn: () => unknown, ms: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  await fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (n < 2 || t - t0 < ms) {
    await fn();
    n++;
    t = performance.now();
  }
  return (t - t0) / n;
}

export async function benchOnnx(args: BenchArgs): Promise<void> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (e) {
    console.log(`# onnx: skipped: onnxruntime-node cannot be loaded (${(e as Error).message.split('\n')[0]}); npm ci installs it`);
    return;
  }
  const nat = nativeAddon();
  const threads = 2;
  if (!args.json) {
    console.log(`# ${cpus()[0]?.model ?? 'CPU'}; neuronmerge: ${nat ? `native kernels, ${nat.isa()}, ${nat.threads()} threads` : 'TypeScript kernels'}; onnxruntime-node ${ort.env.versions.common} (${threads} intra-op threads, graph optimisation all)`);
    console.log('# time per batch (median of rounds); ratio: neuronmerge / onnxruntime (below 1: neuronmerge faster); speedup: original / merged in each runtime, beside the FLOPs ratio');
  }
  const models: [string, Arch, number[], { ratio?: number; budget?: number; multipleOf?: number }][] = [
    ['dbn', dbnArch(), [784], { ratio: 0.5 }],
    ['lenet5', lenet5Arch(), [1, 28, 28], { ratio: 0.5 }],
    ['vgg16', vgg16Arch(), [3, 32, 32], { ratio: 0.5 }],
    ['vgg16', vgg16Arch(), [3, 32, 32], { budget: 0.0704 }],
    ['vgg16', vgg16Arch(), [3, 32, 32], { budget: 0.0704, multipleOf: 8 }],
  ];
  const session = (m: Sequential, shape: number[]) => ort.InferenceSession.create(toOnnx(m, shape), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' });
  // --only REGEX: the models whose name and merge ('vgg16 ratio 0.5', 'vgg16 budget 0.0704 ×8') match
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt >= 0 ? new RegExp(process.argv[onlyAt + 1] ?? '') : null;
  const labelOf = (how: { ratio?: number; budget?: number; multipleOf?: number }) => (how.budget ? `budget ${how.budget}${how.multipleOf ? ` ×${how.multipleOf}` : ''}` : `ratio ${how.ratio}`);
  for (const [name, arch, inShape, how] of models) {
    if (only && !only.test(`${name} ${labelOf(how)}`)) continue;
    const original = buildModel(arch, 1), merged = buildModel(arch, 1);
    if (how.multipleOf) {
      // the budget's one ratio, each layer's units then rounded down to the multiple (merge --multiple-of)
      const r = ratioForBudget(original, how.budget!);
      mergeModel(merged, { ratio: mergeSites(original).map((s) => 1 - roundUnits(unitsAfter(s.units, r), s.units, how.multipleOf!, true) / s.units), nInit: 1, seed: 1 });
    } else mergeModel(merged, { ...how, nInit: 1, seed: 1 });
    original.eval();
    merged.eval();
    const c = compare(modelStats(original, inShape), modelStats(merged, inShape));
    const label = labelOf(how);
    const [so, sm] = [await session(original, inShape), await session(merged, inShape)];
    // neuronmerge's counterpart of onnxruntime's session: the convolutions' weights laid out once
    const [no, nm] = [new InferenceSession(original), new InferenceSession(merged)];
    for (const batch of [1, 128]) {
      const rng = new Rng(2);
      const shape = [batch, ...inShape];
      const data = Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.random());
      const x = tensor(data, shape, { copy: false });
      const feed = { input: new ort.Tensor('float32', data, shape) };
      const big = name === 'vgg16' && batch === 128;
      const ms = big ? 1500 : 300;
      const t = { oursO: [] as number[], oursM: [] as number[], ortO: [] as number[], ortM: [] as number[] };
      for (let r = 0; r < ROUNDS; r++) {
        t.oursO.push(await timeIt(() => no.run(x), ms));
        t.ortO.push(await timeIt(() => so.run(feed), ms));
        t.oursM.push(await timeIt(() => nm.run(x), ms));
        t.ortM.push(await timeIt(() => sm.run(feed), ms));
      }
      const ratios = (a: number[], b: number[]) => a.map((v, i) => v / b[i]);
      const row = {
        model: name, merge: label, batch, flops_ratio: c.flopsRatio,
        original: { neuronmerge_ms: median(t.oursO), onnxruntime_ms: median(t.ortO), ratio: median(ratios(t.oursO, t.ortO)) },
        merged: { neuronmerge_ms: median(t.oursM), onnxruntime_ms: median(t.ortM), ratio: median(ratios(t.oursM, t.ortM)) },
        speedup: { neuronmerge: median(ratios(t.oursO, t.oursM)), onnxruntime: median(ratios(t.ortO, t.ortM)) },
        spread: { original_ratio: [Math.min(...ratios(t.oursO, t.ortO)), Math.max(...ratios(t.oursO, t.ortO))], merged_ratio: [Math.min(...ratios(t.oursM, t.ortM)), Math.max(...ratios(t.oursM, t.ortM))] },
      };
      emit(args, row, `onnx ${name.padEnd(6)} ${label.padEnd(16)} batch ${String(batch).padStart(3)}: original ${fmt(row.original.neuronmerge_ms, 2)} ms vs ort ${fmt(row.original.onnxruntime_ms, 2)} ms (ratio ${fmt(row.original.ratio, 2)}, rounds ${fmt(row.spread.original_ratio[0], 2)}-${fmt(row.spread.original_ratio[1], 2)}); merged ${fmt(row.merged.neuronmerge_ms, 2)} ms vs ort ${fmt(row.merged.onnxruntime_ms, 2)} ms (ratio ${fmt(row.merged.ratio, 2)}); speedup ours ${fmt(row.speedup.neuronmerge, 2)}x, ort ${fmt(row.speedup.onnxruntime, 2)}x, FLOPs ${fmt(c.flopsRatio, 2)}x`);
    }
  }
}
