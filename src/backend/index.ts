export { registerBackend, unregisterBackend, listBackends, setBackend, getForcedBackend, kernel, kernelBackend } from './registry.js';
export { jsBackend, jsKernels, bf16Round } from './js.js';
export { gemmJs, gemmNaive } from './js-gemm.js';
export { winogradConv3x3, winogradMatrices } from './winograd.js';
export type { Backend, Kernels, KernelName, DType, FloatArray, UnaryOp, BinaryOp, ReduceOp, BiasActivation, ConvGeometry, Epilogue, PreparedConvWeights, ConvTarget, ConvAlgorithmChoice } from './types.js';
export { nativeAddon, nativeLoadError, setMallocReuse, mallocReuseOn } from './native.js';
export type { NativeAddon } from './native.js';
export { startWebGpuKernels, stopWebGpuKernels } from './webgpu-kernels.js';
