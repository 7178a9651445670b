// Agglomerative clustering (Ward, average, complete linkage) as in "Compressing Deep Networks by Neuron
// Agglomerative Clustering" (Sensors 2020): the nearest-neighbour-chain algorithm over a full distance
// matrix with Lance–Williams updates, O(n²) time and memory (n = 4096 is 128 MB of float64).
import { kernel } from '../backend/registry.js';

export type Linkage = 'ward' | 'average' | 'complete';

export interface Merge {
  a: number; // cluster ids: 0..n-1 are points, n+i is the cluster made by merge i (in height order)
  b: number;
  height: number;
  size: number;
}

export interface AgglomerativeResult {
  labels: Int32Array;
  k: number;
  merges: Merge[];
}

/** the full dendrogram of the n rows of X (n, d), merges sorted by height */
export function dendrogram(X: Float32Array, n: number, d: number, linkage: Linkage): Merge[] {
  if (!['ward', 'average', 'complete'].includes(linkage)) throw new Error(`agglomerative: unknown linkage '${linkage}' (ward, average, complete)`);
  if (X.length !== n * d) throw new Error(`agglomerative: X has ${X.length} values, expected n*d = ${n * d}`);
  if (n > 16384) throw new Error(`agglomerative: ${n} points need ${((n * n * 8) / 2 ** 30).toFixed(1)} GiB for the distance matrix; at most 16384`);
  const sq = new Float32Array(n * n);
  kernel('pairwiseSqDist', 'float32')(X, n, X, n, d, sq);
  // Ward works on squared distances (its Lance–Williams form); the others on distances
  const D = new Float64Array(n * n);
  for (let i = 0; i < n * n; i++) D[i] = linkage === 'ward' ? sq[i] : Math.sqrt(sq[i]);
  const size = new Float64Array(n).fill(1);
  const active = new Uint8Array(n).fill(1);
  const raw: { a: number; b: number; height: number }[] = [];
  const chain: number[] = [];
  let remaining = n;
  while (remaining > 1) {
    if (chain.length === 0) {
      let s = 0;
      while (!active[s]) s++;
      chain.push(s);
    }
    const a = chain[chain.length - 1];
    const prev = chain.length > 1 ? chain[chain.length - 2] : -1;
    let b = -1, bd = Infinity;
    for (let c = 0; c < n; c++) {
      if (!active[c] || c === a) continue;
      const v = D[a * n + c];
      if (v < bd || (v === bd && c === prev)) {
        bd = v;
        b = c;
      }
    }
    if (b === prev) {
      chain.pop();
      chain.pop();
      // merge b into a: a keeps the id slot, b leaves
      raw.push({ a, b, height: linkage === 'ward' ? Math.sqrt(Math.max(0, bd)) : bd });
      const na = size[a], nb = size[b];
      for (let c = 0; c < n; c++) {
        if (!active[c] || c === a || c === b) continue;
        const dac = D[a * n + c], dbc = D[b * n + c];
        let v: number;
        if (linkage === 'ward') {
          const nc = size[c];
          v = ((na + nc) * dac + (nb + nc) * dbc - nc * bd) / (na + nb + nc);
        } else if (linkage === 'average') v = (na * dac + nb * dbc) / (na + nb);
        else v = Math.max(dac, dbc);
        D[a * n + c] = v;
        D[c * n + a] = v;
      }
      size[a] = na + nb;
      active[b] = 0;
      remaining--;
    } else chain.push(b);
  }
  // sort by height and renumber: point ids 0..n-1, merge i makes cluster n+i
  raw.sort((x, y) => x.height - y.height);
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  const clusterId = Int32Array.from({ length: n }, (_, i) => i);
  const count = new Int32Array(n).fill(1);
  return raw.map((m, i) => {
    const ra = find(m.a), rb = find(m.b);
    const merge = { a: clusterId[ra], b: clusterId[rb], height: m.height, size: count[ra] + count[rb] };
    parent[rb] = ra;
    count[ra] += count[rb];
    clusterId[ra] = n + i;
    return merge;
  });
}

/** cut the dendrogram into k clusters, or at a height threshold; labels 0..k-1 in order of first appearance */
export function agglomerative(X: Float32Array, n: number, d: number, opts: { linkage?: Linkage; k?: number; threshold?: number }): AgglomerativeResult {
  const linkage = opts.linkage ?? 'ward';
  if ((opts.k === undefined) === (opts.threshold === undefined)) throw new Error('agglomerative: give exactly one of k and threshold');
  if (opts.k !== undefined && (!Number.isInteger(opts.k) || opts.k < 1 || opts.k > n)) throw new Error(`agglomerative: k must be an integer in [1, ${n}], got ${opts.k}`);
  const merges = n > 1 ? dendrogram(X, n, d, linkage) : [];
  const take = opts.k !== undefined ? n - opts.k : merges.filter((m) => m.height <= opts.threshold!).length;
  const parent = Int32Array.from({ length: 2 * n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]];
      x = parent[x];
    }
    return x;
  };
  for (let i = 0; i < take; i++) {
    parent[find(merges[i].a)] = n + i;
    parent[find(merges[i].b)] = n + i;
  }
  const labels = new Int32Array(n);
  const ids = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const r = find(i);
    if (!ids.has(r)) ids.set(r, ids.size);
    labels[i] = ids.get(r)!;
  }
  return { labels, k: ids.size, merges };
}
