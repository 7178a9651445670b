import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
// The environment variables neuronmerge reads, what each accepts, and a check the command runs first so
// that a typo is an error naming the variable, not a setting silently ignored.

export interface EnvVar {
  name: string;
  /** the values it accepts, in words */
  accepts: string;
  meaning: string;
  /** null where the value is fine; else why not */
  check?: (v: string) => string | null;
}

const oneOf = (...xs: string[]) => (v: string) => (xs.includes(v) ? null : `must be ${xs.join(', ')}`);

export const ENVIRONMENT: EnvVar[] = [
  { name: 'NEURONMERGE_THREADS', accepts: 'an integer 1–1024', meaning: 'threads of the native kernels (default: the cores; more than the cores draws a note)', check: (v) => (/^\d+$/.test(v) && +v >= 1 && +v <= 1024 ? null : 'must be an integer from 1 to 1024') },
  { name: 'NEURONMERGE_BACKEND', accepts: 'js, native, webgpu', meaning: 'the kernels: TypeScript, the native addon, or WebGPU (every op on the GPU) (default: native where built)', check: oneOf('js', 'native', 'webgpu') },
  { name: 'NEURONMERGE_SIMD', accepts: 'generic, avx2, avx512', meaning: 'the highest instruction set the native kernels may use (default: what the CPU has)', check: oneOf('generic', 'avx2', 'avx512') },
  { name: 'NEURONMERGE_DATA', accepts: 'a folder', meaning: 'the dataset cache (default: ~/.cache/neuronmerge)' },
  { name: 'NEURONMERGE_HUGEPAGES', accepts: '0', meaning: '0: the command does not re-run itself with huge pages for large arrays (Linux)', check: oneOf('0', '1') },
  { name: 'NEURONMERGE_MALLOC', accepts: 'reuse, default', meaning: 'reuse: malloc keeps freed large blocks (on by default in the command and the benchmarks)', check: oneOf('reuse', 'default') },
  { name: 'NEURONMERGE_GRAD_POOL', accepts: 'MiB, 0', meaning: 'the most memory backward passes keep for reuse (default 1024; 0: none)', check: (v) => (/^\d+(\.\d+)?$/.test(v) ? null : 'must be a number of MiB, 0 or more') },
  { name: 'NEURONMERGE_FUSE', accepts: '0', meaning: '0: no fused convolution + batch norm + ReLU + pool at inference', check: oneOf('0', '1') },
  { name: 'NEURONMERGE_WINOGRAD', accepts: '0, 1, auto', meaning: "3x3 convolutions by Winograd's transforms: 0 never, 1 wherever the shape allows (default: auto, where measured faster)", check: oneOf('0', '1', 'auto') },
  { name: 'NEURONMERGE_NATIVE_PATH', accepts: 'a .node file', meaning: 'load this build of the native addon instead of build/Release (the command refuses one that does not load)' },
  { name: 'NEURONMERGE_WEBGPU_FLAGS', accepts: 'Dawn toggles', meaning: 'the WebGPU adapter to ask for (default: Vulkan, then software OpenGL ES)' },
  { name: 'NEURONMERGE_WEBGPU_SOFTWARE', accepts: '0', meaning: '0: never fall back to the software WebGPU adapter', check: oneOf('0', '1') },
];

/** the first environment variable set to a value it does not accept, as an error message; null if none
 * (a variable set to the empty string counts as unset, as a shell's `VAR= command` means) */
export function environmentError(env: NodeJS.ProcessEnv = process.env): string | null {
  for (const v of ENVIRONMENT) {
    const value = env[v.name];
    if (value === undefined || value === '' || !v.check) continue;
    const why = v.check(value);
    if (why) return `${v.name}=${value}: ${why}`;
  }
  return null;
}

/** why the addon build NEURONMERGE_NATIVE_PATH names cannot be loaded (a message naming the variable),
 * or null: unset, empty, loadable, or the TypeScript kernels asked for (NEURONMERGE_BACKEND=js) */
export function nativePathError(env: NodeJS.ProcessEnv = process.env): string | null {
  const path = env.NEURONMERGE_NATIVE_PATH;
  if (!path || env.NEURONMERGE_BACKEND === 'js') return null;
  if (!existsSync(path)) return `NEURONMERGE_NATIVE_PATH=${path}: cannot load it (no such file)`;
  try {
    createRequire(import.meta.url)(resolve(path));
    return null;
  } catch (e) {
    return `NEURONMERGE_NATIVE_PATH=${path}: cannot load it (${(e as Error).message.split('\n')[0]})`;
  }
}
