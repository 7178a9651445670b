// From uint8 images to float tensors: normalisation through a per-channel lookup table, seeded
// shuffled mini-batches, a validation split, and CIFAR-style augmentation (random crop after padding,
// horizontal flip). Batch b of epoch e is a pure function of (seed, e, b), so a resumed run sees
// exactly the batches an uninterrupted one would.
import { Rng } from '../src/tensor/rng.js';
import { Tensor } from '../src/tensor/tensor.js';
import type { ImageSet } from './catalog.js';
import { DataError } from './idx.js';

export interface Normalization {
  /** per channel, in units of pixel/255 */
  mean: number[];
  std: number[];
}

/** pixels scaled to [0, 1], nothing else */
export const UNIT: Normalization = { mean: [0], std: [1] };

/** per-channel mean and standard deviation of a set (pixel/255 units), exact, in float64 */
export function channelStats(set: ImageSet): Normalization {
  const { channels: C, height: H, width: W, count: N, images } = set;
  const S = H * W;
  const mean: number[] = [], std: number[] = [];
  for (let c = 0; c < C; c++) {
    // histogram per channel: exact and fast
    const hist = new Float64Array(256);
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let i = 0; i < S; i++) hist[images[base + i]]++;
    }
    let s = 0, ss = 0, cnt = 0;
    for (let v = 0; v < 256; v++) {
      s += hist[v] * v;
      ss += hist[v] * v * v;
      cnt += hist[v];
    }
    const m = s / cnt;
    mean.push(m / 255);
    std.push(Math.sqrt(Math.max(ss / cnt - m * m, 0)) / 255);
  }
  return { mean, std };
}

function lookup(norm: Normalization, C: number): Float32Array[] {
  const pick = (a: number[], c: number) => (a.length === 1 ? a[0] : a[c]);
  if (!(norm.mean.length === 1 || norm.mean.length === C) || !(norm.std.length === 1 || norm.std.length === C)) {
    throw new DataError(`normalization has ${norm.mean.length} means and ${norm.std.length} stds for ${C} channels`);
  }
  return Array.from({ length: C }, (_, c) => {
    const m = pick(norm.mean, c), s = pick(norm.std, c);
    if (!(s > 0)) throw new DataError(`normalization std of channel ${c} is ${s}; it must be positive`);
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = (v / 255 - m) / s;
    return t;
  });
}

export interface Augment {
  /** pad by this many pixels (with black) and crop back at a random offset */
  padCrop?: number;
  /** flip horizontally with probability 1/2 */
  flip?: boolean;
  /** Cutout (DeVries and Taylor, 2017): a square of this side, centred on a random pixel (so it may lie
   * partly outside the image), set to 0 after normalisation (the channel mean where the set is
   * standardised); 0 or absent: none */
  cutout?: number;
}

export interface LoaderOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  /** which samples of the set (a validation split, a subset); all by default */
  indices?: Int32Array;
  normalize?: Normalization;
  augment?: Augment;
  /** drop a last, smaller batch */
  dropLast?: boolean;
  /** give x as (B, C*H*W) instead of (B, C, H, W) (fully connected networks) */
  flatten?: boolean;
}

export interface Batch {
  x: Tensor; // (B, C, H, W) float32
  y: Int32Array; // (B)
  indices: Int32Array; // which samples of the set
}

