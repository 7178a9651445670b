// neuronmerge: the public API, from one entry.
export * from './tensor/index.js';
export * from './backend/index.js';
export * from '../datasets/index.js';
export * from './nn/index.js';
export * from './optim/index.js';
export * from './models/index.js';
export * from './train/index.js';
export * from './compress/index.js';
