// neuronmerge/internal: every name of every folder, for the tests, the benchmarks and the scripts.
// Users import 'neuronmerge' (./index.ts): the names the README's API section and examples use.
export * from './tensor/index.js';
export * from './backend/index.js';
export * from '../datasets/index.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './models/index.js';
export * from './train/index.js';
export * from './onnx/index.js';
export * from './compress/index.js';
export * from './report/index.js';
export * from './experiment/index.js';
export { writeFileAtomic, checkOutputFile, checkOutputDir } from './runtime/files.js';
export { ENVIRONMENT, environmentError } from './runtime/env.js';
export { OptionError, quote, wordOptions } from './runtime/errors.js';
