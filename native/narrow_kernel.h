// C (rows [m0, m1) of M, N) = A (M, K) * B (K, N) for a narrow B: at most 4 vectors of columns (a
// convolution at batch 1 on a small map: A its weights, B the im2col matrix of 16 to 64 pixels). A is
// read where it lies, each element broadcast once into MR rows of accumulators: no packed copy of the
// weights, which at these widths would cost more memory traffic than the product (a 512-channel 3x3
// layer's 9.4 MB read, written and read again, against 19-75 MFLOPs). B is read by whole vectors: its
// rows must hold V = ceil(N / NM_VW) vectors (columns N and beyond are read, never written). Included
// by one translation unit per instruction set with NM_VW and NM_NARROW_NAME defined.
#include <cstdint>
#include <cstring>

namespace nm {

namespace {

template <int V, int MR>
inline void narrow_tile(int rows, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  typedef float vf __attribute__((vector_size(NM_VW * 4)));
  vf acc[MR][V];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < V; v++) acc[i][v] = vf{};
  const float* a[MR];
  // rows past the last real one repeat it: their sums are computed and dropped
  for (int i = 0; i < MR; i++) a[i] = A + static_cast<int64_t>(i < rows ? i : rows - 1) * lda;
  for (int k = 0; k < K; k++) {
    vf b[V];
    for (int v = 0; v < V; v++) std::memcpy(&b[v], B + static_cast<int64_t>(k) * ldb + v * NM_VW, sizeof(vf));
    if ((k & 15) == 0)
      for (int i = 0; i < MR; i++) __builtin_prefetch(a[i] + k + 64);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const vf s = vf{} + a[i][k];
      for (int v = 0; v < V; v++) acc[i][v] += s * b[v];
    }
  }
  for (int i = 0; i < rows; i++) {
    float tmp[V * NM_VW];
    std::memcpy(tmp, acc[i], sizeof(tmp));
    std::memcpy(C + static_cast<int64_t>(i) * ldc, tmp, sizeof(float) * N);
  }
}

template <int V, int MR>
void narrow_rows(int m0, int m1, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  for (int m = m0; m < m1; m += MR) {
    const int rows = m1 - m < MR ? m1 - m : MR;
    narrow_tile<V, MR>(rows, N, K, A + static_cast<int64_t>(m) * lda, lda, B, ldb, C + static_cast<int64_t>(m) * ldc, ldc);
  }
}

}  // namespace

void NM_NARROW_NAME(int m0, int m1, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  // MR x V accumulators within the register file (32 zmm on AVX-512, 16 ymm on AVX2), leaving room for
  // B's vectors and the broadcast
  constexpr int R = NM_VW == 16 ? 24 : 12;
  switch ((N + NM_VW - 1) / NM_VW) {
    case 1: narrow_rows<1, R>(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
    case 2: narrow_rows<2, R / 2>(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
    case 3: narrow_rows<3, R / 3>(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
    default: narrow_rows<4, R / 4>(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
  }
}

}  // namespace nm
