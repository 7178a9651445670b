// Datasets: MNIST, Fashion-MNIST and CIFAR-10 — sources, download, checksum, cache, parse, batches.
export { DataError, parseIdx, readIdxFile, encodeIdx, isGzip } from './idx.js';
export type { IdxArray } from './idx.js';
export { readTar } from './tar.js';
export type { TarEntry } from './tar.js';
export { parseCifarBatch, readCifarFolder, readCifarArchive, CIFAR_CLASSES, CIFAR_RECORD, CIFAR_BATCH_RECORDS } from './cifar.js';
export { fetchFile, fileMd5, resolveDataDir } from './download.js';
export type { FetchOptions, RemoteFile } from './download.js';
export {
  CATALOG, datasetInfo, loadDataset, fetchDataset, datasetStatus, summarizeDataset, listDatasets, classCounts, datasetDir,
  embeddedMnistDir, partialFiles,
} from './catalog.js';
export type { DatasetName, DatasetInfo, ImageSet, LoadOptions, Splits, DatasetStatus, SplitSummary } from './catalog.js';
export { BatchLoader, toTensor, splitValidation, channelStats, UNIT } from './loader.js';
export type { Normalization, Augment, LoaderOptions, Batch } from './loader.js';
