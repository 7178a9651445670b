// Malloc-reuse benchmark (npm run bench -- malloc): one training step (forward, backward, SGD update)
// of the DBN, LeNet-5 and VGG-16 at batch 128 with glibc's malloc keeping freed large blocks for reuse
// (setMallocReuse(true), what the command and the benchmarks use) against glibc's defaults (fresh
// mappings for large blocks, page faults on first touch), in one process: the two settings alternate
// for NEURONMERGE_BENCH_ROUNDS rounds (default 5), each round's step time is tinybench's median of 3
// steps after one settling step, the ratio is the median of the rounds' own ratios (this machine's
// speed drifts by tens of percent over seconds). Minor page faults a step for each setting beside it.
import { mallocReuseOn, nativeAddon, setMallocReuse } from '../src/internal.js';
import { trainingSteps } from './train.js';
import { emit, fmt, measureMs, median } from './util.js';
import type { BenchArgs } from './util.js';

export async function benchMalloc(args: BenchArgs): Promise<void> {
  const addon = nativeAddon();
  if (!addon || !setMallocReuse(mallocReuseOn())) {
    console.log('# malloc: skipped (needs the native addon and glibc)');
    return;
  }
  const before = mallocReuseOn();
  const batch = 128;
  const rounds = Math.max(1, Number(process.env.NEURONMERGE_BENCH_ROUNDS ?? 5) || 5);
  if (!args.json) console.log(`# malloc: training step with freed large blocks reused against glibc's defaults, batch ${batch}, ${addon.threads()} threads, ${rounds} alternating rounds${process.env.GLIBC_TUNABLES ? `, GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES}` : ''}`);
  try {
    for (const { name, step } of trainingSteps(batch)) {
      const ms: Record<'on' | 'off', number[]> = { on: [], off: [] };
      const faults: Record<'on' | 'off', number[]> = { on: [], off: [] };
      const ratios: number[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const on of r % 2 ? [true, false] : [false, true]) {
          setMallocReuse(on);
          const f0 = process.resourceUsage().minorPageFault;
          let calls = 0;
          const t = await measureMs(`${name} ${on}`, () => {
            calls++;
            step();
          }, { iterations: 3, time: 0, warmupIterations: 1, stat: 'median' });
          const key = on ? 'on' : 'off';
          ms[key].push(t);
          faults[key].push((process.resourceUsage().minorPageFault - f0) / Math.max(1, calls));
        }
        ratios.push(ms.on[r] / ms.off[r]);
      }
      const on = median(ms.on), off = median(ms.off), ratio = median(ratios);
      emit(
        args,
        { model: name, batch, impl: 'neuronmerge', ms_reuse: on, ms_default: off, ratio_vs_default: ratio, faults_per_step_reuse: median(faults.on), faults_per_step_default: median(faults.off) },
        `malloc ${name.padEnd(7)} batch ${batch}: reuse ${fmt(on, 1).padStart(8)} ms/step, glibc default ${fmt(off, 1).padStart(8)} ms/step, ratio ${fmt(ratio, 3)} (rounds ${ratios.map((q) => fmt(q, 2)).join(' ')}); page faults a step ${fmt(median(faults.on), 0)} against ${fmt(median(faults.off), 0)}`,
      );
    }
  } finally {
    setMallocReuse(before);
  }
}
