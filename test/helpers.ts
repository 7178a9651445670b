// Shared test helpers: seeded random tensors and closeness checks.
import { spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Callback, Context, Test } from 'uvu';
import * as assert from 'uvu/assert';
import { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Rng, Sequential, Tensor, tensor } from '../src/internal.js';
import type { DType, Module } from '../src/internal.js';

const made: string[] = [];

/** a fresh directory under the OS's temp directory (name starting with `prefix`), removed with its
 * contents when the test process exits: a run of the suite leaves nothing behind (it had left ~35
 * directories, ~100 MB, a run) */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (made.push(dir) === 1) {
    process.on('exit', () => {
      for (const d of made) rmSync(d, { recursive: true, force: true });
    });
  }
  return dir;
}

export function rand(rng: Rng, shape: number[], opts: { dtype?: DType; lo?: number; hi?: number; requiresGrad?: boolean } = {}): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const lo = opts.lo ?? -1, hi = opts.hi ?? 1;
  const data = Array.from({ length: n }, () => rng.uniform(lo, hi));
  return tensor(data, shape, { dtype: opts.dtype ?? 'float64', requiresGrad: opts.requiresGrad ?? true });
}

/** values at least `gap` away from each other (no ties: max and max-pool are differentiable there) */
export function distinct(rng: Rng, shape: number[], gap = 0.01): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const perm = rng.permutation(n);
  const data = Array.from(perm, (p) => (p - n / 2) * gap * 3 + rng.uniform(-gap, gap) * 0.5);
  return tensor(data, shape, { dtype: 'float64', requiresGrad: true });
}

export function pick<T>(rng: Rng, xs: T[]): T {
  return xs[rng.int(xs.length)];
}

/** a random shape of `nd` dimensions from sizes that include 1 and odd sizes */
export function randShape(rng: Rng, nd: number, sizes = [1, 2, 3, 5]): number[] {
  return Array.from({ length: nd }, () => pick(rng, sizes));
}

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = 'values'): void {
  assert.is(actual.length, expected.length, `${what}: length ${actual.length} vs ${expected.length}`);
  let worst = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const e = Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i]));
    if (!(e <= worst)) {
      worst = e;
      at = i;
    }
  }
  if (!(worst <= tol)) assert.unreachable(`${what}: element ${at} is ${actual[at]}, expected ${expected[at]} (relative error ${worst} > ${tol})`);
}

export function assertShape(t: Tensor, shape: number[]): void {
  assert.equal(t.shape, shape, `shape ${JSON.stringify(t.shape)} vs ${JSON.stringify(shape)}`);
}

export function assertThrows(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (e) {
    const msg = (e as Error).message;
    assert.ok(pattern.test(msg), `error message "${msg}" does not match ${pattern}`);
    return;
  }
  assert.unreachable(`expected an error matching ${pattern}`);
}

/**
 * A suite's test function where its prerequisite is here; where `missing` says what is not (no
 * ../shared, no WebGPU adapter, no addon), uvu's skip, so that the summary counts the test as skipped,
 * never as passed. The reason is printed beside the test's name.
 */
export function needs(t: Test, missing: string | null): (name: string, fn: Callback<Context>) => void {
  if (!missing) return t;
  return (name: string) => {
    console.log(`  (skipped: ${name}: ${missing})`);
    t.skip(name);
  };
}

const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'index.js');

/** the built command, run with these arguments: its exit status and what it printed */
export function runCli(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

/** a run's --json output, after checking that it succeeded (its stderr is the message otherwise) */
export function cliJson(r: SpawnSyncReturns<string>) {
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** every file and link under `dir`, a file with its content's hash, a link with its target: what a
 * refused command must leave as it was */
export function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => {
    const p = join(e.parentPath ?? e.path, e.name);
    return `${p} ${e.isSymbolicLink() ? `-> ${readlinkSync(p)}` : createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  }).sort();
}

/** a check that `run(args, env)` prints exactly `neuronmerge: message` on stderr, nothing on stdout,
 * exits 1, and leaves every file under `dir` as it was */
export function refusesWith(run: (args: string[], env?: Record<string, string>) => SpawnSyncReturns<string>) {
  return (args: string[], message: string, dir: string, env: Record<string, string> = {}) => {
    const before = snapshot(dir);
    const r = run(args, env);
    assert.is(r.stderr, `neuronmerge: ${message}\n`, args.join(' '));
    assert.is(r.status, 1, args.join(' '));
    assert.is(r.stdout, '', args.join(' '));
    assert.equal(snapshot(dir), before, `${args.join(' ')}: files changed or left behind`);
  };
}

/** a small network for MNIST with every kind of state the training loop keeps: convolutions, a batch
 * norm (running statistics), linear layers and, with `dropout`, a generator of its own */
export function smallConvNet(seed: number, o: { dropout?: boolean } = {}): Module {
  const rng = new Rng(seed);
  return new Sequential(
    new Conv2d(1, 4, 5, { rng }), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
    new Conv2d(4, 6, 5, { rng }), new MaxPool2d(2), new Flatten(),
    new Linear(96, 16, { rng }), new ReLU(), ...(o.dropout ? [new Dropout(0.3, new Rng(seed + 100))] : []), new Linear(16, 10, { rng }),
  );
}
