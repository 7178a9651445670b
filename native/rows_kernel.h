// C (M, N) = alpha * A (M, K) * B^T + beta * C for B stored as N rows of K (a linear layer's weight)
// and few rows of A (inference at batch 1 to 4): every output is the dot product of two contiguous
// rows, so B is streamed once, in place, with no packing (which for one row of A costs more than the
// product). A block of NB rows of B is read once against all M rows of A: M x NB independent
// accumulator chains, NB + M loads for M x NB multiply-adds (a 256 -> 256 channel 2x2 layer at batch
// 1, 2 threads, Zen 5: 0.050 ms, against 0.068 re-reading the block for each row of A, 4 chains).
// Columns [n0, n1) only: the caller splits N between threads. Included by one translation unit per
// instruction set with NM_VW (floats per vector) and NM_ROWS_NAME defined; GCC vector extensions
// compile to its registers.
#include <cstdint>
#include <cstring>

namespace nm {

namespace {

typedef float rows_vf __attribute__((vector_size(NM_VW * 4)));

inline rows_vf rows_load(const float* p) {
  rows_vf v;
  std::memcpy(&v, p, sizeof(rows_vf));
  return v;
}

inline float rows_sum(rows_vf v) {
  float s = 0.f;
  for (int l = 0; l < NM_VW; l++) s += v[l];
  return s;
}

// rows i0 .. i0 + MI of A against rows j .. j + NB of B (NB <= 4, MI <= 4, both known when compiled)
template <int MI, int NB>
inline void rows_block(int i0, int j, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const float* a[MI];
  const float* b[NB];
  for (int r = 0; r < MI; r++) a[r] = A + static_cast<int64_t>(i0 + r) * lda;
  for (int s = 0; s < NB; s++) b[s] = B + static_cast<int64_t>(j + s) * ldb;
  rows_vf acc[MI][NB];
  for (int r = 0; r < MI; r++)
    for (int s = 0; s < NB; s++) acc[r][s] = rows_vf{};
  const int Kv = K - K % NM_VW;
  for (int k = 0; k < Kv; k += NM_VW) {
    rows_vf bv[NB];
    for (int s = 0; s < NB; s++) {
      __builtin_prefetch(b[s] + k + 256);
      bv[s] = rows_load(b[s] + k);
    }
    for (int r = 0; r < MI; r++) {
      const rows_vf x = rows_load(a[r] + k);
      for (int s = 0; s < NB; s++) acc[r][s] += x * bv[s];
    }
  }
  for (int r = 0; r < MI; r++)
    for (int s = 0; s < NB; s++) {
      float d = rows_sum(acc[r][s]);
      for (int k = Kv; k < K; k++) d += a[r][k] * b[s][k];
      float* c = C + static_cast<int64_t>(i0 + r) * ldc + j + s;
      *c = beta == 0.f ? alpha * d : alpha * d + beta * *c;
    }
}

// all M (<= 4) rows of A against NB rows of B from j
template <int NB>
inline void rows_all(int M, int j, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // 16 accumulators want 32 registers: with 16 (8-float vectors) two rows of A at a time
  constexpr int MAXI = NM_VW >= 16 ? 4 : 2;
  int i = 0;
  for (; i + MAXI <= M; i += MAXI) rows_block<MAXI, NB>(i, j, K, alpha, A, lda, B, ldb, beta, C, ldc);
  switch (M - i) {
    case 3: rows_block<3, NB>(i, j, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 2: rows_block<2, NB>(i, j, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case 1: rows_block<1, NB>(i, j, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    default: break;
  }
}

}  // namespace

void NM_ROWS_NAME(int M, int n0, int n1, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  int j = n0;
  for (; j + 4 <= n1; j += 4) rows_all<4>(M, j, K, alpha, A, lda, B, ldb, beta, C, ldc);
  for (; j < n1; j++) rows_all<1>(M, j, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace nm
