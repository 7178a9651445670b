// Shared benchmark plumbing: tinybench measurement, and output as a table line or one JSON object per line.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Bench } from 'tinybench';
import { nativeAddon, nativeLoadError } from '../src/backend/native.js';

export interface BenchArgs {
  json: boolean;
  /** scale the measuring time (NEURONMERGE_BENCH_TIME, default 1) */
  timeScale: number;
}

/** milliseconds per call of fn, measured by tinybench: the mean of the calls, or their median (stat
 *  'median': robust to a call that the machine's other work slowed down) */
export async function measureMs(name: string, fn: () => void, opts: { time?: number; iterations?: number; warmupIterations?: number; stat?: 'mean' | 'median' } = {}): Promise<number> {
  const scale = Number(process.env.NEURONMERGE_BENCH_TIME ?? 1) || 1;
  const bench = new Bench({
    name,
    time: (opts.time ?? 1000) * scale,
    iterations: opts.iterations ?? 5,
    warmupIterations: opts.warmupIterations ?? 2,
    warmupTime: 100 * scale,
  });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0].result as { state: string; latency?: { mean: number; p50: number }; error?: Error };
  if (r.state === 'errored') throw r.error;
  if (!r.latency) throw new Error(`benchmark ${name}: no result (${r.state})`);
  return opts.stat === 'median' ? r.latency.p50 : r.latency.mean;
}

/** the middle value (the upper one of the two middle values for an even count) */
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** the q-quantile of xs (0 <= q <= 1), interpolated linearly between the two nearest order statistics */
export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) throw new Error('quantile of an empty list');
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile: q must be within [0, 1], got ${q}`);
  const s = [...xs].sort((a, b) => a - b);
  const at = q * (s.length - 1), lo = Math.floor(at), hi = Math.ceil(at);
  return s[lo] + (s[hi] - s[lo]) * (at - lo);
}

/** one product's ratio to a reference (the median over alternating rounds), the quartiles of the
 *  rounds' ratios, the two median times (ms: ours, refMs: the reference's) and its flop count */
export interface RatioRow {
  name: string;
  ratio: number;
  q1: number;
  q3: number;
  ms: number;
  refMs: number;
  flop: number;
}

/** How a set of products compares with the reference: how many are at least level (ratio >= 1),
 *  the median and the range, the summed times and flops (each product once), and, of those below,
 *  the ones below in at least three rounds of four (q3 < 1: slower, not a noisy round) apart from the
 *  ones whose rounds straddle 1 (q3 >= 1: level within the run's noise). */
export function ratioSummary(rows: RatioRow[]) {
  const ratios = rows.map((r) => r.ratio);
  const below = rows.filter((r) => r.ratio < 1);
  return {
    count: rows.length,
    atLeastLevel: rows.length - below.length,
    median: rows.length ? median(ratios) : NaN,
    min: Math.min(...ratios),
    max: Math.max(...ratios),
    ms: rows.reduce((t, r) => t + r.ms, 0),
    refMs: rows.reduce((t, r) => t + r.refMs, 0),
    flop: rows.reduce((t, r) => t + r.flop, 0),
    slower: below.filter((r) => r.q3 < 1),
    withinNoise: below.filter((r) => r.q3 >= 1),
  };
}

export function emit(args: BenchArgs, row: Record<string, unknown>, text: string): void {
  if (args.json) console.log(JSON.stringify(row));
  else console.log(text);
}

export function fmt(x: number, digits = 2): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** the machine and the kernels a benchmark ran on, for its first line: the CPU, its cores, and the
 *  native kernels' instruction set and threads (or why they did not load) */
/** the CPU's bfloat16 features as /proc/cpuinfo names them (avx512_bf16, amx_bf16, amx_tile), [] where
 *  it has none or the file is not there */
export function bf16Features(): string[] {
  try {
    const flags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/));
    return ['avx512_bf16', 'amx_bf16', 'amx_tile'].filter((f) => flags.has(f));
  } catch {
    return [];
  }
}

export function machineLine(): string {
  const nat = nativeAddon();
  const bf16 = bf16Features();
  return `${cpus()[0]?.model ?? 'CPU'}, ${cpus().length} cores; native kernels: ${nat ? `${nat.isa()}, ${nat.threads()} threads` : `not loaded (${nativeLoadError()})`}; bfloat16: ${bf16.length ? bf16.join(', ') : 'none'}`;
}
