// An ONNX file made elsewhere as a neuronmerge model: a chain of Conv, BatchNormalization, Relu,
// Sigmoid, Tanh, MaxPool, AveragePool, Flatten (or Reshape to batch × -1), Gemm, MatMul followed by
// Add, Dropout, Identity and Pad of zeros (PyTorch puts one before an average pool), each reading the
// output of the one before, weights in initializers or Constant nodes. It
// becomes a `sequential` architecture and a Sequential model that trains, merges, saves and exports
// like a native one. Anything else is an error naming the node and its operator.
import onnxProto from 'onnx-proto';
import { buildModel, parseArch, shapesThrough, specsOf } from '../models/index.js';
import type { Arch, LayerSpec } from '../models/index.js';
import { Dropout } from '../nn/layers.js';
import type { Sequential } from '../nn/layers.js';
import type { Tensor } from '../tensor/tensor.js';
import { OptionError, quote } from '../runtime/errors.js';

const { onnx } = onnxProto;
type Node = InstanceType<typeof onnx.NodeProto>;
type TensorP = InstanceType<typeof onnx.TensorProto>;

export const IMPORTABLE_OPS = ['Conv', 'BatchNormalization', 'Relu', 'Sigmoid', 'Tanh', 'MaxPool', 'AveragePool', 'Flatten', 'Reshape', 'Gemm', 'MatMul', 'Add', 'Dropout', 'Identity', 'Constant', 'Pad'];

/** a dataset a model's input fits, by the input's shape */
const DATASET_BY_INPUT: Record<string, string> = { '1,28,28': 'mnist', '784': 'mnist', '3,32,32': 'cifar10' };

interface Weights {
  /** per layer index: its tensors by the layer's parameter or buffer name */
  [layer: number]: Record<string, Float32Array>;
}

/** an initializer's values as numbers (float from raw_data or float_data; int64 for shapes) */
function values(t: TensorP, file: string): Float64Array | Float32Array {
  const T = onnx.TensorProto.DataType;
  const n = (t.dims ?? []).reduce((p: number, d) => p * Number(d), 1);
  const raw = t.rawData && t.rawData.length ? t.rawData : null;
  let out: Float32Array | Float64Array;
  if (t.dataType === T.FLOAT) {
    if (raw) {
      if (raw.length !== 4 * n) throw new Error(`${file}: initializer '${t.name}' holds ${raw.length} bytes, its shape [${(t.dims ?? []).join(', ')}] needs ${4 * n}`);
      const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      out = Float32Array.from({ length: n }, (_, i) => v.getFloat32(4 * i, true));
    } else out = Float32Array.from(t.floatData ?? []);
  } else if (t.dataType === T.INT64) {
    if (raw) {
      if (raw.length !== 8 * n) throw new Error(`${file}: initializer '${t.name}' holds ${raw.length} bytes, its shape [${(t.dims ?? []).join(', ')}] needs ${8 * n}`);
      const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      out = Float64Array.from({ length: n }, (_, i) => Number(v.getBigInt64(8 * i, true)));
    } else out = Float64Array.from((t.int64Data ?? []).map(Number));
  } else throw new Error(`${file}: initializer '${t.name}' has data type ${T[t.dataType ?? 0] ?? t.dataType}; float32 weights (and int64 shapes) only`);
  if (out.length !== n) throw new Error(`${file}: initializer '${t.name}' holds ${out.length} values, its shape [${(t.dims ?? []).join(', ')}] needs ${n}`);
  return out;
}

