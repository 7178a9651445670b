// neuronmerge: the public API, the names the README's API section and examples use. Every other name
// (kernels, helpers, the report's pieces) is in 'neuronmerge/internal' (./internal.ts), for the tests,
// the benchmarks and the scripts; it may change between versions.
export {
  Tensor, tensor, zeros, ones, noGrad, matmul, conv2d, linear, linearActivate, relu, sigmoid, tanh, Rng,
  Sequential, Linear, Conv2d, BatchNorm, ReLU, Sigmoid, Tanh, MaxPool2d, Flatten, Dropout, buildModel,
  lenet5Arch, dbnArch, vgg16Arch, mlpArch, inputShape, SGD, Adam, fit, evaluate, saveCheckpoint,
  loadCheckpoint, InferenceSession, distillationLoss, distillationStep, loadDataset, BatchLoader,
  fetchDataset, loadTask, accuracyOf, trainLenet, trainDbn, trainVgg, trainMlp, finetuneModel, cloneModel,
  modelFromCheckpoint, kmeans, agglomerative, dendrogram, clusterUnits, applyMerge, mergeModel, mergeSites,
  foldedUnits, OptionError, pruneModel, explainMerge, recalibrateBatchNorm, layerSensitivity, allocate, modelStats,
  compare, archOf, compressCheckpoint, explainCheckpoint, reproduce, reproducePlan,
  reproducePiece, exportCheckpoint, writeReports, toOnnx, fromOnnx, gradientPool, setGradientPool,
  releaseArrays, trackAllocations,
} from './internal.js';
export type {
  Arch, MergeRule, MergeOptions, MergeReport, ClusterMethod, TaskData, CompressOptions, CompressResult,
  ExplainOptions, ExplainResult, ReproduceOptions, ReproducePiece, Report,
} from './internal.js';
