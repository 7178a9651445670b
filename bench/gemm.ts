// GEMM benchmark: GFLOP/s of the TypeScript kernel, the native kernel (1 thread and all threads) and
// OpenBLAS (through bench/openblas, a harness built here only for the benchmark, where libopenblas-dev
// is installed, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for it), on square shapes and on the
// GEMM shapes of LeNet-5 and VGG-16 training at batch 128; then convolution forward + backward for each
// VGG-16 layer at batch 128. Each figure comes with its ratio to OpenBLAS measured in the same run.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conv2d, convChunkImages, gemmJs, gemmNaive, nativeAddon, nativeLoadError, Rng, tensor } from '../src/internal.js';
import type { Kernels } from '../src/internal.js';
import { emit, fmt, machineLine, measureMs, median, quantile, ratioSummary } from './util.js';
import type { BenchArgs, RatioRow } from './util.js';

type Gemm = Kernels['gemm'];

interface OpenBlas {
  gemm: Gemm;
  setThreads(n: number): void;
  config(): string;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** build (once) and load the OpenBLAS harness; null with a reason where it cannot be had */
function loadOpenBlas(): { lib: OpenBlas | null; why: string } {
  const dir = join(root, 'bench', 'openblas');
  const out = join(dir, 'build', 'Release', 'openblas_harness.node');
  if (!existsSync('/usr/include/x86_64-linux-gnu/cblas.h') && !existsSync('/usr/include/cblas.h') && !existsSync('/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h')) {
    return { lib: null, why: 'libopenblas-dev is not installed (apt-get install libopenblas-dev)' };
  }
  if (!existsSync(out)) {
    const gyp = [process.env.npm_config_node_gyp, join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find((p) => p && existsSync(p));
    if (!gyp) return { lib: null, why: 'node-gyp not found to build the OpenBLAS harness' };
    const r = spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: dir, stdio: 'pipe', encoding: 'utf8' });
    if (r.status !== 0) return { lib: null, why: `building the OpenBLAS harness failed: ${(r.stderr || r.stdout).split('\n').filter((l) => /error/i.test(l)).slice(0, 3).join(' | ')}` };
  }
  // OpenBLAS reads these when it loads: unset them for this comparison only, so it runs at its best
  delete process.env.OPENBLAS_CORETYPE;
  delete process.env.OPENBLAS_L2_SIZE;
  try {
    return { lib: createRequire(import.meta.url)(out) as OpenBlas, why: '' };
  } catch (e) {
    return { lib: null, why: `loading the OpenBLAS harness failed: ${(e as Error).message}` };
  }
}

interface Shape {
  kernel: string; // where the product comes from
  tA: boolean;
  tB: boolean;
  M: number;
  N: number;
  K: number;
}

const sq = (n: number): Shape => ({ kernel: 'square', tA: false, tB: false, M: n, N: n, K: n });

interface ConvLayer {
  name: string;
  C: number;
  OC: number;
  H: number;
  k: number;
  pad: number;
  /** the input gradient is not needed (first layer) */
  first: boolean;
}

const VGG_WIDTHS: (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];

export function vggConvLayers(): ConvLayer[] {
  const layers: ConvLayer[] = [];
  let C = 3, H = 32, i = 0;
  for (const w of VGG_WIDTHS) {
    if (w === 'M') {
      H /= 2;
      continue;
    }
    layers.push({ name: `vgg16.conv${++i}`, C, OC: w, H, k: 3, pad: 1, first: i === 1 });
    C = w;
  }
  return layers;
}

const LENET_CONVS: ConvLayer[] = [
  { name: 'lenet5.conv1', C: 1, OC: 20, H: 28, k: 5, pad: 0, first: true },
  { name: 'lenet5.conv2', C: 20, OC: 50, H: 12, k: 5, pad: 0, first: false },
];

/** the GEMMs conv2d runs for one chunk of images, and how many chunks a batch makes (fractional) */
function convGemms(l: ConvLayer, batch: number): { shapes: Shape[]; chunks: number } {
  const OH = l.H + 2 * l.pad - l.k + 1;
  const L = OH * OH, CKK = l.C * l.k * l.k;
  // the backward products' chunks, as conv2d issues them; the forward runs inside convForward, whose
  // native GEMM packs B straight from the images (this row times the same product with B stored)
  const g = convChunkImages(batch, CKK, L, l.OC);
  const shapes: Shape[] = [
    { kernel: `${l.name} fwd`, tA: false, tB: false, M: l.OC, N: g * L, K: CKK },
    { kernel: `${l.name} dW`, tA: false, tB: true, M: l.OC, N: CKK, K: g * L },
  ];
  if (!l.first) shapes.push({ kernel: `${l.name} dX`, tA: true, tB: false, M: CKK, N: g * L, K: l.OC });
  return { shapes, chunks: batch / g };
}

