export { Tensor, tensor, zeros, ones, full, zerosLike, arange, uniform, normal, shapeStr, sizeOf } from './tensor.js';
export type { CreateOptions } from './tensor.js';
export { noGrad, isGradEnabled } from './autograd.js';
export type { BackwardOptions, GradNode } from './autograd.js';
export { setGradientPool, gradientPool, releaseArrays, trackAllocations } from './pool.js';
export * as ops from './ops.js';
export {
  add, sub, mul, div, pow, maximum, neg, exp, log, sqrt, abs, square, clamp, relu, sigmoid, tanh, affine,
  sum, mean, max, argmax, reshape, permute, transpose, slice, take, cat, matmul, linear, linearActivate, conv2d, conv2dFused, chooseConvAlgorithm, roundBf16, bf16Operand, bf16Gradient, withProductPrecision, productPrecision, maxPool2d, avgPool2d,
  softmax, logSoftmax, crossEntropy, distillationLoss, dropout, batchNorm, cast, broadcastShapes, setConvChunk, convChunkImages,
} from './ops.js';
export type { ConvOptions, ConvEpilogue, PoolOptions, BatchNormState, Pair } from './ops.js';
export { Rng } from './rng.js';
export type { RngState } from './rng.js';
export { gradcheck } from './gradcheck.js';
export type { GradcheckOptions, GradcheckResult } from './gradcheck.js';
