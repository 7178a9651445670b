// The paper's networks, with widths as parameters so that merged (narrower) models are the same
// architectures: LeNet-5 (Caffe variant), VGG-16 for CIFAR-10 with batch norm, and the DBN's
// unrolled sigmoid network. An `Arch` describes a model fully; checkpoints store it.
import { AvgPool2d, BatchNorm, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Tanh, BatchNorm1d } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import { Rng } from '../tensor/rng.js';

/** one layer of a `sequential` model (any stack of these layers: an imported ONNX model) */
export type LayerSpec =
  | { op: 'conv'; in: number; out: number; kernel: number; stride: number; padding: number; bias: boolean }
  | { op: 'linear'; in: number; out: number; bias: boolean }
  | { op: 'batchnorm'; features: number; eps: number }
  | { op: 'maxpool' | 'avgpool'; kernel: number; stride: number; padding: number }
  | { op: 'relu' | 'sigmoid' | 'tanh' | 'flatten' }
  | { op: 'dropout'; p: number };

export type Arch =
  // `dataset`: what the model reads where it is not the network's own (LeNet-5 on Fashion-MNIST)
  | { model: 'lenet5'; widths: [number, number, number]; classes: number; inChannels: number; inSize: number; dataset?: string }
  | { model: 'vgg16'; widths: number[]; fc: number; classes: number; inChannels: number; inSize: number; convBias?: boolean; dataset?: string }
  | { model: 'dbn'; widths: number[]; classes: number; inFeatures: number; dataset?: string }
  /** any stack of layers: `input` is one sample's shape, `dataset` what it reads (mnist, cifar10, …) */
  | { model: 'sequential'; input: number[]; classes: number; layers: LayerSpec[]; dataset: string };

/** the layers of a model as `sequential` specs (what its architecture description records) */
export function specsOf(model: Sequential): LayerSpec[] {
  const single = (p: number | [number, number], what: string): number => {
    if (typeof p === 'number') return p;
    if (p[0] !== p[1]) throw new Error(`${what}: ${JSON.stringify(p)} is not square`);
    return p[0];
  };
  return model.layers.map((m, i): LayerSpec => {
    if (m instanceof Conv2d) return { op: 'conv', in: m.weight.shape[1], out: m.weight.shape[0], kernel: m.weight.shape[2], stride: single(m.stride, `layer ${i} stride`), padding: single(m.padding, `layer ${i} padding`), bias: m.bias !== null };
    if (m instanceof Linear) return { op: 'linear', in: m.weight.shape[1], out: m.weight.shape[0], bias: m.bias !== null };
    if (m instanceof BatchNorm) return { op: 'batchnorm', features: m.weight.size, eps: m.eps };
    if (m instanceof MaxPool2d) return { op: 'maxpool', kernel: single(m.kernelSize, `layer ${i} kernel`), stride: single(m.stride ?? m.kernelSize, `layer ${i} stride`), padding: single(m.padding, `layer ${i} padding`) };
    if (m instanceof AvgPool2d) return { op: 'avgpool', kernel: single(m.kernelSize, `layer ${i} kernel`), stride: single(m.stride ?? m.kernelSize, `layer ${i} stride`), padding: 0 };
    if (m instanceof ReLU) return { op: 'relu' };
    if (m instanceof Sigmoid) return { op: 'sigmoid' };
    if (m instanceof Tanh) return { op: 'tanh' };
    if (m instanceof Flatten) return { op: 'flatten' };
    if (m instanceof Dropout) return { op: 'dropout', p: m.p };
    throw new Error(`layer ${i} (${m.describe()}) cannot be described as a sequential layer`);
  });
}