/** y = x·Wᵀ with W (out, in): forward, input gradient, weight gradient */
function linearGemms(name: string, batch: number, inF: number, outF: number): Shape[] {
  return [
    { kernel: `${name} fwd`, tA: false, tB: true, M: batch, N: outF, K: inF },
    { kernel: `${name} dX`, tA: false, tB: false, M: batch, N: inF, K: outF },
    { kernel: `${name} dW`, tA: true, tB: false, M: outF, N: inF, K: batch },
  ];
}

function networkShapes(batch: number): Shape[] {
  const list: Shape[] = [];
  for (const l of LENET_CONVS) list.push(...convGemms(l, batch).shapes);
  list.push(...linearGemms('lenet5.fc1', batch, 800, 500), ...linearGemms('lenet5.fc2', batch, 500, 10));
  for (const l of vggConvLayers()) list.push(...convGemms(l, batch).shapes);
  list.push(...linearGemms('vgg16.fc1', batch, 512, 512), ...linearGemms('vgg16.fc2', batch, 512, 10));
  return list;
}

function operands(s: Shape, rng: Rng) {
  const rand = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = rng.uniform(-1, 1);
    return a;
  };
  const lda = s.tA ? s.M : s.K, ldb = s.tB ? s.K : s.N;
  return { A: rand(s.M * s.K), B: rand(s.K * s.N), C: new Float32Array(s.M * s.N), lda, ldb };
}

