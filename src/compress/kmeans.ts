// k-means: k-means++ seeding, Lloyd iterations through the kernel registry's kmeansStep (native where
// built), a tolerance on the centroids' movement, empty clusters re-seeded with the point farthest from
// its centroid, and the best of nInit seeded restarts by inertia.
import { kernel } from '../backend/registry.js';
import { Rng } from '../tensor/rng.js';

export interface KMeansOptions {
  nInit?: number;
  maxIter?: number;
  /** stop when the centroids move less than tol x the data's mean variance (as scikit-learn does) */
  tol?: number;
  seed?: number;
}

export interface KMeansResult {
  labels: Int32Array;
  centroids: Float32Array; // (k, d)
  inertia: number;
  iterations: number;
}

function sqdistToAll(X: Float32Array, n: number, d: number, c: Float32Array, out: Float32Array): void {
  kernel('pairwiseSqDist', 'float32')(X, n, c, 1, d, out);
}

/** k-means++: the first centre uniformly, each next one with probability proportional to D(x)² */
function seedPlusPlus(X: Float32Array, n: number, d: number, k: number, rng: Rng): Float32Array {
  const C = new Float32Array(k * d);
  const first = rng.int(n);
  C.set(X.subarray(first * d, (first + 1) * d), 0);
  const best = new Float32Array(n);
  sqdistToAll(X, n, d, C.subarray(0, d), best);
  const tmp = new Float32Array(n);
  for (let c = 1; c < k; c++) {
    let total = 0;
    for (let i = 0; i < n; i++) total += best[i];
    let pick = 0;
    if (total > 0) {
      let r = rng.random() * total;
      for (pick = 0; pick < n - 1; pick++) {
        r -= best[pick];
        if (r < 0) break;
      }
    } else pick = rng.int(n); // all points coincide with centres already chosen
    C.set(X.subarray(pick * d, (pick + 1) * d), c * d);
    sqdistToAll(X, n, d, C.subarray(c * d, (c + 1) * d), tmp);
    for (let i = 0; i < n; i++) if (tmp[i] < best[i]) best[i] = tmp[i];
  }
  return C;
}

/** each empty cluster takes the point farthest from its centroid, from a cluster with members to spare */
function fillEmpty(X: Float32Array, n: number, d: number, k: number, labels: Int32Array, counts: Int32Array, C: Float32Array): void {
  for (let c = 0; c < k; c++) {
    if (counts[c] > 0) continue;
    let far = -1, fd = -1;
    for (let i = 0; i < n; i++) {
      if (counts[labels[i]] < 2) continue;
      let s = 0;
      for (let q = 0; q < d; q++) s += (X[i * d + q] - C[labels[i] * d + q]) ** 2;
      if (s > fd) {
        fd = s;
        far = i;
      }
    }
    if (far < 0) return; // k <= n guarantees a donor; defensive
    C.set(X.subarray(far * d, (far + 1) * d), c * d);
    counts[labels[far]]--;
    counts[c] = 1;
    labels[far] = c;
  }
}

/** cluster the n rows of X (n, d) into k groups */
export function kmeans(X: Float32Array, n: number, d: number, k: number, opts: KMeansOptions = {}): KMeansResult {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(d) || d < 1) throw new Error(`kmeans: need at least one point of at least one dimension, got n=${n}, d=${d}`);
  if (X.length !== n * d) throw new Error(`kmeans: X has ${X.length} values, expected n*d = ${n * d}`);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new Error(`kmeans: k must be an integer in [1, ${n}], got ${k}`);
  const nInit = opts.nInit ?? 10, maxIter = opts.maxIter ?? 300, tol = opts.tol ?? 1e-4;
  // the tolerance is relative to the data's spread
  let meanVar = 0;
  for (let q = 0; q < d; q++) {
    let s = 0, ss = 0;
    for (let i = 0; i < n; i++) {
      const v = X[i * d + q];
      s += v;
      ss += v * v;
    }
    meanVar += ss / n - (s / n) ** 2;
  }
  meanVar /= d;
  const tolAbs = tol * meanVar;
  const rng = new Rng(opts.seed ?? 0);
  const step = kernel('kmeansStep', 'float32');
  let best: KMeansResult | null = null;
  for (let run = 0; run < nInit; run++) {
    let C: Float32Array = seedPlusPlus(X, n, d, k, rng);
    const labels = new Int32Array(n), counts = new Int32Array(k);
    let next: Float32Array = new Float32Array(k * d);
    let inertia = Infinity, it = 0;
    for (it = 1; it <= maxIter; it++) {
      inertia = step(X, n, d, C, k, labels, next, counts);
      fillEmpty(X, n, d, k, labels, counts, next);
      let shift = 0;
      for (let j = 0; j < k * d; j++) shift += (next[j] - C[j]) ** 2;
      [C, next] = [next, C];
      if (shift <= tolAbs) break;
    }
    // labels and inertia for the final centroids; with fewer distinct points than k, ties can empty a
    // cluster again: refill it so that there are always k groups
    inertia = step(X, n, d, C, k, labels, next, counts);
    fillEmpty(X, n, d, k, labels, counts, C);
    if (!best || inertia < best.inertia) best = { labels: labels.slice(), centroids: C.slice(), inertia, iterations: Math.min(it, maxIter) };
  }
  return best!;
}