/** one sample's shape after each layer of `layers` from `input` (checks that each layer fits the last) */
export function shapesThrough(layers: LayerSpec[], input: number[], what = 'sequential'): number[][] {
  let s = [...input];
  const out: number[][] = [];
  layers.forEach((l, i) => {
    const at = `${what}: layer ${i} (${l.op})`;
    switch (l.op) {
      case 'conv':
      case 'maxpool':
      case 'avgpool': {
        if (s.length !== 3) throw new Error(`${at} needs channels × height × width, gets ${s.join(' × ')}`);
        const side = (v: number) => Math.floor((v + 2 * l.padding - l.kernel) / l.stride) + 1;
        if (l.op === 'conv' && s[0] !== l.in) throw new Error(`${at} reads ${l.in} channels, gets ${s[0]}`);
        s = [l.op === 'conv' ? l.out : s[0], side(s[1]), side(s[2])];
        if (s[1] < 1 || s[2] < 1) throw new Error(`${at} leaves no output (${s.join(' × ')})`);
        break;
      }
      case 'linear':
        if (s.length !== 1 || s[0] !== l.in) throw new Error(`${at} reads ${l.in} features, gets ${s.join(' × ')}`);
        s = [l.out];
        break;
      case 'batchnorm':
        if (s[0] !== l.features) throw new Error(`${at} normalises ${l.features} channels, gets ${s.join(' × ')}`);
        break;
      case 'flatten':
        s = [s.reduce((a, b) => a * b, 1)];
        break;
      default:
        break;
    }
    out.push(s);
  });
  return out;
}

/** what to call a model in messages and pages: lenet5, vgg16 or dbn by name; a `sequential` stack of
 * fully connected layers an mlp, any other one (an imported ONNX model) a sequential model */
export function modelName(arch: Arch): string {
  if (arch.model !== 'sequential') return arch.model;
  return arch.input.length === 1 && arch.layers.every((l) => l.op !== 'conv' && l.op !== 'maxpool' && l.op !== 'avgpool') ? 'mlp' : 'imported model';
}

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

export type Activation = 'relu' | 'sigmoid' | 'tanh';
export const ACTIVATIONS: readonly Activation[] = ['relu', 'sigmoid', 'tanh'];

/** a multilayer perceptron: flat inputs, a linear layer and the activation per hidden width, then the
 * classes (a `sequential` architecture) */
/** the MLP's hidden widths unless others are given */
export const MLP_WIDTHS: readonly number[] = [300, 100];

export function mlpArch(widths: number[] = [...MLP_WIDTHS], activation: Activation = 'relu', dataset = 'mnist', inFeatures = 784, classes = 10): Arch {
  checkWidths('mlp', widths, Math.max(1, widths.length));
  if (!ACTIVATIONS.includes(activation)) throw new Error(`mlp: activation must be ${ACTIVATIONS.join(', ')}, got '${activation}'`);
  const layers: LayerSpec[] = [];
  let n = inFeatures;
  for (const w of widths) {
    layers.push({ op: 'linear', in: n, out: w, bias: true }, { op: activation });
    n = w;
  }
  layers.push({ op: 'linear', in: n, out: classes, bias: true });
  return { model: 'sequential', input: [inFeatures], classes, layers, dataset };
}

function checkWidths(name: string, widths: number[], n: number): void {
  if (!Array.isArray(widths) || widths.length !== n || widths.some((w) => !Number.isInteger(w) || w < 1)) {
    throw new Error(`${name}: widths must be ${n} positive integers, got ${JSON.stringify(widths)}`);
  }
}

/** the side of LeNet-5's last feature map: two 5×5 valid convolutions, each followed by a 2×2 pool */
const lenetMapSize = (inSize: number) => Math.floor((Math.floor((inSize - 4) / 2) - 4) / 2);

/** the hidden widths of an architecture: the units of every unit layer but the output one (VGG-16: the
 * 13 convolutions and the fc) */
export function widthsOf(arch: Arch): number[] {
  switch (arch.model) {
    case 'vgg16': return [...arch.widths, arch.fc];
    case 'sequential': return arch.layers.flatMap((l) => (l.op === 'conv' || l.op === 'linear' ? [l.out] : [])).slice(0, -1);
    default: return [...arch.widths];
  }
}

