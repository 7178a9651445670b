// GEMM benchmark: GFLOP/s of each implementation and the ratio to a reference measured in the same run.
// Here: the pure TypeScript kernel against the naive triple loop (gemmNaive).
import { gemmJs, gemmNaive, Rng } from '../src/index.js';
import { emit, fmt, measureMs } from './util.js';
import type { BenchArgs } from './util.js';

function randArray(n: number, rng: Rng): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform(-1, 1);
  return a;
}

export async function benchGemm(args: BenchArgs): Promise<void> {
  if (!args.json) console.log('# gemm: C = A·B, float32, row-major, single thread');
  const rng = new Rng(1);
  for (const n of [256, 512]) {
    const A = randArray(n * n, rng), B = randArray(n * n, rng), C = new Float32Array(n * n);
    const flop = 2 * n * n * n;
    const naiveMs = await measureMs(`naive ${n}`, () => gemmNaive(false, false, n, n, n, 1, A, 0, n, B, 0, n, 0, C, 0, n), { iterations: 2, time: 500 });
    const jsMs = await measureMs(`ts ${n}`, () => gemmJs(false, false, n, n, n, 1, A, 0, n, B, 0, n, 0, C, 0, n), { iterations: 5 });
    const shape = `${n}x${n}x${n}`;
    for (const [impl, ms] of [['naive', naiveMs], ['ts', jsMs]] as const) {
      const gflops = flop / ms / 1e6;
      emit(
        args,
        { kernel: 'gemm', shape, impl, threads: 1, ms, gflops, reference: 'naive', ratio_vs_naive: naiveMs / ms },
        `gemm ${shape.padEnd(12)} ${impl.padEnd(6)} ${fmt(gflops).padStart(7)} GFLOP/s  ${fmt(ms, 1).padStart(8)} ms  ${fmt(naiveMs / ms)}x naive`,
      );
    }
  }
}