function mix(seed: number, a: number, b: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ (a + 0x7f4a7c15), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (b + 0x165667b1), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

export class BatchLoader {
  readonly set: ImageSet;
  readonly batchSize: number;
  readonly indices: Int32Array;
  private readonly opts: LoaderOptions;
  private readonly lut: Float32Array[];
  private orderEpoch = -1;
  private order: Int32Array;

  constructor(set: ImageSet, opts: LoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new DataError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    const pc = opts.augment?.padCrop ?? 0;
    if (!Number.isInteger(pc) || pc < 0) throw new DataError(`augment.padCrop must be a non-negative integer, got ${pc}`);
    const co = opts.augment?.cutout ?? 0;
    if (!Number.isInteger(co) || co < 0) throw new DataError(`augment.cutout must be a non-negative integer (a square's side in pixels), got ${co}`);
    this.set = set;
    this.batchSize = opts.batchSize;
    this.opts = opts;
    if (opts.indices) {
      for (let i = 0; i < opts.indices.length; i++) {
        const v = opts.indices[i];
        if (v < 0 || v >= set.count) throw new DataError(`indices[${i}] = ${v} is outside the ${set.count} samples of ${set.name}/${set.split}`);
      }
    }
    this.indices = opts.indices ?? Int32Array.from({ length: set.count }, (_, i) => i);
    this.lut = lookup(opts.normalize ?? UNIT, set.channels);
    this.order = this.indices;
  }

  get length(): number {
    return this.opts.dropLast ? Math.floor(this.indices.length / this.batchSize) : Math.ceil(this.indices.length / this.batchSize);
  }

  /** the sample order of an epoch (seeded shuffle, or the given order) */
  epochOrder(epoch: number): Int32Array {
    if (!this.opts.shuffle) return this.indices;
    if (this.orderEpoch !== epoch) {
      const rng = new Rng(mix(this.opts.seed ?? 0, epoch, 0xffffffff));
      this.order = rng.shuffle(this.indices.slice());
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  /** batch b of epoch `epoch` */
  batch(epoch: number, b: number): Batch {
    if (!Number.isInteger(b) || b < 0 || b >= this.length) throw new DataError(`batch ${b} is out of range (the epoch has ${this.length})`);
    const order = this.epochOrder(epoch);
    const start = b * this.batchSize;
    const idx = order.subarray(start, Math.min(start + this.batchSize, order.length));
    const B = idx.length;
    const { channels: C, height: H, width: W, images, labels } = this.set;
    const S = H * W;
    const out = new Float32Array(B * C * S);
    const y = new Int32Array(B);
    const aug = this.opts.augment;
    const pad = aug?.padCrop ?? 0;
    const cut = aug?.cutout ?? 0;
    const rng = aug && (pad > 0 || aug.flip) ? new Rng(mix(this.opts.seed ?? 0, epoch, b)) : null;
    // a generator of its own, so that a loader with cutout sees the same crops and flips as one without
    const cutRng = cut > 0 ? new Rng(mix((this.opts.seed ?? 0) ^ 0x5c0f7, epoch, b)) : null;
    for (let i = 0; i < B; i++) {
      const n = idx[i];
      y[i] = labels[n];
      const dy = rng && pad ? rng.int(2 * pad + 1) - pad : 0;
      const dx = rng && pad ? rng.int(2 * pad + 1) - pad : 0;
      const flip = rng && aug?.flip ? rng.random() < 0.5 : false;
      const cy = cutRng ? cutRng.int(H) : 0;
      const cx = cutRng ? cutRng.int(W) : 0;
      for (let c = 0; c < C; c++) {
        const t = this.lut[c];
        const src = (n * C + c) * S;
        const dst = (i * C + c) * S;
        if (!dy && !dx && !flip) {
          for (let p = 0; p < S; p++) out[dst + p] = t[images[src + p]];
          continue;
        }
        const black = t[0];
        for (let h = 0; h < H; h++) {
          const sh = h + dy;
          const row = dst + h * W;
          if (sh < 0 || sh >= H) {
            out.fill(black, row, row + W);
            continue;
          }
          const srow = src + sh * W;
          for (let w = 0; w < W; w++) {
            const sw = (flip ? W - 1 - w : w) + dx;
            out[row + w] = sw >= 0 && sw < W ? t[images[srow + sw]] : black;
          }
        }
      }
      if (cut) {
        const h0 = Math.max(0, cy - (cut >> 1)), h1 = Math.min(H, cy - (cut >> 1) + cut);
        const w0 = Math.max(0, cx - (cut >> 1)), w1 = Math.min(W, cx - (cut >> 1) + cut);
        for (let c = 0; c < C; c++) {
          const dst = (i * C + c) * S;
          for (let h = h0; h < h1; h++) out.fill(0, dst + h * W + w0, dst + h * W + w1);
        }
      }
    }
    return { x: new Tensor(out, this.opts.flatten ? [B, C * H * W] : [B, C, H, W]), y, indices: idx.slice() };
  }

  *epoch(epoch: number): Generator<Batch> {
    for (let b = 0; b < this.length; b++) yield this.batch(epoch, b);
  }
}

/** all (or the given) samples as one tensor, normalised, no augmentation */
export function toTensor(set: ImageSet, normalize: Normalization = UNIT, indices?: Int32Array, flatten = false): { x: Tensor; y: Int32Array } {
  const n = indices ? indices.length : set.count;
  const loader = new BatchLoader(set, { batchSize: Math.max(1, n), normalize, indices, flatten });
  if (n === 0) return { x: new Tensor(new Float32Array(0), flatten ? [0, set.channels * set.height * set.width] : [0, set.channels, set.height, set.width]), y: new Int32Array(0) };
  const b = loader.batch(0, 0);
  return { x: b.x, y: b.y };
}

/** a seeded split of the set's samples into training and validation indices */
export function splitValidation(set: ImageSet, fraction: number, seed = 0): { train: Int32Array; val: Int32Array } {
  if (!(fraction >= 0 && fraction < 1)) throw new DataError(`validation fraction must be in [0, 1), got ${fraction}`);
  const perm = new Rng(mix(seed, 0x5eed, 0x7a1)).permutation(set.count);
  const nVal = Math.round(set.count * fraction);
  const val = perm.slice(0, nVal).sort();
  const train = perm.slice(nVal).sort();
  return { train, val };
}