export async function benchGemm(args: BenchArgs): Promise<void> {
  const nat = nativeAddon();
  const { lib: ob, why } = loadOpenBlas();
  const allThreads = nat ? nat.threads() : 1;
  if (!args.json) {
    console.log(`# gemm: C = op(A)·op(B), float32, row-major; GFLOP/s and ratio to OpenBLAS with the same threads`);
    console.log(`# native: ${nat ? `${nat.isa()} micro-kernel, ${allThreads} threads` : `not loaded (${nativeLoadError()})`}; OpenBLAS: ${ob ? ob.config() : `skipped: ${why}`}`);
  }
  const rng = new Rng(1);
  const tsAll = process.argv.includes('--ts-all');
  // --only REGEX: the shapes whose kernel name or shape matches (and no convolution part)
  const onlyAt = process.argv.indexOf('--only');
  const only = onlyAt >= 0 ? new RegExp(process.argv[onlyAt + 1] ?? '') : null;
  const shapes: Shape[] = [sq(256), sq(512), sq(1024), sq(2048), ...networkShapes(128)].filter((s) => !only || only.test(`${s.kernel} ${s.M}x${s.N}x${s.K}`));
  const seen = new Set<string>();
  const networkRows: RatioRow[] = [];
  for (const s of shapes) {
    const key = `${s.kernel}|${s.tA}|${s.tB}|${s.M}x${s.N}x${s.K}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const { A, B, C, lda, ldb } = operands(s, rng);
    const flop = 2 * s.M * s.N * s.K;
    const shape = `${s.M}x${s.N}x${s.K}${s.tA ? ' tA' : ''}${s.tB ? ' tB' : ''}`;
    const iters = Math.max(3, Math.min(50, Math.round(3e9 / flop)));
    const run = (g: Gemm) => () => g(s.tA, s.tB, s.M, s.N, s.K, 1, A, 0, lda, B, 0, ldb, 0, C, 0, s.N);
    // spread: the quartiles of the rounds' ratios (ours, where OpenBLAS ran)
    const results: { impl: string; threads: number; ms: number; ratio?: number; spread?: { q1: number; q3: number } }[] = [];
    const obMs: Record<number, number> = {};
    for (const threads of nat ? [1, allThreads] : [1]) {
      // OpenBLAS and ours alternate for ROUNDS rounds (ours after a pause long enough for OpenBLAS's
      // worker threads to stop spinning: they spin about 0.1 s after a call and would take a core
      // from ours); each measurement is the median call of its round. The figures are the medians
      // over the rounds, and the ratio is the median of the rounds' own ratios (each round compares
      // two measurements a fraction of a second apart, so the machine's slow drifts cancel)
      const ob1: number[] = [], nat1: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        if (ob) {
          ob.setThreads(threads);
          await pause(20);
          ob1.push(await measureMs(`openblas ${shape}`, run(ob.gemm), { iterations: iters, time: ROUND_MS, stat: 'median' }));
        }
        if (nat) {
          nat.setThreads(threads);
          await pause(ob ? 150 : 20);
          nat1.push(await measureMs(`native ${shape}`, run(nat.gemm), { iterations: iters, time: ROUND_MS, stat: 'median' }));
        }
      }
      if (ob) results.push({ impl: 'openblas', threads, ms: (obMs[threads] = median(ob1)), ratio: 1 });
      if (nat) {
        const rr = nat1.map((m, i) => ob1[i] / m);
        results.push({ impl: 'native', threads, ms: median(nat1), ...(ob ? { ratio: median(rr), spread: { q1: quantile(rr, 0.25), q3: quantile(rr, 0.75) } } : {}) });
      }
      if (threads === allThreads && allThreads === 1) break;
    }
    if (nat) nat.setThreads(allThreads);
    if (!only && (s.kernel === 'square' && (s.M <= 1024 || tsAll) || (tsAll && flop < 2e10))) {
      results.push({ impl: 'ts', threads: 1, ms: await measureMs(`ts ${shape}`, run(gemmJs), { iterations: s.M > 512 ? 1 : 3 }) });
    }
    // the naive triple loop, the reference of the TypeScript kernel, at the two sizes it is quick at
    let naiveMs: number | null = null;
    if (!only && s.kernel === 'square' && s.M <= 512) {
      naiveMs = await measureMs(`naive ${shape}`, run(gemmNaive), { iterations: s.M > 256 ? 1 : 3, time: 100 });
      results.push({ impl: 'naive', threads: 1, ms: naiveMs });
    }
    for (const r of results) {
      const gflops = flop / r.ms / 1e6;
      const ref = obMs[r.threads];
      const ratio = r.ratio ?? (ref ? ref / r.ms : null);
      const vsNaive = naiveMs && (r.impl === 'ts' || r.impl === 'naive') ? naiveMs / r.ms : null;
      emit(
        args,
        { kernel: s.kernel, shape, impl: r.impl, threads: r.threads, ms: r.ms, gflops, ratio_vs_openblas: ratio, ...(r.spread ? { ratio_q1: r.spread.q1, ratio_q3: r.spread.q3 } : {}), ...(vsNaive ? { ratio_vs_naive: vsNaive } : {}) },
        `${s.kernel.padEnd(20)} ${shape.padEnd(22)} ${r.impl.padEnd(8)} ${String(r.threads).padStart(2)}t ${fmt(gflops, 1).padStart(7)} GFLOP/s  ${ratio === null ? '' : fmt(ratio, 2) + 'x openblas'}${r.spread ? ` [${fmt(r.spread.q1, 2)}-${fmt(r.spread.q3, 2)}]` : ''}${vsNaive ? `  ${fmt(vsNaive, 1)}x naive` : ''}`,
      );
      if (r.impl === 'native' && r.threads === allThreads && s.kernel !== 'square' && r.ratio !== undefined && r.spread) {
        networkRows.push({ name: `${s.kernel} ${shape}`, ratio: r.ratio, ...r.spread, ms: r.ms, refMs: obMs[r.threads], flop });
      }
    }
  }
  if (networkRows.length) {
    // the networks' own shapes at all threads against OpenBLAS, in one place
    const sum = ratioSummary(networkRows);
    const list = (rows: RatioRow[]) => (rows.length ? rows.map((r) => `${r.name} ${fmt(r.ratio, 3)}x`).join(', ') : 'none');
    const ms = (x: number) => fmt(x, x < 10 ? 3 : 1);
    const ratio = sum.refMs / sum.ms;
    emit(
      args,
      {
        kernel: 'network-shapes', shape: `${sum.count} products once`, impl: 'native', threads: allThreads, ms: sum.ms, gflops: sum.flop / sum.ms / 1e6,
        ratio_vs_openblas: ratio, openblas_ms: sum.refMs, rounds: ROUNDS, count: sum.count, at_least_level: sum.atLeastLevel,
        median_ratio: sum.median, min_ratio: sum.min, max_ratio: sum.max, slower: sum.slower.map((r) => r.name), within_noise: sum.withinNoise.map((r) => r.name),
      },
      [
        `# network shapes, native at ${allThreads} threads against OpenBLAS (${ROUNDS} rounds): ${sum.atLeastLevel} of ${sum.count} at >= 1.00x, median ${fmt(sum.median, 2)}x, ${fmt(sum.min, 2)}-${fmt(sum.max, 2)}x; all ${sum.count} once: ${ms(sum.ms)} ms against ${ms(sum.refMs)} ms (${fmt(ratio, 2)}x)`,
        `#   below 1.00x in three rounds of four (q3 < 1): ${list(sum.slower)}`,
        `#   below 1.00x, level within the run's noise (q3 >= 1): ${list(sum.withinNoise)}`,
      ].join('\n'),
    );
  }
  if (!only) await benchConv(args, nat !== null, ob);
}

