#!/usr/bin/env python3
"""scikit-learn reference for `npm run bench -- cluster`: KMeans (Lloyd, k-means++) on a float32 matrix
read from a raw file, with the given k, n_init and max_iter; prints seconds (best of repeats) as JSON.
Benchmark only; the project never depends on scikit-learn."""
import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans


def main():
    path, n, d, k, n_init, max_iter, repeats = sys.argv[1], *map(int, sys.argv[2:8])
    X = np.fromfile(path, dtype=np.float32).reshape(n, d)
    best = float("inf")
    inertia = None
    for r in range(repeats):
        km = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, tol=1e-4, algorithm="lloyd", random_state=r)
        t = time.perf_counter()
        km.fit(X)
        best = min(best, time.perf_counter() - t)
        inertia = float(km.inertia_)
    print(json.dumps({"seconds": best, "inertia": inertia, "iterations": int(km.n_iter_)}))


if __name__ == "__main__":
    main()
