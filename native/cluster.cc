// Pairwise squared distances through the GEMM identity |x|^2 + |y|^2 - 2 x.y, guarded against
// cancellation: where the result is small against the norms (near-duplicates, which merging depends
// on), it is recomputed directly in double. And one Lloyd step of k-means on top of it.
#include <algorithm>
#include <cmath>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "threadpool.h"

namespace nm {
namespace {

void row_norms(const float* X, int n, int d, double* out) {
  for (int i = 0; i < n; i++) {
    const float* x = X + static_cast<int64_t>(i) * d;
    double s = 0;
    for (int j = 0; j < d; j++) s += static_cast<double>(x[j]) * x[j];
    out[i] = s;
  }
}

// out (n,m) for rows X (n,d) and Y (m,d) with their norms; threads for the GEMM
void sqdist_block(const float* X, const double* nx, int n, const float* Y, const double* ny, int m, int d, float* out, int threads) {
  sgemm(false, true, n, m, d, -2.f, X, d, Y, d, 0.f, out, m, threads);
  for (int i = 0; i < n; i++) {
    float* o = out + static_cast<int64_t>(i) * m;
    for (int j = 0; j < m; j++) {
      const double scale = nx[i] + ny[j];
      double v = o[j] + scale;
      if (v < 1e-2 * scale) {
        const float* x = X + static_cast<int64_t>(i) * d;
        const float* y = Y + static_cast<int64_t>(j) * d;
        double s = 0;
        for (int q = 0; q < d; q++) {
          const double t = static_cast<double>(x[q]) - y[q];
          s += t * t;
        }
        v = s;
      }
      o[j] = static_cast<float>(v > 0 ? v : 0);
    }
  }
}

}  // namespace

void pairwise_sqdist(const float* X, int n, const float* Y, int m, int d, float* out) {
  std::vector<double> nx(n), ny(m);
  row_norms(X, n, d, nx.data());
  row_norms(Y, m, d, ny.data());
  sqdist_block(X, nx.data(), n, Y, ny.data(), m, d, out, 0);
}

double kmeans_step(const float* X, int n, int d, const float* Cen, int k, int32_t* assign, float* newC, int32_t* counts) {
  std::vector<double> nc(k);
  row_norms(Cen, k, d, nc.data());
  const int B = 256;
  const int blocks = (n + B - 1) / B;
  const int T = std::max(1, std::min(num_threads(), blocks));
  std::vector<std::vector<double>> sums(T, std::vector<double>(static_cast<size_t>(k) * d, 0.0));
  std::vector<std::vector<int64_t>> cnt(T, std::vector<int64_t>(k, 0));
  std::vector<double> inertia(T, 0.0);
  parallel_for(T, [&](int t) {
    std::vector<float> dist(static_cast<size_t>(B) * k);
    std::vector<double> nx(B);
    for (int blk = blocks * t / T; blk < blocks * (t + 1) / T; blk++) {
      const int i0 = blk * B, rows = std::min(B, n - i0);
      const float* Xb = X + static_cast<int64_t>(i0) * d;
      row_norms(Xb, rows, d, nx.data());
      sqdist_block(Xb, nx.data(), rows, Cen, nc.data(), k, d, dist.data(), 1);
      for (int r = 0; r < rows; r++) {
        const float* dr = dist.data() + static_cast<int64_t>(r) * k;
        int best = 0;
        for (int c = 1; c < k; c++)
          if (dr[c] < dr[best]) best = c;
        assign[i0 + r] = best;
        inertia[t] += dr[best];
        cnt[t][best]++;
        double* s = sums[t].data() + static_cast<int64_t>(best) * d;
        const float* x = Xb + static_cast<int64_t>(r) * d;
        for (int q = 0; q < d; q++) s[q] += x[q];
      }
    }
  }, T);
  double total = 0;
  for (int t = 0; t < T; t++) total += inertia[t];
  for (int c = 0; c < k; c++) {
    int64_t m = 0;
    for (int t = 0; t < T; t++) m += cnt[t][c];
    counts[c] = static_cast<int32_t>(m);
    float* o = newC + static_cast<int64_t>(c) * d;
    if (m == 0) {
      std::copy(Cen + static_cast<int64_t>(c) * d, Cen + static_cast<int64_t>(c + 1) * d, o);
      continue;
    }
    for (int q = 0; q < d; q++) {
      double s = 0;
      for (int t = 0; t < T; t++) s += sums[t][static_cast<int64_t>(c) * d + q];
      o[q] = static_cast<float>(s / m);
    }
  }
  return total;
}

}  // namespace nm
