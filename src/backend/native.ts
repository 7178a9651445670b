// The native backend: the C++ addon (native/, built by node-gyp during npm install) behind the kernel
// interface. Loaded through ordered fallbacks; where none loads, the package runs on the TypeScript
// kernels and says once why. NEURONMERGE_BACKEND=js skips it; =native makes its absence an error.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerBackend } from './registry.js';
import type { Backend, ConvAlgorithmChoice, ConvGeometry, ConvTarget, FloatArray, Kernels } from './types.js';

export interface NativeAddon {
  gemm: Kernels['gemm'];
  gemmAsync(...args: Parameters<Kernels['gemm']>): Promise<number>;
  im2col: Kernels['im2col'];
  col2im: Kernels['col2im'];
  maxPool2d: Kernels['maxPool2d'];
  maxPool2dBackward: Kernels['maxPool2dBackward'];
  batchNormForward: Kernels['batchNormForward'];
  batchNormBackward: Kernels['batchNormBackward'];
  unary: Kernels['unary'];
  biasActivate: Kernels['biasActivate'];
  sgdUpdate: Kernels['sgdUpdate'];
  roundBf16: Kernels['roundBf16'];
  flipConvWeights: Kernels['flipConvWeights'];
  convWeightGrad: Kernels['convWeightGrad'];
  binary: Kernels['binary'];
  permute: Kernels['permute'];
  convEpilogue: Kernels['convEpilogue'];
  convForward: Kernels['convForward'];
  packConvWeights: Kernels['packConvWeights'];
  winogradWeights: Kernels['winogradWeights'];
  reduce: Kernels['reduce'];
  pairwiseSqDist: Kernels['pairwiseSqDist'];
  pairwiseSqDistAsync(...args: Parameters<Kernels['pairwiseSqDist']>): Promise<number>;
  kmeansStep: Kernels['kmeansStep'];
  kmeansStepAsync(...args: Parameters<Kernels['kmeansStep']>): Promise<number>;
  threads(): number;
  setThreads(n: number): number;
  isa(): string;
  setIsa(isa: 'avx512' | 'avx2' | 'generic'): boolean;
  // 3x3 stride-1 convolutions by Winograd's F(m x m, 3 x 3): where it measured faster (auto), wherever
  // the geometry allows (on), never (off); NEURONMERGE_WINOGRAD=0|1 sets it at load
  setWinograd(mode: 'auto' | 'on' | 'off'): void;
  winograd(): 'auto' | 'on' | 'off';
  winogradTile: Kernels['winogradTile'];
  convAlgorithm: Kernels['convAlgorithm'];
  setMallocReuse(on: boolean): boolean;
  watchInterrupts(): boolean;
  interruptSignal(): number;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** NEURONMERGE_NATIVE_PATH (a custom build) replaces the usual places: build/Release, build/Debug */
function candidates(): string[] {
  if (process.env.NEURONMERGE_NATIVE_PATH) return [process.env.NEURONMERGE_NATIVE_PATH];
  return [join(root, 'build', 'Release', 'neuronmerge.node'), join(root, 'build', 'Debug', 'neuronmerge.node')];
}

/** the convolution entries as the compiled addon exports them: the geometry as a Float64Array of its
 *  13 sizes, the epilogue and the prepared weights spread into arguments (a typed array and
 *  positional arguments cross N-API in a fraction of the time named properties take) */
interface RawConv {
  convForward(
    x: FloatArray, xOff: number, geometry: Float64Array, w: FloatArray, scale: FloatArray, shift: FloatArray, relu: boolean, pool: number,
    out: FloatArray, outOff: number, packed: FloatArray, packedWidth: number, winograd: FloatArray, winogradTile: number, winogradWidth: number,
  ): void;
  convWeightGrad(x: FloatArray, xOff: number, geometry: Float64Array, g: FloatArray, gOff: number, gw: FloatArray): boolean;
  winogradTile(geometry: Float64Array): number;
  convAlgorithm(geometry: Float64Array, target: ConvTarget): ConvAlgorithmChoice;
}
type RawAddon = Omit<NativeAddon, keyof RawConv> & RawConv;

/** the geometry's sizes in nm::ConvGeometry's order, into one scratch array (each call reads it
 *  before returning) */
const GEO = new Float64Array(13);
function sizes(g: ConvGeometry): Float64Array {
  GEO[0] = g.N; GEO[1] = g.C; GEO[2] = g.H; GEO[3] = g.W; GEO[4] = g.OC; GEO[5] = g.KH; GEO[6] = g.KW;
  GEO[7] = g.SH; GEO[8] = g.SW; GEO[9] = g.PH; GEO[10] = g.PW; GEO[11] = g.OH; GEO[12] = g.OW;
  return GEO;
}
const NONE = new Float32Array(0);

/** the raw addon with its convolution entries taking the Kernels interface's objects */
function withConvObjects(raw: RawAddon): NativeAddon {
  return {
    ...raw,
    convForward: (x, xOff, g, w, e, out, outOff, p) => raw.convForward(
      x, xOff, sizes(g), w, e.scale ?? NONE, e.shift ?? NONE, e.relu ?? false, e.pool ?? 1, out, outOff,
      p?.packed ?? NONE, p?.width ?? 0, p?.winograd ?? NONE, p?.tile ?? 0, p?.winogradWidth ?? 0,
    ),
    convWeightGrad: (x, xOff, g, gy, gOff, gw) => raw.convWeightGrad(x, xOff, sizes(g), gy, gOff, gw),
    winogradTile: (g) => raw.winogradTile(sizes(g)),
    convAlgorithm: (g, t) => raw.convAlgorithm(sizes(g), t),
  };
}

let addon: NativeAddon | null = null;
let loadError: string | null = null;

function load(): void {
  if (process.env.NEURONMERGE_BACKEND === 'js') {
    loadError = 'NEURONMERGE_BACKEND=js';
    return;
  }
  const req = createRequire(import.meta.url);
  const tried: string[] = [];
  for (const p of candidates()) {
    if (!existsSync(p)) {
      tried.push(`${p}: not built`);
      continue;
    }
    try {
      addon = withConvObjects(req(p) as RawAddon);
      return;
    } catch (e) {
      tried.push(`${p}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  loadError = tried.join('; ');
  if (process.env.NEURONMERGE_QUIET !== '1') {
    console.warn(`neuronmerge: the native addon is not available, using the TypeScript kernels (slower). Tried ${loadError}. Build it with \`npm run build:native\`.`);
  }
}

load();

let mallocReuse = false;

/**
 * Whether glibc's malloc keeps freed large blocks for reuse (see native/addon.cc, SetMallocReuse):
 * a training step allocates its activations anew each step, and with glibc's defaults every block of
 * more than a few hundred KiB is a fresh mapping whose pages fault on first touch (VGG-16 at batch 128:
 * 150,000 faults a step). On, the process's memory stays at its peak instead of shrinking. Process-wide;
 * needs the native addon and glibc; returns whether it took. The command, the benchmarks and the
 * training script turn it on (NEURONMERGE_MALLOC=default keeps glibc's defaults); the library
 * imported on its own leaves malloc alone unless this is called or NEURONMERGE_MALLOC=reuse.
 */
export function setMallocReuse(on: boolean): boolean {
  if (!addon) return false;
  const ok = addon.setMallocReuse(on);
  mallocReuse = on && ok;
  return ok;
}

/** whether setMallocReuse(true) is in effect */
export function mallocReuseOn(): boolean {
  return mallocReuse;
}

{
  const mode = process.env.NEURONMERGE_MALLOC;
  if (mode === 'reuse') setMallocReuse(true);
  else if (mode !== undefined && mode !== 'default' && mode !== '') {
    console.warn(`neuronmerge: NEURONMERGE_MALLOC=${mode} is not 'reuse' or 'default'; leaving malloc as it is`);
  }
}

const loaded = addon as NativeAddon | null;
if (loaded) {
  const a = loaded;
  const nativeBackend: Backend = {
    name: 'native',
    priority: 10,
    dtypes: ['float32'],
    kernels: {
      gemm: a.gemm,
      im2col: a.im2col,
      col2im: a.col2im,
      maxPool2d: a.maxPool2d,
      maxPool2dBackward: a.maxPool2dBackward,
      batchNormForward: a.batchNormForward,
      batchNormBackward: a.batchNormBackward,
      unary: a.unary,
      biasActivate: a.biasActivate,
      binary: a.binary,
      permute: a.permute,
      sgdUpdate: a.sgdUpdate,
      roundBf16: a.roundBf16,
      flipConvWeights: a.flipConvWeights,
      convEpilogue: a.convEpilogue,
      convForward: a.convForward,
      packConvWeights: a.packConvWeights,
      winogradTile: a.winogradTile,
      convAlgorithm: a.convAlgorithm,
      winogradWeights: a.winogradWeights,
      convWeightGrad: a.convWeightGrad,
      reduce: a.reduce,
      pairwiseSqDist: a.pairwiseSqDist,
      kmeansStep: a.kmeansStep,
    },
  };
  registerBackend(nativeBackend);
}

let watching = false;

/**
 * From now on SIGINT (Ctrl-C) and SIGTERM only ask this process to stop: a long loop polls
 * interruptRequested() between steps, saves what it has and ends (a second signal a second or more
 * later ends the process at once). Needs the native addon (a synchronous loop gives JavaScript's own
 * signal listeners no turn); returns whether it took.
 */
export function watchInterrupts(): boolean {
  if (!watching && addon && typeof addon.watchInterrupts === 'function') watching = addon.watchInterrupts();
  return watching;
}

/** the signal that asked this process to stop ('SIGINT', 'SIGTERM'), or null: none, or not watching */
export function interruptRequested(): 'SIGINT' | 'SIGTERM' | null {
  if (!watching) return null;
  const s = addon!.interruptSignal();
  return s === 2 ? 'SIGINT' : s === 15 ? 'SIGTERM' : null;
}

/** work stopped by Ctrl-C or SIGTERM at a point where it could stop (see watchInterrupts); the message
 * says where it stopped and what was kept */
export class Interrupted extends Error {
  constructor(message: string, readonly signal: 'SIGINT' | 'SIGTERM') {
    super(message);
    this.name = 'Interrupted';
  }
}

/** throws Interrupted (`interrupted (SIGINT) while …`) where a stop was asked for; a long synchronous
 *  loop calls it between two pieces of work it can drop */
export function stopIfInterrupted(doing: () => string): void {
  const signal = interruptRequested();
  if (signal) throw new Interrupted(`interrupted (${signal}) while ${doing()}`, signal);
}

/** the loaded addon, or null (see nativeLoadError) */
export function nativeAddon(): NativeAddon | null {
  return addon;
}

/** why the addon did not load, or null where it did */
export function nativeLoadError(): string | null {
  return loadError;
}
