// A model as an ONNX file (opset 13, batch axis dynamic): every layer neuronmerge builds maps onto one
// standard operator (Conv, Gemm, BatchNormalization, Relu, Sigmoid, Tanh, MaxPool, AveragePool,
// Flatten); dropout,
// the identity at inference, is left out. Batch norms are kept as BatchNormalization or folded into the
// convolution or linear layer before them. The protobuf is encoded by the `onnx-proto` package (the
// ONNX schema compiled for protobufjs), never by hand.
import onnxProto from 'onnx-proto';
import { AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Tanh } from '../nn/layers.js';
import type { Module } from '../nn/module.js';
import type { Pair } from '../tensor/ops.js';

const { onnx } = onnxProto;

/** the operator set the files declare */
export const ONNX_OPSET = 13;
/** the ONNX IR version the files declare (IR 7 goes with opsets 12–14) */
export const ONNX_IR_VERSION = 7;

export interface ExportOptions {
  /** fold each batch norm into the convolution or linear layer before it (default false: kept) */
  foldBatchNorm?: boolean;
  /** the graph's name (default 'neuronmerge') */
  name?: string;
  /** the producer's version, recorded in the file */
  version?: string;
  /** key–value pairs recorded in the file's metadata (the architecture, the input's normalisation) */
  metadata?: Record<string, string>;
  /** a sentence on what the model expects and computes */
  doc?: string;
}

const pair = (p: Pair): [number, number] => (typeof p === 'number' ? [p, p] : p);

type Attr = { name: string; ints?: number[]; i?: number; f?: number };
const attribute = (a: Attr) => {
  const T = onnx.AttributeProto.AttributeType;
  if (a.ints) return { name: a.name, type: T.INTS, ints: a.ints };
  if (a.f !== undefined) return { name: a.name, type: T.FLOAT, f: a.f };
  return { name: a.name, type: T.INT, i: a.i };
};

/** a float32 initializer, its values little-endian in raw_data */
function initializer(name: string, dims: number[], values: ArrayLike<number>) {
  const f = Float32Array.from(values);
  const raw = new Uint8Array(f.byteLength);
  const view = new DataView(raw.buffer);
  f.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw };
}

/** a float tensor's type with a symbolic batch axis */
function valueInfo(name: string, shape: number[]) {
  return { name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, ...shape.map((d) => ({ dimValue: d }))] } } } };
}

/** the weight and bias of a unit layer, with the batch norm after it folded in when given */
function unitWeights(layer: Linear | Conv2d, bn: BatchNorm | null): { w: Float32Array; b: Float32Array | null } {
  const out = layer.weight.shape[0];
  const w = Float32Array.from(layer.weight.data);
  if (!bn) return { w, b: layer.bias ? Float32Array.from(layer.bias.data) : null };
  const fan = w.length / out;
  const b = new Float32Array(out);
  for (let u = 0; u < out; u++) {
    const s = bn.weight.data[u] / Math.sqrt(bn.runningVar.data[u] + bn.eps);
    for (let q = 0; q < fan; q++) w[u * fan + q] = layer.weight.data[u * fan + q] * s;
    b[u] = ((layer.bias ? layer.bias.data[u] : 0) - bn.runningMean.data[u]) * s + bn.bias.data[u];
  }
  return { w, b };
}

/**
 * The ONNX file of a sequential model whose samples have shape `input` (without the batch axis): its
 * bytes. The graph's input is `input` (batch × …input), its output `output` (batch × classes).
 */
