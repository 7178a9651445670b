// The paper's networks, with widths as parameters so that merged (narrower) models are the same
// architectures: LeNet-5 (Caffe variant), VGG-16 for CIFAR-10 with batch norm, and the DBN's
// unrolled sigmoid network. An `Arch` describes a model fully; checkpoints store it.
import { BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, BatchNorm1d } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { Rng } from '../tensor/rng.js';

export type Arch =
  | { model: 'lenet5'; widths: [number, number, number]; classes: number; inChannels: number; inSize: number }
  | { model: 'vgg16'; widths: number[]; fc: number; classes: number; inChannels: number; inSize: number; convBias?: boolean }
  | { model: 'dbn'; widths: number[]; classes: number; inFeatures: number };

export const VGG16_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];
/** where VGG-16 pools: after these conv indices (0-based) */
export const VGG16_POOL_AFTER = [1, 3, 6, 9, 12];

export function lenet5Arch(widths: [number, number, number] = [20, 50, 500]): Arch {
  return { model: 'lenet5', widths, classes: 10, inChannels: 1, inSize: 28 };
}

export function vgg16Arch(widths: number[] = VGG16_WIDTHS, fc = 512): Arch {
  return { model: 'vgg16', widths, fc, classes: 10, inChannels: 3, inSize: 32 };
}

export function dbnArch(widths: number[] = [500, 500, 2000]): Arch {
  return { model: 'dbn', widths, classes: 10, inFeatures: 784 };
}

function checkWidths(name: string, widths: number[], n: number): void {
  if (!Array.isArray(widths) || widths.length !== n || widths.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new Error(`${name}: widths must be ${n} positive integers, got ${JSON.stringify(widths)}`);
  }
}

/** the side of LeNet-5's last feature map: two 5×5 valid convolutions, each followed by a 2×2 pool */
const lenetMapSize = (inSize: number) => Math.floor((Math.floor((inSize - 4) / 2) - 4) / 2);

/** one sample's shape for a model of this architecture: [C, H, W], or [features] for the DBN */
export function inputShape(arch: Arch): number[] {
  return arch.model === 'dbn' ? [arch.inFeatures] : [arch.inChannels, arch.inSize, arch.inSize];
}

/** Build a model from its description; weights initialised from the seed. */
export function buildModel(arch: Arch, seed = 0): Sequential {
  const rng = new Rng(seed);
  switch (arch.model) {
    case 'lenet5': {
      checkWidths('lenet5', arch.widths, 3);
      const [c1, c2, f] = arch.widths;
      const s = lenetMapSize(arch.inSize);
      if (s < 1) throw new Error(`lenet5: input size ${arch.inSize} is too small`);
      return new Sequential(
        new Conv2d(arch.inChannels, c1, 5, { rng }), new MaxPool2d(2),
        new Conv2d(c1, c2, 5, { rng }), new MaxPool2d(2),
        new Flatten(), new Linear(c2 * s * s, f, { rng }), new ReLU(), new Linear(f, arch.classes, { rng }),
      );
    }
    case 'vgg16': {
      checkWidths('vgg16', arch.widths, 13);
      const layers: Module[] = [];
      let c = arch.inChannels, size = arch.inSize;
      arch.widths.forEach((w, i) => {
        // no conv bias before batch norm; a merged model has one (the folded batch norm's shift)
        layers.push(new Conv2d(c, w, 3, { padding: 1, bias: arch.convBias ?? false, rng }), new BatchNorm2d(w), new ReLU());
        c = w;
        if (VGG16_POOL_AFTER.includes(i)) {
          layers.push(new MaxPool2d(2));
          size = Math.floor(size / 2);
        }
      });
      if (size < 1) throw new Error(`vgg16: input size ${arch.inSize} is too small for five poolings`);
      layers.push(new Flatten(), new Linear(c * size * size, arch.fc, { rng }), new BatchNorm1d(arch.fc), new ReLU(), new Linear(arch.fc, arch.classes, { rng }));
      return new Sequential(...layers);
    }
    case 'dbn': {
      if (!Array.isArray(arch.widths) || arch.widths.length < 1) throw new Error('dbn: widths must list at least one hidden layer');
      checkWidths('dbn', arch.widths, arch.widths.length);
      const layers: Module[] = [];
      let n = arch.inFeatures;
      for (const w of arch.widths) {
        layers.push(new Linear(n, w, { rng, init: 'xavier' }), new Sigmoid());
        n = w;
      }
      layers.push(new Linear(n, arch.classes, { rng, init: 'xavier' }));
      return new Sequential(...layers);
    }
    default:
      throw new Error(`unknown model '${(arch as { model: string }).model}' (known: lenet5, vgg16, dbn)`);
  }
}

