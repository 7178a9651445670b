// C (M, N) = alpha * A (M, K) * B^T + beta * C for B stored as N rows of K (a linear layer's weight)
// and few rows of A (inference at batch 1 to 4): every output is the dot product of two contiguous
// rows, so B is streamed once, in place, with no packing (which for one row of A costs more than the
// product). Four rows of B at a time give four independent accumulator chains. Columns [n0, n1) only:
// the caller splits N between threads. Included by one translation unit per instruction set with
// NM_VW (floats per vector) and NM_ROWS_NAME defined; GCC vector extensions compile to its registers.
#include <cstdint>
#include <cstring>

namespace nm {

void NM_ROWS_NAME(int M, int n0, int n1, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  typedef float vf __attribute__((vector_size(NM_VW * 4)));
  auto load = [](const float* p) {
    vf v;
    std::memcpy(&v, p, sizeof(vf));
    return v;
  };
  auto sum = [](vf v) {
    float s = 0.f;
    for (int l = 0; l < NM_VW; l++) s += v[l];
    return s;
  };
  auto store = [&](int i, int j, float dot) {
    float* c = C + static_cast<int64_t>(i) * ldc + j;
    *c = beta == 0.f ? alpha * dot : alpha * dot + beta * *c;
  };
  const int Kv = K - K % NM_VW;
  int j = n0;
  for (; j + 4 <= n1; j += 4) {
    const float* b0 = B + static_cast<int64_t>(j) * ldb;
    const float *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
    for (int i = 0; i < M; i++) {
      const float* a = A + static_cast<int64_t>(i) * lda;
      vf s0 = {}, s1 = {}, s2 = {}, s3 = {};
      for (int k = 0; k < Kv; k += NM_VW) {
        const vf x = load(a + k);
        s0 += x * load(b0 + k);
        s1 += x * load(b1 + k);
        s2 += x * load(b2 + k);
        s3 += x * load(b3 + k);
      }
      float d0 = sum(s0), d1 = sum(s1), d2 = sum(s2), d3 = sum(s3);
      for (int k = Kv; k < K; k++) {
        d0 += a[k] * b0[k];
        d1 += a[k] * b1[k];
        d2 += a[k] * b2[k];
        d3 += a[k] * b3[k];
      }
      store(i, j, d0);
      store(i, j + 1, d1);
      store(i, j + 2, d2);
      store(i, j + 3, d3);
    }
  }
  for (; j < n1; j++) {
    const float* b = B + static_cast<int64_t>(j) * ldb;
    for (int i = 0; i < M; i++) {
      const float* a = A + static_cast<int64_t>(i) * lda;
      vf s = {};
      for (int k = 0; k < Kv; k += NM_VW) s += load(a + k) * load(b + k);
      float d = sum(s);
      for (int k = Kv; k < K; k++) d += a[k] * b[k];
      store(i, j, d);
    }
  }
}

}  // namespace nm
