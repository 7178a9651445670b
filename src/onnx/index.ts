export { toOnnx, ONNX_OPSET, ONNX_IR_VERSION } from './export.js';
export type { ExportOptions } from './export.js';
export { fromOnnx, IMPORTABLE_OPS } from './import.js';
