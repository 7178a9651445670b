// What the native-kernel suites share: the addon (a failure where it did not load), the instruction
// sets this CPU runs, a run on both backends, and seeded random floats.
import * as assert from 'uvu/assert';
import { nativeAddon, nativeLoadError, setBackend } from '../src/internal.js';
import type { ConvGeometry, Epilogue, FloatArray, NativeAddon, Rng } from '../src/internal.js';

export function need(): NativeAddon {
  const a = nativeAddon();
  if (!a) assert.unreachable(`the native addon did not load: ${nativeLoadError()}`);
  return a!;
}

/** the micro-kernel builds this CPU runs */
export function isas(a: NativeAddon): string[] {
  const prev = a.isa();
  const ok = (['generic', 'avx2', 'avx512'] as const).filter((i) => a.setIsa(i));
  a.setIsa(prev as 'avx2');
  return ok;
}

/** run() on the native backend, then on the TypeScript one (restoring the automatic choice) */
export function onBothBackends<R>(run: () => R): [R, R] {
  const nat = run();
  setBackend('js');
  try {
    return [nat, run()];
  } finally {
    setBackend(null);
  }
}

/** n uniform floats in [lo, hi) from `rng` */
export const randomFloats = (rng: Rng) => (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => rng.uniform(lo, hi));

/** the geometry object of a convolution, from the sizes in the order the kernels once took them */
export function geo(N: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number, OC: number): ConvGeometry {
  return { N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW };
}

/** the geometry of an OH x OW output, its input as large as stride and padding need */
export function outGeo(N: number, C: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number, OC: number): ConvGeometry {
  return { N, C, H: (OH - 1) * SH + KH - 2 * PH, W: (OW - 1) * SW + KW - 2 * PW, OC, KH, KW, SH, SW, PH, PW, OH, OW };
}

/** the epilogue object */
export function ep(scale: FloatArray, shift: FloatArray, relu: boolean, pool: number): Epilogue {
  return { scale, shift, relu, pool: pool as 1 | 2 };
}
