// The kernel registry (after tfjs-core's kernel_registry): backends register their kernels with a
// priority; each (kernel, dtype) resolves to the highest-priority backend that has it, and the pure
// TypeScript backend, which has every kernel for every dtype, is always last. Forcing a backend
// (NEURONMERGE_BACKEND or setBackend) makes it win wherever it has the kernel.

import { jsBackend } from './js.js';
import type { Backend, DType, KernelName, Kernels } from './types.js';

const backends = new Map<string, Backend>([[jsBackend.name, jsBackend]]);
// resolved kernels by dtype, then name (no key string built per call: a forward at batch 1 looks up
// a few dozen kernels)
const cache = new Map<DType, Map<string, { fn: Function; backend: string }>>();
/** NEURONMERGE_BACKEND=js|native|webgpu forces a backend as soon as it is registered */
const envBackend = (typeof process !== 'undefined' && process.env.NEURONMERGE_BACKEND) || null;
let forced: string | null = envBackend === 'js' ? 'js' : null;

export function registerBackend(b: Backend): void {
  backends.set(b.name, b);
  if (b.name === envBackend) forced = b.name;
  cache.clear();
}

export function unregisterBackend(name: string): void {
  backends.delete(name);
  cache.clear();
}

export function listBackends(): { name: string; priority: number; dtypes: DType[]; kernels: string[] }[] {
  return [...backends.values()]
    .sort((a, b) => b.priority - a.priority)
    .map((b) => ({ name: b.name, priority: b.priority, dtypes: b.dtypes, kernels: Object.keys(b.kernels) }));
}

/** Force a backend by name (null: back to priority order). Throws if no such backend is registered. */
export function setBackend(name: string | null): void {
  if (name !== null && !backends.has(name)) {
    throw new Error(`setBackend: no backend named '${name}' (registered: ${[...backends.keys()].join(', ') || 'none'})`);
  }
  forced = name;
  cache.clear();
}

export function getForcedBackend(): string | null {
  return forced;
}

function resolve<K extends KernelName>(name: K, dtype: DType): { fn: Function; backend: string } {
  let byName = cache.get(dtype);
  let hit = byName?.get(name);
  if (hit) return hit;
  // webgpu runs whole models (src/train/gpu.ts); the CPU kernels stay the best available ones
  if (envBackend && envBackend !== 'webgpu' && forced === null && !backends.has(envBackend)) {
    throw new Error(`NEURONMERGE_BACKEND=${envBackend}, but no backend of that name is available (registered: ${[...backends.keys()].join(', ')})`);
  }
  const order = [...backends.values()].sort((a, b) => b.priority - a.priority);
  if (forced) {
    const f = backends.get(forced)!;
    order.splice(order.indexOf(f), 1);
    order.unshift(f);
  }
  for (const b of order) {
    const fn = b.kernels[name];
    if (fn && b.dtypes.includes(dtype)) {
      hit = { fn: fn as Function, backend: b.name };
      if (!byName) cache.set(dtype, (byName = new Map()));
      byName.set(name, hit);
      return hit;
    }
  }
  throw new Error(`kernel '${name}' has no implementation for ${dtype} in any registered backend`);
}

/** The implementation of kernel `name` for `dtype` from the best backend that has it. */
export function kernel<K extends KernelName>(name: K, dtype: DType): Kernels[K] {
  return resolve(name, dtype).fn as Kernels[K];
}

/** Which backend serves kernel `name` for `dtype`. */
export function kernelBackend(name: KernelName, dtype: DType): string {
  return resolve(name, dtype).backend;
}