/** read an ONNX model: its architecture (a `sequential` one) and the model with its weights */
export function fromOnnx(bytes: Uint8Array, file: string, o: { dataset?: string } = {}): { arch: Arch; model: Sequential; kind: string | null; normalization: { mean: number[]; std: number[] } | null } {
  let proto: InstanceType<typeof onnx.ModelProto>;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`${file}: not a readable ONNX model (${(e as Error).message})`);
  }
  const g = proto.graph;
  if (!g || !g.node || g.node.length === 0) throw new Error(`${file}: the ONNX model has no graph nodes`);
  const inits = new Map<string, TensorP>();
  for (const t of g.initializer ?? []) inits.set(t.name ?? '', t as TensorP);
  const dataInputs = (g.input ?? []).filter((v) => !inits.has(v.name ?? ''));
  if (dataInputs.length !== 1) throw new Error(`${file}: the graph has ${dataInputs.length} inputs besides its weights; one is supported`);
  const dims = dataInputs[0].type?.tensorType?.shape?.dim ?? [];
  if (dims.length < 2) throw new Error(`${file}: input '${dataInputs[0].name}' has ${dims.length} dimensions; batch and at least one more are needed`);
  const input = dims.slice(1).map((d, i) => {
    const v = Number(d.dimValue ?? 0);
    if (!(v >= 1)) throw new Error(`${file}: input '${dataInputs[0].name}' dimension ${i + 1} is not a fixed size (${d.dimParam || 'unknown'})`);
    return v;
  });
  const dataset = o.dataset ?? DATASET_BY_INPUT[input.join()];
  if (!dataset) throw new OptionError(`${quote(file)}: no dataset known for inputs of ${input.join(' × ')}; give {dataset}`);

  const specs: LayerSpec[] = [], weights: Weights = {}, where: string[] = [];
  let current = dataInputs[0].name ?? '';
  let shape = input;
  const nodes = g.node as Node[];
  for (let k = 0; k < nodes.length; k++) {
    const node = nodes[k];
    const op = node.opType ?? '';
    const at = `${file}: node '${node.name || `#${k}`}' (${op})`;
    if ((node.domain ?? '') !== '' && node.domain !== 'ai.onnx') throw new Error(`${at}: operator domain '${node.domain}' is not supported`);
    if (!IMPORTABLE_OPS.includes(op)) throw new Error(`${at}: not supported (supported: ${IMPORTABLE_OPS.join(', ')})`);
    const ins = node.input ?? [];
    if (op === 'Constant') {
      // a constant the nodes after it read, as they would an initializer
      const value = (node.attribute ?? []).find((a) => a.name === 'value')?.t;
      if (!value) throw new Error(`${at}: only a 'value' tensor constant is supported`);
      inits.set(node.output?.[0] ?? '', { ...value, name: node.output?.[0] ?? '' } as TensorP);
      continue;
    }
    if (ins[0] !== current) throw new Error(`${at}: reads '${ins[0]}', not the output of the layer before it ('${current}'); only a chain of layers can be imported`);
    const attr = (name: string) => (node.attribute ?? []).find((a) => a.name === name);
    const ints = (name: string, d: number[]) => (attr(name)?.ints?.map(Number) ?? d);
    const int = (name: string, d: number) => (attr(name) ? Number(attr(name)!.i) : d);
    const weight = (i: number, what: string): { v: Float32Array; dims: number[] } => {
      const name = ins[i];
      const t = name ? inits.get(name) : undefined;
      if (!t) throw new Error(`${at}: ${what} '${name ?? ''}' is not an initializer (weights must be stored in the file)`);
      return { v: Float32Array.from(values(t, file)), dims: (t.dims ?? []).map(Number) };
    };
    const square = (name: string, v: number[]): number => {
      if (v.length !== 2 || v[0] !== v[1]) throw new Error(`${at}: ${name} ${JSON.stringify(v)} is not square; square ones only`);
      return v[0];
    };
    const pads = (): number => {
      if (attr('auto_pad') && String.fromCharCode(...(attr('auto_pad')!.s ?? [])) !== 'NOTSET') throw new Error(`${at}: auto_pad is not supported; explicit pads only`);
      const p = ints('pads', [0, 0, 0, 0]);
      if (p.length !== 4 || p.some((x) => x !== p[0])) throw new Error(`${at}: pads ${JSON.stringify(p)} are not the same on every side`);
      return p[0];
    };
    let spec: LayerSpec | null = null;
    const w: Record<string, Float32Array> = {};
    let out = node.output?.[0] ?? '';
    switch (op) {
      case 'Conv': {
        const W = weight(1, 'weight');
        if (W.dims.length !== 4) throw new Error(`${at}: weight of shape [${W.dims.join(', ')}]; 2-D convolutions only`);
        if (int('group', 1) !== 1) throw new Error(`${at}: group ${int('group', 1)}; grouped convolutions are not supported`);
        if (ints('dilations', [1, 1]).some((d) => d !== 1)) throw new Error(`${at}: dilations ${JSON.stringify(ints('dilations', [1, 1]))}; only 1`);
        const kernel = square('kernel', W.dims.slice(2));
        spec = { op: 'conv', in: W.dims[1], out: W.dims[0], kernel, stride: square('strides', ints('strides', [1, 1])), padding: pads(), bias: ins.length > 2 && ins[2] !== '' };
        w.weight = W.v;
        if (spec.bias) w.bias = weight(2, 'bias').v;
        break;
      }
      case 'Gemm':
      case 'MatMul': {
        const W = weight(1, 'weight');
        if (W.dims.length !== 2) throw new Error(`${at}: weight of shape [${W.dims.join(', ')}]; a matrix is needed`);
        if (op === 'Gemm' && (int('transA', 0) !== 0 || (attr('alpha') && attr('alpha')!.f !== 1) || (attr('beta') && attr('beta')!.f !== 1))) throw new Error(`${at}: transA, alpha and beta other than 0, 1, 1 are not supported`);
        const transposed = op === 'Gemm' && int('transB', 0) === 1;
        const [O, I] = transposed ? W.dims : [W.dims[1], W.dims[0]];
        // stored as (out, in)
        w.weight = transposed ? W.v : Float32Array.from({ length: O * I }, (_, j) => W.v[(j % I) * O + Math.floor(j / I)]);
        let bias: Float32Array | null = op === 'Gemm' && ins.length > 2 && ins[2] !== '' ? weight(2, 'bias').v : null;
        // MatMul then Add of a constant vector: a linear layer with bias
        const nx = nodes[k + 1];
        if (op === 'MatMul' && nx && nx.opType === 'Add' && (nx.input ?? []).includes(out)) {
          const other = (nx.input ?? []).find((x) => x !== out) ?? '';
          const t = inits.get(other);
          if (!t) throw new Error(`${file}: node '${nx.name || `#${k + 1}`}' (Add): adds '${other}', not an initializer; only a bias can follow MatMul`);
          bias = Float32Array.from(values(t, file));
          out = nx.output?.[0] ?? '';
          k++;
        }
        if (bias && bias.length !== O) throw new Error(`${at}: bias of ${bias.length} values for ${O} outputs`);
        spec = { op: 'linear', in: I, out: O, bias: bias !== null };
        if (bias) w.bias = bias;
        break;
      }
      case 'Add': {
        const other = ins.find((x, i) => i > 0 || x !== current) ?? '';
        if (!inits.has(other)) throw new Error(`${at}: adds '${other}', an earlier layer's output (a branch, as in a residual block); only a chain of layers can be imported`);
        throw new Error(`${at}: an Add that does not follow a MatMul is not supported`);
      }
      case 'BatchNormalization': {
        if (int('training_mode', 0) !== 0) throw new Error(`${at}: training_mode 1; an inference graph is needed`);
        const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => weight(i, ['scale', 'bias', 'mean', 'var'][i - 1]).v);
        if (![bias, mean, variance].every((v) => v.length === scale.length)) throw new Error(`${at}: scale, bias, mean and var differ in length`);
        spec = { op: 'batchnorm', features: scale.length, eps: attr('epsilon')?.f ?? 1e-5 };
        Object.assign(w, { weight: scale, bias, runningMean: mean, runningVar: variance });
        break;
      }
      case 'Relu': spec = { op: 'relu' }; break;
      case 'Sigmoid': spec = { op: 'sigmoid' }; break;
      case 'Tanh': spec = { op: 'tanh' }; break;
      case 'MaxPool':
      case 'AveragePool': {
        if (int('ceil_mode', 0) !== 0) throw new Error(`${at}: ceil_mode 1 is not supported`);
        if (ints('dilations', [1, 1]).some((d) => d !== 1)) throw new Error(`${at}: dilations are not supported`);
        if (node.output && node.output.length > 1 && node.output[1]) throw new Error(`${at}: a second output (indices) is not supported`);
        const kernel = square('kernel_shape', ints('kernel_shape', []));
        const padding = pads();
        if (op === 'AveragePool' && padding !== 0) throw new Error(`${at}: padded average pooling is not supported`);
        spec = { op: op === 'MaxPool' ? 'maxpool' : 'avgpool', kernel, stride: square('strides', ints('strides', [1, 1])), padding };
        break;
      }
      case 'Flatten':
        if (int('axis', 1) !== 1) throw new Error(`${at}: axis ${int('axis', 1)}; only 1 (keep the batch axis)`);
        spec = { op: 'flatten' };
        break;
      case 'Reshape': {
        const s = Array.from(values(inits.get(ins[1] ?? '') ?? (() => { throw new Error(`${at}: its shape '${ins[1]}' is not an initializer`); })(), file));
        const total = shape.reduce((a, b) => a * b, 1);
        if (s.length !== 2 || !(s[1] === -1 || s[1] === total) || !(s[0] === 0 || s[0] === -1 || (s[1] === total && s[0] > 0))) throw new Error(`${at}: to shape ${JSON.stringify(s)}; only to batch × -1 (a flatten)`);
        spec = { op: 'flatten' };
        break;
      }
      case 'Pad': {
        const p = ins[1] && inits.has(ins[1]) ? Array.from(values(inits.get(ins[1])!, file)) : null;
        if (!p) throw new Error(`${at}: its pads '${ins[1] ?? ''}' are not a constant`);
        if (p.some((v) => v !== 0)) throw new Error(`${at}: pads ${JSON.stringify(p)}; only a pad of zeros (which changes nothing) is supported`);
        current = out;
        continue;
      }
      case 'Dropout':
      case 'Identity':
        if (op === 'Dropout' && ins.length > 2 && ins[2] && inits.has(ins[2]) && values(inits.get(ins[2])!, file)[0] !== 0) throw new Error(`${at}: training_mode on; an inference graph is needed`);
        current = out;
        continue;
    }
    specs.push(spec!);
    where.push(at);
    if (Object.keys(w).length) weights[specs.length - 1] = w;
    try {
      shape = shapesThrough([spec!], shape, 'x')[0];
    } catch (e) {
      throw new Error(`${at}: ${(e as Error).message.replace(/^x: layer 0 \([a-z]+\) /, '')}`);
    }
    current = out;
  }
  const outputs = (g.output ?? []).map((v) => v.name);
  if (outputs.length !== 1 || outputs[0] !== current) throw new Error(`${file}: the graph's output is ${JSON.stringify(outputs)}, not the last layer's ('${current}')`);
  if (shape.length !== 1) throw new Error(`${file}: the last layer gives ${shape.join(' × ')} values per sample; class scores (one vector) are needed`);
  if (specs.length === 0) throw new Error(`${file}: the graph has no layers`);
  const arch: Arch = { model: 'sequential', input, classes: shape[0], layers: specs, dataset };
  const model = buildModel(arch, 0);
  specs.forEach((_, i) => {
    const w = weights[i];
    if (!w) return;
    const layer = model.layers[i] as unknown as Record<string, { data: Float32Array; size: number } | null>;
    for (const [name, v] of Object.entries(w)) {
      const t = layer[name];
      if (!t || t.size !== v.length) throw new Error(`${where[i]}: ${name} holds ${v.length} values, the layer needs ${t?.size ?? 0}`);
      t.data.set(v);
    }
  });
  // a file neuronmerge wrote says what it holds (merged, pruned, …)
  const meta = (key: string) => (proto.metadataProps ?? []).find((p) => p.key === key)?.value ?? null;
  const kind = meta('neuronmerge.kind');
  // the input's standardisation, where neuronmerge recorded it (a list per channel each)
  let normalization: { mean: number[]; std: number[] } | null = null;
  try {
    const mean = JSON.parse(meta('neuronmerge.mean') ?? 'null'), std = JSON.parse(meta('neuronmerge.std') ?? 'null');
    const ok = (xs: unknown) => Array.isArray(xs) && xs.length > 0 && xs.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (ok(mean) && ok(std) && mean.length === std.length && std.every((x: number) => x > 0)) normalization = { mean, std };
  } catch {
    /* not recorded as neuronmerge writes it: read from the dataset where needed */
  }
  // a file neuronmerge wrote from one of its own networks (batch norms kept) is that network again
  const own = asRecorded(meta('neuronmerge.arch'), arch, model, o.dataset);
  return { arch: own?.arch ?? arch, model: own?.model ?? model, kind, normalization };
}