const posInt = (x: unknown) => Number.isInteger(x) && (x as number) >= 1;

/**
 * check an arch read from a file or the command line, field by field, without building the model (a
 * description of more than 2^31 numbers is refused before anything is allocated)
 */
export function parseArch(x: unknown, what = 'arch'): Arch {
  const a = x as Arch;
  if (!a || typeof a !== 'object' || !['lenet5', 'vgg16', 'dbn'].includes((a as { model: string }).model)) {
    throw new Error(`${what}: not a model description (expected {"model": "lenet5" | "vgg16" | "dbn", ...})`);
  }
  const fields: [string, unknown][] = a.model === 'dbn' ? [['classes', a.classes], ['inFeatures', a.inFeatures]]
    : [['classes', a.classes], ['inChannels', a.inChannels], ['inSize', a.inSize], ...(a.model === 'vgg16' ? [['fc', a.fc] as [string, unknown]] : [])];
  for (const [k, v] of fields) if (!posInt(v)) throw new Error(`${what}: ${a.model} field '${k}' must be a positive integer, got ${JSON.stringify(v)}`);
  const n = a.model === 'lenet5' ? 3 : a.model === 'vgg16' ? 13 : Array.isArray(a.widths) ? Math.max(1, a.widths.length) : 1;
  checkWidths(`${what}: ${a.model}`, a.widths, n);
  if (a.model === 'lenet5' && lenetMapSize(a.inSize) < 1) throw new Error(`${what}: lenet5 input size ${a.inSize} is too small`);
  if (a.model === 'vgg16' && a.inSize < 32) throw new Error(`${what}: vgg16 input size ${a.inSize} is too small for five poolings`);
  const size = stateSize(a);
  if (size > 2 ** 31) throw new Error(`${what}: describes a model of ${size.toLocaleString('en')} values, more than the ${(2 ** 31).toLocaleString('en')} allowed`);
  return a;
}

/** how many numbers a model of this architecture holds (parameters and batch-norm statistics), computed
 * from the description alone */
export function stateSize(a: Arch): number {
  const lin = (i: number, o: number, bias = true) => i * o + (bias ? o : 0);
  switch (a.model) {
    case 'lenet5': {
      const [c1, c2, f] = a.widths;
      const s = lenetMapSize(a.inSize);
      return lin(a.inChannels * 25, c1) + lin(c1 * 25, c2) + lin(c2 * s * s, f) + lin(f, a.classes);
    }
    case 'vgg16': {
      let c = a.inChannels, size = a.inSize, total = 0;
      a.widths.forEach((w, i) => {
        total += lin(c * 9, w, a.convBias ?? false) + 4 * w;
        c = w;
        if (VGG16_POOL_AFTER.includes(i)) size = Math.floor(size / 2);
      });
      return total + lin(c * size * size, a.fc) + 4 * a.fc + lin(a.fc, a.classes);
    }
    case 'dbn': {
      let n = a.inFeatures, total = 0;
      for (const w of a.widths) {
        total += lin(n, w);
        n = w;
      }
      return total + lin(n, a.classes);
    }
  }
}
