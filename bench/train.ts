// Training-step benchmark: one step (forward, backward, SGD update) of the DBN, LeNet-5 and VGG-16 at
// batch 128 with images/s, and in the same run PyTorch's time for the identical network and batch
// (Debian's python3-torch, where installed), with the ratio ours / PyTorch.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildModel, crossEntropy, dbnArch, kernelBackend, lenet5Arch, mallocReuseOn, nativeAddon, Rng, SGD, tensor, trackAllocations, vgg16Arch } from '../src/internal.js';
import type { Arch } from '../src/internal.js';
import { emit, fmt, machineLine, measureMs } from './util.js';
import type { BenchArgs } from './util.js';
import { envWithoutRerun } from '../src/runtime/hugepages.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * PyTorch's instruction-set caps matching the native kernels' where those run below AVX-512 (an AVX2
 * or portable build on a machine that has more, by NEURONMERGE_SIMD): ATen's vectorised loops and
 * oneDNN's convolutions then run at the same width, so the ratio compares like with like. None where
 * ours run AVX-512 (PyTorch picks its best) or on a CPU without AVX-512 (where the caps change nothing).
 */
export function torchIsaCaps(isa: string | undefined): Record<string, string> {
  if (isa === 'avx2') return { ATEN_CPU_CAPABILITY: 'avx2', DNNL_MAX_CPU_ISA: 'AVX2' };
  if (isa === 'generic') return { ATEN_CPU_CAPABILITY: 'default', DNNL_MAX_CPU_ISA: 'SSE41' };
  return {};
}

function torchStep(model: string, batch: number, iters: number, threads: number, caps: Record<string, string>): { ms: number | null; why: string } {
  const py = ['/usr/bin/python3', 'python3'].find((p) => p === 'python3' || existsSync(p))!;
  const r = spawnSync(py, [join(root, 'bench', 'torch_train.py'), model, String(batch), String(iters), String(threads)], { encoding: 'utf8', env: { ...envWithoutRerun(), ...caps } });
  if (r.status !== 0) return { ms: null, why: (r.stderr || '').includes('No module named') ? 'python3-torch is not installed (apt-get install python3-torch)' : `PyTorch run failed: ${(r.stderr || '').split('\n').filter(Boolean).pop()}` };
  try {
    return { ms: JSON.parse(r.stdout.trim().split('\n').pop()!).ms_per_step, why: '' };
  } catch {
    return { ms: null, why: 'PyTorch printed no result' };
  }
}

/** one training step (forward, backward, SGD momentum update) of the DBN, LeNet-5 and VGG-16 on random
 *  inputs at the given batch, each model built when reached (seeded) */
export function* trainingSteps(batch: number): Generator<{ name: string; step: () => void }> {
  const cases: [string, Arch, number[]][] = [['dbn', dbnArch(), [batch, 784]], ['lenet5', lenet5Arch(), [batch, 1, 28, 28]], ['vgg16', vgg16Arch(), [batch, 3, 32, 32]]];
  for (const [name, arch, shape] of cases) {
    const rng = new Rng(1);
    const model = buildModel(arch, 1);
    const x = tensor(Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.random()), shape, { copy: false });
    const y = Int32Array.from({ length: batch }, () => rng.int(10));
    const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
    yield {
      name,
      // as fit takes a step: the forward's arrays reused by the backward pass
      step: () => {
        opt.zeroGrad({ reuse: true });
        const { result: logits, buffers } = trackAllocations(() => model.forward(x));
        crossEntropy(logits, y).backward(undefined, { spent: { buffers, keep: [logits] } });
        opt.step();
      },
    };
  }
}

export async function benchTrain(args: BenchArgs): Promise<void> {
  const batch = 128;
  const threads = nativeAddon()?.threads() ?? 1;
  const isa = nativeAddon()?.isa();
  const caps = torchIsaCaps(isa);
  const capped = Object.entries(caps).map(([k, v]) => `${k}=${v}`).join(' ');
  if (!args.json) console.log(`# ${machineLine()}`);
  if (!args.json) console.log(`# training step (forward, backward, SGD momentum update), batch ${batch}, backend ${kernelBackend('gemm', 'float32')}, ${threads} threads, malloc reuse ${mallocReuseOn() ? 'on' : 'off'}${process.env.GLIBC_TUNABLES ? `, GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES}` : ''}; PyTorch with the same threads (glibc's defaults)${capped ? `, capped to the same instruction set (${capped})` : ''}`);
  for (const { name, step } of trainingSteps(batch)) {
    const iters = name === 'vgg16' ? 3 : 10;
    const ms = await measureMs(name, step, { iterations: iters, time: name === 'vgg16' ? 5000 : 2000 });
    const t = torchStep(name, batch, iters, threads, caps);
    const ratio = t.ms ? ms / t.ms : null;
    emit(
      args,
      { model: name, batch, impl: 'neuronmerge', isa: isa ?? 'js', torch_caps: capped || null, threads, ms_per_step: ms, images_per_s: (batch * 1000) / ms, torch_ms_per_step: t.ms, ratio_vs_torch: ratio },
      `train ${name.padEnd(7)} batch ${batch}: ${fmt(ms, 1).padStart(8)} ms/step ${fmt((batch * 1000) / ms, 0).padStart(6)} img/s   PyTorch ${t.ms ? fmt(t.ms, 1) + ' ms' : `skipped (${t.why})`}   ${ratio ? 'ours/PyTorch ' + fmt(ratio, 2) : ''}`,
    );
  }
}
