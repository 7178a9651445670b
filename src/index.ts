// neuronmerge: the public API, from one entry.
export * from './tensor/index.js';
export * from './backend/index.js';
export * from '../datasets/index.js';
