// Clustering against known answers: well separated blobs recovered exactly by k-means and by each
// linkage; each linkage's merge heights on a small example checked by hand.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { agglomerative, dendrogram, kmeans, Rng } from '../src/internal.js';
import { assertThrows } from './helpers.js';

const C = suite('cluster');

function blobs(seed: number, perBlob: number, d: number, centers: number[][]): { X: Float32Array; truth: Int32Array } {
  const rng = new Rng(seed);
  const n = perBlob * centers.length;
  const X = new Float32Array(n * d), truth = new Int32Array(n);
  // interleave the blobs so that the order of points says nothing
  for (let i = 0; i < n; i++) {
    const c = i % centers.length;
    truth[i] = c;
    for (let q = 0; q < d; q++) X[i * d + q] = centers[c][q] + rng.normal(0, 0.1);
  }
  return { X, truth };
}

/** the same partition up to renaming the labels */
function samePartition(a: Int32Array, b: Int32Array): boolean {
  const ab = new Map<number, number>(), ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    if ((ab.has(a[i]) && ab.get(a[i]) !== b[i]) || (ba.has(b[i]) && ba.get(b[i]) !== a[i])) return false;
    ab.set(a[i], b[i]);
    ba.set(b[i], a[i]);
  }
  return true;
}

const centers = [[0, 0, 0, 0, 0], [5, 5, 0, 0, 0], [0, 5, 5, 5, 0], [-5, 0, 0, 5, 5]];

C('k-means recovers well separated blobs exactly; the same seed gives the same result', () => {
  const { X, truth } = blobs(1, 40, 5, centers);
  const r = kmeans(X, 160, 5, 4, { seed: 3 });
  assert.ok(samePartition(r.labels, truth));
  assert.ok(r.inertia < 160 * 5 * 0.1 ** 2 * 1.5, `inertia ${r.inertia}`);
  assert.equal(Array.from(kmeans(X, 160, 5, 4, { seed: 3 }).labels), Array.from(r.labels));
  const all = kmeans(X, 160, 5, 160, { seed: 1, nInit: 1 });
  assert.is(new Set(all.labels).size, 160);
  assert.ok(all.inertia < 1e-9);
  assertThrows(() => kmeans(X, 160, 5, 0), /kmeans: k must be an integer in \[1, 160\]/);
  assertThrows(() => kmeans(X, 100, 5, 2), /kmeans: X has 800 values, expected n\*d = 500/);
});

C('k-means handles duplicate points (more clusters than distinct points) without empty clusters', () => {
  const X = new Float32Array([1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 9, 9]);
  const r = kmeans(X, 6, 2, 4, { seed: 2 });
  assert.is(new Set(r.labels).size, 4);
  assert.ok(Number.isFinite(r.inertia));
});

C('each linkage recovers the blobs', () => {
  const { X, truth } = blobs(2, 25, 5, centers);
  for (const linkage of ['ward', 'average', 'complete'] as const) {
    const r = agglomerative(X, 100, 5, { linkage, k: 4 });
    assert.is(r.k, 4);
    assert.ok(samePartition(r.labels, truth), linkage);
  }
});

C('merge heights on 0, 1, 3, 7 checked by hand for each linkage', () => {
  const X = new Float32Array([0, 1, 3, 7]);
  const h = (l: 'ward' | 'average' | 'complete') => dendrogram(X, 4, 1, l).map((m) => m.height);
  const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-6);
  assert.ok(close(h('complete'), [1, 3, 7]), `complete ${h('complete')}`);
  assert.ok(close(h('average'), [1, 2.5, 17 / 3]), `average ${h('average')}`);
  assert.ok(close(h('ward'), [1, Math.sqrt(25 / 3), Math.sqrt(192.66666666666666 / 4)]), `ward ${h('ward')}`);
  const m = dendrogram(X, 4, 1, 'average');
  assert.equal([m[0].a, m[0].b].sort(), [0, 1]);
  assert.equal([m[1].a, m[1].b].sort((p, q) => p - q), [2, 4]);
  assert.is(m[2].size, 4);
  // a threshold cut between heights 2.5 and 5.67 leaves {0,1,3} and {7}
  const cut = agglomerative(X, 4, 1, { linkage: 'average', threshold: 3 });
  assert.equal(Array.from(cut.labels), [0, 0, 0, 1]);
  assertThrows(() => agglomerative(X, 4, 1, { linkage: 'single' as 'ward', k: 2 }), /unknown linkage 'single'/);
  assertThrows(() => agglomerative(X, 4, 1, { k: 2, threshold: 1 }), /exactly one of k and threshold/);
});

C.run();
