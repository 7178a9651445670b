// Shared benchmark plumbing: tinybench measurement, and output as a table line or one JSON object per line.
import { Bench } from 'tinybench';

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

export function emit(args: BenchArgs, row: Record<string, unknown>, text: string): void {
  if (args.json) console.log(JSON.stringify(row));
  else console.log(text);
}

export function fmt(x: number, digits = 2): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}
