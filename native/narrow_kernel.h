// C (rows [m0, m1) of M, N) = A (M, K) * B (K, N) for a narrow B: at most 4 vectors of columns (a
// convolution at batch 1 on a small map: A its weights, B the im2col matrix of 16 to 64 pixels). A is
// read where it lies, each element broadcast once into MR rows of accumulators: no packed copy of the
// weights, which at these widths would cost more memory traffic than the product (a 512-channel 3x3
// layer's 9.4 MB read, written and read again, against 19-75 MFLOPs). B is read by whole vectors: its
// rows must hold V = ceil(N / NM_VW) vectors (columns N and beyond are read, never written). Included
// by one translation unit per instruction set with NM_VW and NM_NARROW_NAME defined.
#include <cstdint>
#include <algorithm>
#include <cstring>

namespace nm {

namespace {

// MR rows x V vectors of accumulators over the rows of A from `A` (rows past the last real one
// repeat it: their sums are computed and dropped); step(k, b) adds A's column k times B's row b
template <int V, int MR>
struct NarrowAcc {
  typedef float vf __attribute__((vector_size(NM_VW * 4)));
  vf acc[MR][V];
  const float* a[MR];
  NarrowAcc(const float* A, int64_t lda, int rows) {
    for (int i = 0; i < MR; i++) {
      for (int v = 0; v < V; v++) acc[i][v] = vf{};
      a[i] = A + static_cast<int64_t>(i < rows ? i : rows - 1) * lda;
    }
  }
  inline void step(int k, const float* bp) {
    vf b[V];
    for (int v = 0; v < V; v++) std::memcpy(&b[v], bp + v * NM_VW, sizeof(vf));
    if ((k & 15) == 0)
      for (int i = 0; i < MR; i++) __builtin_prefetch(a[i] + k + 64);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const vf s = a[i][k] - vf{};  // a broadcast (x - 0 is x, where 0 + x is not for x = -0)
      for (int v = 0; v < V; v++) acc[i][v] += s * b[v];
    }
  }
  // the first n floats of each real row into C, rows ldc apart
  void store(int rows, int n, float* C, int64_t ldc) const {
    for (int i = 0; i < rows; i++) {
      float tmp[V * NM_VW];
      std::memcpy(tmp, acc[i], sizeof(tmp));
      std::memcpy(C + static_cast<int64_t>(i) * ldc, tmp, sizeof(float) * n);
    }
  }
};

template <int V, int MR>
inline void narrow_tile(int rows, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  NarrowAcc<V, MR> t(A, lda, rows);
  for (int k = 0; k < K; k++) t.step(k, B + static_cast<int64_t>(k) * ldb);
  t.store(rows, N, C, ldc);
}

// the same product for a stride-1 convolution of one image, B never formed: B's row for the tap
// (c, kh, kw) is S + (c * KW + kw) * SP + kh * OW, L floats. S holds per input channel and kernel
// column kw the zero-padded image shifted left by kw (OH + KH - 1 rows of OW floats): the L output
// pixels of a tap are contiguous there, so S is KW copies of the image where im2col makes KH * KW
template <int V, int MR>
inline void narrow_conv_tile(int rows, int L, int C, int KH, int KW, const float* A, int64_t lda, const float* S, int64_t SP, int OW, float* Cm, int64_t ldc) {
  NarrowAcc<V, MR> t(A, lda, rows);
  int k = 0;
  for (int c = 0; c < C; c++) {
    const float* sc = S + static_cast<int64_t>(c) * KW * SP;
    for (int kh = 0; kh < KH; kh++) {
      const float* sk = sc + static_cast<int64_t>(kh) * OW;
      for (int kw = 0; kw < KW; kw++, k++) t.step(k, sk + kw * SP);
    }
  }
  t.store(rows, L, Cm, ldc);
}

template <int V, int MR>
void narrow_rows(int m0, int m1, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  for (int m = m0; m < m1; m += MR) {
    const int rows = m1 - m < MR ? m1 - m : MR;
    narrow_tile<V, MR>(rows, N, K, A + static_cast<int64_t>(m) * lda, lda, B, ldb, C + static_cast<int64_t>(m) * ldc, ldc);
  }
}

// a tile of rows at a time (its weights stay in L1), the pixels in groups of 4 vectors and the rest
template <int V, int MR>
void narrow_conv_rows(int m0, int m1, int L, int C, int KH, int KW, const float* A, const float* S, int64_t SP, int OW, float* Cm) {
  const int64_t lda = static_cast<int64_t>(C) * KH * KW;
  constexpr int G = V * NM_VW;
  for (int m = m0; m < m1; m += MR) {
    const int rows = m1 - m < MR ? m1 - m : MR;
    float* cm = Cm + static_cast<int64_t>(m - m0) * L;
    for (int p = 0; p < L; p += G) narrow_conv_tile<V, MR>(rows, L - p < G ? L - p : G, C, KH, KW, A + m * lda, lda, S + p, SP, OW, cm + p, L);
  }
}

// MR x V accumulators within the register file (32 zmm on AVX-512, 16 ymm on AVX2), leaving room for
// B's vectors and the broadcast; at most 12 rows (24 row pointers do not fit the general registers:
// their reloads made 512 -> 512 channels at 4x4 1.45x slower)
constexpr int NARROW_R = NM_VW == 16 ? 24 : 12;
constexpr int NARROW_R1 = 8;
constexpr int NARROW_VMAX = NM_VW == 16 ? 4 : 2;

}  // namespace

void NM_NARROW_CONV_NAME(int m0, int m1, int L, int C, int KH, int KW, const float* A, const float* S, int64_t SP, int OW, float* Cm) {
  // the pixels in groups of up to NARROW_VMAX vectors (4 on AVX-512; 2 on AVX2, where 4 vectors leave
  // 3 rows of accumulators and spill)
  switch (std::min((L + NM_VW - 1) / NM_VW, NARROW_VMAX)) {
    case 1: narrow_conv_rows<1, NARROW_R1>(m0, m1, L, C, KH, KW, A, S, SP, OW, Cm); break;
    case 2: narrow_conv_rows<2, NARROW_R / 2>(m0, m1, L, C, KH, KW, A, S, SP, OW, Cm); break;
    case 3: narrow_conv_rows<3, NARROW_R / 3>(m0, m1, L, C, KH, KW, A, S, SP, OW, Cm); break;
    default: narrow_conv_rows<4, NARROW_R / 4>(m0, m1, L, C, KH, KW, A, S, SP, OW, Cm); break;
  }
}

void NM_NARROW_NAME(int m0, int m1, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  constexpr int R = NARROW_R;
  switch ((N + NM_VW - 1) / NM_VW) {
    case 1: narrow_rows<1, NARROW_R1>(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
    case 2: narrow_rows<2, R / 2>(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
    case 3: narrow_rows<3, R / 3>(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
    default: narrow_rows<4, R / 4>(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
  }
}

}  // namespace nm