export function toOnnx(model: Sequential, input: number[], o: ExportOptions = {}): Uint8Array {
  const nodes: object[] = [], inits: object[] = [];
  let current = 'input';
  let n = 0;
  const next = () => `t${n++}`;
  const layers = model.layers;
  const add = (op: string, inputs: string[], attrs: Attr[] = [], name = `${op.toLowerCase()}${nodes.length}`) => {
    const out = next();
    nodes.push({ name, opType: op, input: inputs, output: [out], attribute: attrs.map(attribute) });
    current = out;
  };
  for (let i = 0; i < layers.length; i++) {
    const m: Module = layers[i];
    const bnAfter = layers[i + 1] instanceof BatchNorm ? (layers[i + 1] as BatchNorm) : null;
    const fold = o.foldBatchNorm === true && bnAfter !== null && (m instanceof Conv2d || m instanceof Linear);
    if (m instanceof Conv2d || m instanceof Linear) {
      const { w, b } = unitWeights(m, fold ? bnAfter : null);
      const at = `layers.${i}`;
      inits.push(initializer(`${at}.weight`, m.weight.shape, w));
      if (b) inits.push(initializer(`${at}.bias`, [b.length], b));
      const args = [current, `${at}.weight`, ...(b ? [`${at}.bias`] : [])];
      if (m instanceof Conv2d) {
        const [, , kh, kw] = m.weight.shape;
        const [ph, pw] = pair(m.padding), [sh, sw] = pair(m.stride);
        add('Conv', args, [{ name: 'kernel_shape', ints: [kh, kw] }, { name: 'pads', ints: [ph, pw, ph, pw] }, { name: 'strides', ints: [sh, sw] }], at);
      } else add('Gemm', args, [{ name: 'transB', i: 1 }], at);
      if (fold) i++; // the batch norm is in the weights
    } else if (m instanceof BatchNorm) {
      const at = `layers.${i}`, c = m.weight.size; // merging narrows a batch norm: its tensors say its width
      inits.push(initializer(`${at}.weight`, [c], m.weight.data), initializer(`${at}.bias`, [c], m.bias.data));
      inits.push(initializer(`${at}.runningMean`, [c], m.runningMean.data), initializer(`${at}.runningVar`, [c], m.runningVar.data));
      add('BatchNormalization', [current, `${at}.weight`, `${at}.bias`, `${at}.runningMean`, `${at}.runningVar`], [{ name: 'epsilon', f: m.eps }], at);
    } else if (m instanceof ReLU) add('Relu', [current]);
    else if (m instanceof Sigmoid) add('Sigmoid', [current]);
    else if (m instanceof Tanh) add('Tanh', [current]);
    else if (m instanceof Flatten) add('Flatten', [current], [{ name: 'axis', i: 1 }]);
    else if (m instanceof MaxPool2d) {
      const k = pair(m.kernelSize), s = pair(m.stride ?? m.kernelSize), p = pair(m.padding);
      add('MaxPool', [current], [{ name: 'kernel_shape', ints: k }, { name: 'strides', ints: s }, { name: 'pads', ints: [p[0], p[1], p[0], p[1]] }]);
    } else if (m instanceof AvgPool2d) {
      add('AveragePool', [current], [{ name: 'kernel_shape', ints: pair(m.kernelSize) }, { name: 'strides', ints: pair(m.stride ?? m.kernelSize) }]);
    } else if (m instanceof Dropout) continue;
    else throw new Error(`onnx export: layer ${i} (${m.describe()}) has no ONNX operator here`);
  }
  if (nodes.length === 0) throw new Error('onnx export: the model has no layers');
  // the last node writes the graph's output
  const last = nodes[nodes.length - 1] as { output: string[] };
  last.output = ['output'];
  const classes = (layers.filter((l) => l instanceof Linear || l instanceof Conv2d).pop() as Linear | Conv2d).weight.shape[0];
  const proto = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    producerName: 'neuronmerge',
    producerVersion: o.version ?? '',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    docString: o.doc ?? '',
    metadataProps: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: o.name ?? 'neuronmerge',
      node: nodes,
      initializer: inits,
      input: [valueInfo('input', input)],
      output: [valueInfo('output', [classes])],
    },
  });
  return onnx.ModelProto.encode(proto).finish();
}