/** a layer list as text, each layer's fields in one order and a batch norm's epsilon as the float32
 * an ONNX file holds (to compare two lists) */
const specText = (specs: LayerSpec[]) =>
  JSON.stringify(specs.map((l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, k === 'eps' ? Math.fround(v as number) : v]).sort(([a], [b]) => String(a).localeCompare(String(b))))));

/**
 * The architecture recorded in the file's metadata (neuronmerge.arch) with the imported weights in
 * its model, where the graph is that architecture layer for layer less its dropouts (an ONNX graph
 * for inference has none); null where nothing usable is recorded, the architecture is a `sequential`
 * one already, or the graph differs (batch norms folded into the layers before them, a file edited
 * elsewhere): the model then stays the sequential one read from the graph
 */
function asRecorded(text: string | null, imported: Arch, model: Sequential, dataset?: string): { arch: Arch; model: Sequential } | null {
  if (!text || imported.model !== 'sequential') return null;
  let rec: Arch, built: Sequential;
  try {
    rec = parseArch(JSON.parse(text), 'neuronmerge.arch');
    if (rec.model === 'sequential') return null;
    built = buildModel(rec, 0);
  } catch {
    return null;
  }
  if (specText(specsOf(built).filter((l) => l.op !== 'dropout')) !== specText(imported.layers)) return null;
  // imported layer i is the built model's i-th layer that is not a dropout
  const at = built.layers.flatMap((l, j) => (l instanceof Dropout ? [] : [j]));
  const state = new Map<string, Tensor>();
  for (const [k, t] of model.stateDict()) {
    const dot = k.indexOf('.');
    state.set(`${at[Number(k.slice(0, dot))]}${k.slice(dot)}`, t);
  }
  try {
    built.loadStateDict(state);
  } catch {
    return null;
  }
  return { arch: dataset ? { ...rec, dataset } : rec, model: built };
}