/** one sample's shape for a model of this architecture: [C, H, W], or [features] for the DBN */
export function inputShape(arch: Arch): number[] {
  if (arch.model === 'sequential') return [...arch.input];
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
    case 'sequential':
      shapesThrough(arch.layers, arch.input);
      return new Sequential(...arch.layers.map((l, i) => {
        // Xavier before a sigmoid or tanh, Kaiming before anything else
        const init = ['sigmoid', 'tanh'].includes(arch.layers[i + 1]?.op ?? '') ? 'xavier' : 'kaiming';
        switch (l.op) {
          case 'conv': return new Conv2d(l.in, l.out, l.kernel, { stride: l.stride, padding: l.padding, bias: l.bias, init, rng });
          case 'linear': return new Linear(l.in, l.out, { bias: l.bias, init, rng });
          case 'batchnorm': return new BatchNorm(l.features, 0.1, l.eps);
          case 'maxpool': return new MaxPool2d(l.kernel, l.stride, l.padding);
          case 'avgpool': return new AvgPool2d(l.kernel, l.stride);
          case 'relu': return new ReLU();
          case 'sigmoid': return new Sigmoid();
          case 'tanh': return new Tanh();
          case 'flatten': return new Flatten();
          case 'dropout': return new Dropout(l.p, rng);
        }
      }));
    default:
      throw new Error(`unknown model '${(arch as { model: string }).model}' (known: lenet5, vgg16, dbn, sequential)`);
  }
}

const posInt = (x: unknown) => Number.isInteger(x) && (x as number) >= 1;

/**
 * check an arch read from a file or the command line, field by field, without building the model (a
 * description of more than 2^31 numbers is refused before anything is allocated)
 */
export function parseArch(x: unknown, what = 'arch'): Arch {
  const a = x as Arch;
  if (!a || typeof a !== 'object' || !['lenet5', 'vgg16', 'dbn', 'sequential'].includes((a as { model: string }).model)) {
    throw new Error(`${what}: not a model description (expected {"model": "lenet5" | "vgg16" | "dbn" | "sequential", ...})`);
  }
  if (a.model === 'sequential') return parseSequential(a, what);
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

const OPS = ['conv', 'linear', 'batchnorm', 'maxpool', 'avgpool', 'relu', 'sigmoid', 'tanh', 'flatten', 'dropout'];

function parseSequential(a: Extract<Arch, { model: 'sequential' }>, what: string): Arch {
  if (!Array.isArray(a.input) || a.input.length < 1 || a.input.length > 3 || !a.input.every(posInt)) throw new Error(`${what}: sequential field 'input' must list 1 to 3 positive integers, got ${JSON.stringify(a.input)}`);
  if (!posInt(a.classes)) throw new Error(`${what}: sequential field 'classes' must be a positive integer, got ${JSON.stringify(a.classes)}`);
  if (typeof a.dataset !== 'string') throw new Error(`${what}: sequential field 'dataset' must name a dataset, got ${JSON.stringify(a.dataset)}`);
  if (!Array.isArray(a.layers) || a.layers.length < 1) throw new Error(`${what}: sequential field 'layers' must list at least one layer`);
  a.layers.forEach((l, i) => {
    if (!l || typeof l !== 'object' || !OPS.includes(l.op)) throw new Error(`${what}: layer ${i}: 'op' must be one of ${OPS.join(', ')}, got ${JSON.stringify((l as { op?: unknown })?.op)}`);
    const need = l.op === 'conv' ? ['in', 'out', 'kernel', 'stride'] : l.op === 'linear' ? ['in', 'out'] : l.op === 'batchnorm' ? ['features'] : l.op === 'maxpool' || l.op === 'avgpool' ? ['kernel', 'stride'] : [];
    for (const k of need) if (!posInt((l as Record<string, unknown>)[k])) throw new Error(`${what}: layer ${i} (${l.op}): '${k}' must be a positive integer, got ${JSON.stringify((l as Record<string, unknown>)[k])}`);
  });
  const shapes = shapesThrough(a.layers, a.input, what);
  const last = shapes[shapes.length - 1];
  if (last.length !== 1 || last[0] !== a.classes) throw new Error(`${what}: the layers end in ${last.join(' × ')} values, not the ${a.classes} classes`);
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
    case 'sequential':
      return a.layers.reduce((t, l) => t + (l.op === 'conv' ? lin(l.in * l.kernel * l.kernel, l.out, l.bias) : l.op === 'linear' ? lin(l.in, l.out, l.bias) : l.op === 'batchnorm' ? 4 * l.features : 0), 0);
  }
}
