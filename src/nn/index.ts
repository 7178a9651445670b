export { Module } from './module.js';
export { Linear, Conv2d, MaxPool2d, BatchNorm, BatchNorm1d, BatchNorm2d, ReLU, Sigmoid, Tanh, Dropout, Flatten, Sequential, initWeight } from './layers.js';
export type { Init, LinearOptions, Conv2dOptions } from './layers.js';
export { InferenceSession } from './session.js';
export type { InferenceOptions, Precision } from './session.js';
export { RBM } from './rbm.js';
export type { RbmOptions } from './rbm.js';
