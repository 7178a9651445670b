// CIFAR-10, binary version: each record is 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B,
// row-major 32×32). Read from the extracted cifar-10-batches-bin folder or from the official
// cifar-10-binary.tar.gz, validated record by record.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, gunzipChecked, isGzip } from './idx.js';
import { readTar } from './tar.js';

export const CIFAR_RECORD = 3073;
/** records in each of the six official batch files */
export const CIFAR_BATCH_RECORDS = 10000;
export const CIFAR_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'];
export const CIFAR_TEST_FILES = ['test_batch.bin'];
export const CIFAR_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

export interface CifarBatch {
  images: Uint8Array; // (n, 3, 32, 32)
  labels: Uint8Array; // (n)
}

/** one batch file; with `records`, it must hold exactly that many records (whole ones cut off are an error too) */
export function parseCifarBatch(buf: Uint8Array, file: string, records?: number): CifarBatch {
  if (buf.length === 0) throw new DataError(`${file}: empty file`);
  if (buf.length % CIFAR_RECORD !== 0) {
    throw new DataError(`${file}: ${buf.length} bytes is not a whole number of ${CIFAR_RECORD}-byte records (truncated or not a CIFAR-10 binary batch; ${buf.length % CIFAR_RECORD} bytes left over)`);
  }
  const n = buf.length / CIFAR_RECORD;
  if (records !== undefined && n !== records) throw new DataError(`${file}: holds ${n.toLocaleString('en')} records; a CIFAR-10 batch file holds exactly ${records.toLocaleString('en')} (cut short or not a CIFAR-10 batch)`);
  const images = new Uint8Array(n * 3072);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = i * CIFAR_RECORD;
    const label = buf[r];
    if (label > 9) throw new DataError(`${file}: record ${i} has label ${label}, outside 0..9`);
    labels[i] = label;
    images.set(buf.subarray(r + 1, r + CIFAR_RECORD), i * 3072);
  }
  return { images, labels };
}

function concat(batches: CifarBatch[]): CifarBatch {
  const n = batches.reduce((p, b) => p + b.labels.length, 0);
  const images = new Uint8Array(n * 3072), labels = new Uint8Array(n);
  let o = 0;
  for (const b of batches) {
    images.set(b.images, o * 3072);
    labels.set(b.labels, o);
    o += b.labels.length;
  }
  return { images, labels };
}

export interface CifarSplits {
  train: CifarBatch;
  test: CifarBatch;
  source: string;
}

/** `dir` is the cifar-10-batches-bin folder or a folder that holds it; each batch file must hold
 * `records` records (the official 10,000) */
export function readCifarFolder(dir: string, records = CIFAR_BATCH_RECORDS): CifarSplits {
  const inner = join(dir, 'cifar-10-batches-bin');
  const d = existsSync(join(dir, 'data_batch_1.bin')) || !existsSync(inner) ? dir : inner;
  const missing = [...CIFAR_TRAIN_FILES, ...CIFAR_TEST_FILES].filter((f) => !existsSync(join(d, f)));
  if (missing.length) throw new DataError(`${d}: CIFAR-10 folder is missing ${missing.join(', ')}`);
  const read = (f: string) => {
    const p = join(d, f);
    if (!statSync(p).isFile()) throw new DataError(`${p}: not a file`);
    return parseCifarBatch(readFileSync(p), p, records);
  };
  return { train: concat(CIFAR_TRAIN_FILES.map(read)), test: concat(CIFAR_TEST_FILES.map(read)), source: d };
}

/** the official cifar-10-binary.tar.gz (or an uncompressed tar); each batch must hold `records` records */
export function readCifarArchive(path: string, records = CIFAR_BATCH_RECORDS): CifarSplits {
  let buf: Uint8Array = readFileSync(path);
  if (isGzip(buf)) buf = gunzipChecked(buf, path);
  const entries = readTar(buf, path);
  const byBase = new Map<string, Uint8Array>();
  for (const e of entries) if (e.type === '0' || e.type === '\0') byBase.set(e.name.split('/').pop()!, e.data);
  const missing = [...CIFAR_TRAIN_FILES, ...CIFAR_TEST_FILES].filter((f) => !byBase.has(f));
  if (missing.length) {
    throw new DataError(`${path}: archive does not hold the expected CIFAR-10 members: missing ${missing.join(', ')} (found: ${entries.map((e) => e.name).slice(0, 8).join(', ') || 'nothing'})`);
  }
  const read = (f: string) => parseCifarBatch(byBase.get(f)!, `${path}:${f}`, records);
  return { train: concat(CIFAR_TRAIN_FILES.map(read)), test: concat(CIFAR_TEST_FILES.map(read)), source: path };
}
