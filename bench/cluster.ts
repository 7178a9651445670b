// Clustering benchmark: k-means on the filters of each VGG-16 convolution (one row per filter: its
// C·3·3 weights and bias), k = n/8, against scikit-learn's KMeans with the same k, n_init, max_iter and
// tol (Debian's python3-sklearn, where installed), measured in the same run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildModel, kmeans, mergeSites, unitVectors, vgg16Arch } from '../src/internal.js';
import { emit, fmt, measureMs } from './util.js';
import type { BenchArgs } from './util.js';
import { envWithoutRerun } from '../src/runtime/hugepages.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function benchCluster(args: BenchArgs): Promise<void> {
  const nInit = 3, maxIter = 100;
  if (!args.json) console.log(`# k-means (k-means++, Lloyd, n_init ${nInit}, max_iter ${maxIter}, tol 1e-4) on VGG-16's filters, k = n/8; ratio: scikit-learn seconds / ours`);
  const model = buildModel(vgg16Arch(), 1);
  const dir = mkdtempSync(join(tmpdir(), 'nm-cluster-'));
  const seen = new Set<string>();
  try {
    for (const site of mergeSites(model).slice(0, 13)) {
      const { X, n, d } = unitVectors(model, site);
      const k = Math.max(2, n / 8);
      const key = `${n}x${d}`;
      if (seen.has(key)) continue;
      seen.add(key);
      let inertia = 0;
      const ms = await measureMs(`kmeans ${key}`, () => { inertia = kmeans(X, n, d, k, { nInit, maxIter, seed: 1 }).inertia; }, { iterations: 3, time: 500 });
      const file = join(dir, `${key}.f32`);
      writeFileSync(file, new Uint8Array(X.buffer));
      const r = spawnSync('/usr/bin/python3', [join(root, 'bench', 'sklearn_kmeans.py'), file, String(n), String(d), String(k), String(nInit), String(maxIter), '3'], { encoding: 'utf8', env: envWithoutRerun() });
      let sk: { seconds: number; inertia: number } | null = null;
      let why = '';
      if (r.status === 0) sk = JSON.parse(r.stdout.trim().split('\n').pop()!);
      else why = (r.stderr || '').includes('No module named') ? 'python3-sklearn is not installed (apt-get install python3-sklearn)' : `scikit-learn run failed: ${(r.stderr || '').split('\n').filter(Boolean).pop()}`;
      const seconds = ms / 1000;
      const ratio = sk ? sk.seconds / seconds : null;
      emit(args,
        { task: 'kmeans', shape: `${n}x${d}`, k, n_init: nInit, max_iter: maxIter, impl: 'neuronmerge', seconds, inertia, sklearn_seconds: sk?.seconds ?? null, sklearn_inertia: sk?.inertia ?? null, ratio_vs_sklearn: ratio },
        `kmeans ${key.padEnd(10)} k ${String(k).padStart(3)}: ${fmt(seconds, 3).padStart(7)} s (inertia ${fmt(inertia, 1)})   scikit-learn ${sk ? fmt(sk.seconds, 3) + ' s (inertia ' + fmt(sk.inertia, 1) + ')' : `skipped (${why})`}   ${ratio ? fmt(ratio, 2) + 'x faster' : ''}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
