// Speedup benchmark: inference time of the original and the merged DBN, LeNet-5 and VGG-16 (every
// hidden layer merged at ratio 0.5) at batch 1 and 128, the measured speedup (the median of 7 rounds'
// ratios, each round timing both models back to back) beside the FLOPs ratio.
import { buildModel, compare, dbnArch, InferenceSession, lenet5Arch, mergeModel, modelStats, Rng, tensor, vgg16Arch } from '../src/internal.js';
import type { Arch } from '../src/internal.js';
import { emit, fmt, machineLine, measureMs, median } from './util.js';
import type { BenchArgs } from './util.js';

const ROUNDS = 7;

export async function benchSpeedup(args: BenchArgs): Promise<void> {
  const ratio = 0.5;
  if (!args.json) console.log(`# ${machineLine()}`);
  if (!args.json) console.log(`# inference (eval, no autograd), original vs merged at ratio ${ratio} in every hidden layer; target: measured speedup >= 0.9 of the FLOPs ratio at batch 128, 0.8 at batch 1`);
  const cases: [string, Arch, number[]][] = [['dbn', dbnArch(), [784]], ['lenet5', lenet5Arch(), [1, 28, 28]], ['vgg16', vgg16Arch(), [3, 32, 32]]];
  for (const [name, arch, inShape] of cases) {
    const original = buildModel(arch, 1);
    const merged = buildModel(arch, 1);
    mergeModel(merged, { ratio, nInit: 1, seed: 1 });
    original.eval();
    merged.eval();
    const c = compare(modelStats(original, inShape), modelStats(merged, inShape));
    const [so, sm] = [new InferenceSession(original), new InferenceSession(merged)];
    for (const batch of [1, 128]) {
      const rng = new Rng(2);
      const shape = [batch, ...inShape];
      const x = tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.random()), shape, { copy: false });
      const big = name === 'vgg16' && batch === 128;
      // the two models alternate for ROUNDS rounds and each round gives a ratio of neighbouring
      // measurements: the machine's speed drifts by tens of percent over seconds here, and a drift
      // between two long separate measurements would show up as a speedup or a slowdown
      const opts = { iterations: big ? 1 : 5, time: big ? 600 : 200 };
      const origMs: number[] = [], mergedMs: number[] = [], ratios: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const o = await measureMs(`${name} original ${batch}`, () => so.run(x), opts);
        const m = await measureMs(`${name} merged ${batch}`, () => sm.run(x), opts);
        origMs.push(o);
        mergedMs.push(m);
        ratios.push(o / m);
      }
      const tOrig = median(origMs), tMerged = median(mergedMs);
      const speedup = median(ratios);
      emit(args,
        { model: name, batch, ratio, params_before: c.params.before, params_after: c.params.after, flops_ratio: c.flopsRatio, original_ms: tOrig, merged_ms: tMerged, measured_speedup: speedup, fraction_of_flops_ratio: speedup / c.flopsRatio },
        `speedup ${name.padEnd(7)} batch ${String(batch).padStart(3)}: ${fmt(tOrig, 2).padStart(8)} ms -> ${fmt(tMerged, 2).padStart(8)} ms  measured ${fmt(speedup, 2)}x (rounds ${fmt(Math.min(...ratios), 2)}-${fmt(Math.max(...ratios), 2)})  FLOPs ratio ${fmt(c.flopsRatio, 2)}x  (${fmt(speedup / c.flopsRatio, 2)} of it; params ${c.params.before} -> ${c.params.after})`);
    }
  }
}