/** alternating rounds per shape and thread count (NEURONMERGE_BENCH_ROUNDS), and each round's time */
const ROUNDS = Math.max(1, Number(process.env.NEURONMERGE_BENCH_ROUNDS ?? 7) || 7);
const ROUND_MS = 150;
const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** only the convolution part (npm run bench -- conv) */
export async function benchConvOnly(args: BenchArgs): Promise<void> {
  await benchConv(args, nativeAddon() !== null, loadOpenBlas().lib);
}

/** convolution forward + backward for each VGG-16 layer at batch 128, through the engine's conv2d */
async function benchConv(args: BenchArgs, haveNative: boolean, ob: OpenBlas | null): Promise<void> {
  if (!haveNative) {
    if (!args.json) console.log('# conv: skipped (no native backend; the TypeScript backend would take minutes per layer)');
    return;
  }
  const batch = 128;
  if (!args.json) console.log(`# ${machineLine()}`);
  if (!args.json) console.log(`# conv2d forward + backward, batch ${batch}, native backend; ratio: OpenBLAS time for the same GEMMs alone / ours`);
  const rng = new Rng(2);
  for (const l of vggConvLayers()) {
    const rand = (shape: number[], requiresGrad: boolean) => {
      const n = shape.reduce((p, d) => p * d, 1);
      const a = new Float32Array(n);
      for (let i = 0; i < n; i++) a[i] = rng.uniform(-1, 1);
      return tensor(a, shape, { requiresGrad, copy: false });
    };
    const x = rand([batch, l.C, l.H, l.H], !l.first), w = rand([l.OC, l.C, 3, 3], true), b = rand([l.OC], true);
    const gy = rand([batch, l.OC, l.H, l.H], false);
    const step = () => {
      const y = conv2d(x, w, b, { padding: 1 });
      y.backward(gy);
      x.grad = null;
      w.grad = null;
      b.grad = null;
    };
    // the same layer with Winograd's kernel off (direct and GEMM paths only), in the same run
    const addon = nativeAddon()!;
    const mode = addon.winograd();
    addon.setWinograd('off');
    const offMs = await measureMs(`${l.name} no-winograd`, step, { iterations: 3 });
    addon.setWinograd(mode);
    const ms = await measureMs(l.name, step, { iterations: 3 });
    const tile = addon.winogradTile({ N: batch, C: l.C, H: l.H, W: l.H, OC: l.OC, KH: 3, KW: 3, SH: 1, SW: 1, PH: 1, PW: 1, OH: l.H, OW: l.H });
    const gemm = convGemms(l, batch);
    // multiply-adds x 2 of the forward and the backward products the layer needs, for the whole batch
    const flop = gemm.shapes.length * 2 * batch * l.OC * l.C * 9 * l.H * l.H;
    let refMs: number | null = null;
    if (ob) {
      ob.setThreads(nativeAddon()!.threads());
      refMs = 0;
      for (const s of gemm.shapes) {
        const { A, B, C, lda, ldb } = operands(s, rng);
        refMs += gemm.chunks * (await measureMs(`openblas ${s.kernel}`, () => ob.gemm(s.tA, s.tB, s.M, s.N, s.K, 1, A, 0, lda, B, 0, ldb, 0, C, 0, s.N), { iterations: 3, time: 300 }));
      }
    }
    const gflops = flop / ms / 1e6;
    emit(
      args,
      { kernel: 'conv2d-fwd-bwd', shape: `${batch}x${l.C}x${l.H}x${l.H} -> ${l.OC}`, impl: 'native', layer: l.name, ms, images_per_s: (batch * 1000) / ms, gflops, winograd_tile: tile, ms_without_winograd: offMs, openblas_gemm_ms: refMs, ratio_vs_openblas: refMs ? refMs / ms : null },
      `${l.name.padEnd(13)} ${String(l.C).padStart(3)}->${String(l.OC).padEnd(3)} ${String(l.H).padStart(2)}x${String(l.H).padEnd(2)}  ${fmt(ms, 1).padStart(8)} ms  ${fmt((batch * 1000) / ms, 0).padStart(6)} images/s  ${fmt(gflops, 1).padStart(6)} GFLOP/s (direct-equivalent)  ${tile ? `F(${tile}x${tile},3x3)` : 'no Winograd'}, without: ${fmt(offMs, 1)} ms (${fmt(ms / offMs, 2)}x)  ${refMs ? fmt(refMs / ms, 2) + 'x openblas-gemm-only' : ''}`,
    );
  }
}
