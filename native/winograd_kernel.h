// The transforms of Winograd's minimal filtering F(m x m, 3 x 3), m = 2 or 4, over many tiles at
// once: every array is one entry of the (m+2) x (m+2) tile for nb tiles side by side, so each line of
// the transforms below is a loop over tiles that the compiler turns into vector operations of the
// unit's width. Included by a unit built for one instruction set, with NM_WI_NAME and NM_WO_NAME.
// GCC does not take the restrict of pointers declared in a block, and a loop over six inputs and six
// outputs needs more run-time alias checks than it versions a loop for: without `ivdep` these loops
// compiled to scalar code (the input transform 19% of a 128 -> 128 channel 8x8 layer's time).
//
// Input (B^T d B) and output (A^T M A) matrices, interpolation points 0, 1, -1 (m = 2) and 0, +-1,
// +-2 (m = 4), the last row for the point at infinity:
//   m = 2: B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],   A^T = [1 1 1 0; 0 1 -1 -1]
//   m = 4: B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
//                 0 4 0 -5 0 1],
//          A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
#include <cstdint>

namespace {

constexpr int WB = 64;  // tiles per block: the intermediate of one block stays in L1

// out[k] = (B^T in)[k] for one line of A inputs, element-wise over n tiles
inline void bt_line(int m, const float* const* in, float* const* out, int n) {
  if (m == 2) {
    const float *__restrict i0 = in[0], *__restrict i1 = in[1], *__restrict i2 = in[2], *__restrict i3 = in[3];
    float *__restrict o0 = out[0], *__restrict o1 = out[1], *__restrict o2 = out[2], *__restrict o3 = out[3];
    #pragma GCC ivdep
    for (int q = 0; q < n; q++) {
      const float d0 = i0[q], d1 = i1[q], d2 = i2[q], d3 = i3[q];
      o0[q] = d0 - d2;
      o1[q] = d1 + d2;
      o2[q] = d2 - d1;
      o3[q] = d1 - d3;
    }
    return;
  }
  const float *__restrict i0 = in[0], *__restrict i1 = in[1], *__restrict i2 = in[2], *__restrict i3 = in[3], *__restrict i4 = in[4], *__restrict i5 = in[5];
  float *__restrict o0 = out[0], *__restrict o1 = out[1], *__restrict o2 = out[2], *__restrict o3 = out[3], *__restrict o4 = out[4], *__restrict o5 = out[5];
  #pragma GCC ivdep
  for (int q = 0; q < n; q++) {
    const float d0 = i0[q], d1 = i1[q], d2 = i2[q], d3 = i3[q], d4 = i4[q], d5 = i5[q];
    const float a = d4 - 4.f * d2, b = d3 - 4.f * d1;  // shared by rows 1 and 2
    const float c = d4 - d2, e = 2.f * (d3 - d1);      // shared by rows 3 and 4
    o0[q] = 4.f * d0 - 5.f * d2 + d4;
    o1[q] = a + b;
    o2[q] = a - b;
    o3[q] = c + e;
    o4[q] = c - e;
    o5[q] = 4.f * d1 - 5.f * d3 + d5;
  }
}

// out[k] = (A^T in)[k] for one line of A inputs (m outputs), element-wise over n tiles
inline void at_line(int m, const float* const* in, float* const* out, int n) {
  if (m == 2) {
    const float *__restrict i0 = in[0], *__restrict i1 = in[1], *__restrict i2 = in[2], *__restrict i3 = in[3];
    float *__restrict o0 = out[0], *__restrict o1 = out[1];
    #pragma GCC ivdep
    for (int q = 0; q < n; q++) {
      const float s1 = i1[q], s2 = i2[q];
      o0[q] = i0[q] + s1 + s2;
      o1[q] = s1 - s2 - i3[q];
    }
    return;
  }
  const float *__restrict i0 = in[0], *__restrict i1 = in[1], *__restrict i2 = in[2], *__restrict i3 = in[3], *__restrict i4 = in[4], *__restrict i5 = in[5];
  float *__restrict o0 = out[0], *__restrict o1 = out[1], *__restrict o2 = out[2], *__restrict o3 = out[3];
  #pragma GCC ivdep
  for (int q = 0; q < n; q++) {
    const float p12 = i1[q] + i2[q], m12 = i1[q] - i2[q], p34 = i3[q] + i4[q], m34 = i3[q] - i4[q];
    o0[q] = i0[q] + p12 + p34;
    o1[q] = m12 + 2.f * m34;
    o2[q] = p12 + 4.f * p34;
    o3[q] = m12 + 8.f * m34 + i5[q];
  }
}

// out[a] = (G in)[a] for one line of 3 kernel taps (A outputs), element-wise over n kernels
inline void g_line(int m, const float* const* in, float* const* out, int n) {
  const float *__restrict i0 = in[0], *__restrict i1 = in[1], *__restrict i2 = in[2];
  if (m == 2) {
    float *__restrict o0 = out[0], *__restrict o1 = out[1], *__restrict o2 = out[2], *__restrict o3 = out[3];
    #pragma GCC ivdep
    for (int q = 0; q < n; q++) {
      const float g0 = i0[q], g1 = i1[q], g2 = i2[q], h = 0.5f * (g0 + g2);
      o0[q] = g0;
      o1[q] = h + 0.5f * g1;
      o2[q] = h - 0.5f * g1;
      o3[q] = g2;
    }
    return;
  }
  float *__restrict o0 = out[0], *__restrict o1 = out[1], *__restrict o2 = out[2], *__restrict o3 = out[3], *__restrict o4 = out[4], *__restrict o5 = out[5];
  #pragma GCC ivdep
  for (int q = 0; q < n; q++) {
    const float g0 = i0[q], g1 = i1[q], g2 = i2[q];
    const float a = -(g0 + g2) * (1.f / 6), b = g1 * (1.f / 6);
    const float c = g0 * (1.f / 24) + g2 * (1.f / 6), d = g1 * (1.f / 12);
    o0[q] = 0.25f * g0;
    o1[q] = a - b;
    o2[q] = a + b;
    o3[q] = c + d;
    o4[q] = c - d;
    o5[q] = g2;
  }
}

// out[k] = (A in)[k] for one line of m inputs (A outputs): the transpose of at_line, which carries
// an output tile's gradient back to the product's entries
inline void a_line(int m, const float* const* in, float* const* out, int n) {
  if (m == 2) {
    const float *__restrict i0 = in[0], *__restrict i1 = in[1];
    float *__restrict o0 = out[0], *__restrict o1 = out[1], *__restrict o2 = out[2], *__restrict o3 = out[3];
    #pragma GCC ivdep
    for (int q = 0; q < n; q++) {
      const float e0 = i0[q], e1 = i1[q];
      o0[q] = e0;
      o1[q] = e0 + e1;
      o2[q] = e0 - e1;
      o3[q] = -e1;
    }
    return;
  }
  const float *__restrict i0 = in[0], *__restrict i1 = in[1], *__restrict i2 = in[2], *__restrict i3 = in[3];
  float *__restrict o0 = out[0], *__restrict o1 = out[1], *__restrict o2 = out[2], *__restrict o3 = out[3], *__restrict o4 = out[4], *__restrict o5 = out[5];
  #pragma GCC ivdep
  for (int q = 0; q < n; q++) {
    const float e0 = i0[q], e1 = i1[q], e2 = i2[q], e3 = i3[q];
    const float p02 = e0 + e2, p13 = e1 + e3, q02 = e0 + 4.f * e2, q13 = 2.f * e1 + 8.f * e3;
    o0[q] = e0;
    o1[q] = p02 + p13;
    o2[q] = p02 - p13;
    o3[q] = q02 + q13;
    o4[q] = q02 - q13;
    o5[q] = e3;
  }
}

// out[j] = (G^T in)[j] for one line of A inputs (3 outputs): the transpose of g_line, which carries
// the transformed kernels' gradient back to the kernels
inline void gt_line(int m, const float* const* in, float* const* out, int n) {
  float *__restrict o0 = out[0], *__restrict o1 = out[1], *__restrict o2 = out[2];
  if (m == 2) {
    const float *__restrict i0 = in[0], *__restrict i1 = in[1], *__restrict i2 = in[2], *__restrict i3 = in[3];
    #pragma GCC ivdep
    for (int q = 0; q < n; q++) {
      const float h = 0.5f * (i1[q] + i2[q]);
      o0[q] = i0[q] + h;
      o1[q] = 0.5f * (i1[q] - i2[q]);
      o2[q] = h + i3[q];
    }
    return;
  }
  const float *__restrict i0 = in[0], *__restrict i1 = in[1], *__restrict i2 = in[2], *__restrict i3 = in[3], *__restrict i4 = in[4], *__restrict i5 = in[5];
  #pragma GCC ivdep
  for (int q = 0; q < n; q++) {
    const float s12 = i1[q] + i2[q], d12 = i2[q] - i1[q], s34 = i3[q] + i4[q], d34 = i3[q] - i4[q];
    o0[q] = 0.25f * i0[q] - s12 * (1.f / 6) + s34 * (1.f / 24);
    o1[q] = d12 * (1.f / 6) + d34 * (1.f / 12);
    o2[q] = (s34 - s12) * (1.f / 6) + i5[q];
  }
}

}  // namespace

namespace nm {

// e: m*m rows (the output gradient at pixel i*m + j of the tile), es apart, of nb tiles -> the
// gradient of the products' entries A e A^T, entry xi = k*A + l at v + xi*vs
void NM_WGY_NAME(int m, const float* e, int64_t es, int nb, float* v, int64_t vs) {
  const int A = m + 2;
  alignas(64) float t[24 * WB];
  for (int q0 = 0; q0 < nb; q0 += WB) {
    const int n = nb - q0 < WB ? nb - q0 : WB;
    for (int j = 0; j < m; j++) {  // along the tile's rows (index i) for every column j: t[k*m + j]
      const float* in[4] = {};
      float* out[6] = {};
      for (int i = 0; i < m; i++) in[i] = e + (i * m + j) * es + q0;
      for (int k = 0; k < A; k++) out[k] = t + (k * m + j) * WB;
      a_line(m, in, out, n);
    }
    for (int k = 0; k < A; k++) {
      const float* in[4] = {};
      float* out[6] = {};
      for (int j = 0; j < m; j++) in[j] = t + (k * m + j) * WB;
      for (int l = 0; l < A; l++) out[l] = v + (k * A + l) * vs + q0;
      a_line(m, in, out, n);
    }
  }
}

// du: the gradient of the transformed kernels, entry xi at du + xi*us, of n kernels -> the kernels'
// gradient G^T du G, tap k (= 3*row + column) at wt + k*n
void NM_WB_NAME(int m, const float* du, int64_t us, int n, float* wt) {
  const int A = m + 2;
  alignas(64) float t[18 * WB];
  for (int q0 = 0; q0 < n; q0 += WB) {
    const int nb = n - q0 < WB ? n - q0 : WB;
    for (int b = 0; b < A; b++) {  // along the rows (index a) for every column b: t[r*A + b]
      const float* in[6] = {};
      for (int a = 0; a < A; a++) in[a] = du + (a * A + b) * us + q0;
      float* out[3] = {t + b * WB, t + (A + b) * WB, t + (2 * A + b) * WB};
      gt_line(m, in, out, nb);
    }
    for (int r = 0; r < 3; r++) {
      const float* in[6] = {};
      for (int b = 0; b < A; b++) in[b] = t + (r * A + b) * WB;
      float* out[3] = {wt + (3 * r) * n + q0, wt + (3 * r + 1) * n + q0, wt + (3 * r + 2) * n + q0};
      gt_line(m, in, out, nb);
    }
  }
}

// wt: the 9 taps of n kernels, tap k (= 3*row + column) at wt + k*n -> u: G g G^T, entry a*A + b at
// u + (a*A + b)*us
void NM_WW_NAME(int m, const float* wt, int n, float* u, int64_t us) {
  const int A = m + 2;
  alignas(64) float t[18 * WB];
  for (int q0 = 0; q0 < n; q0 += WB) {
    const int nb = n - q0 < WB ? n - q0 : WB;
    for (int j = 0; j < 3; j++) {  // along the kernel's rows, for every column j: t[a*3 + j]
      const float* in[3] = {wt + j * n + q0, wt + (3 + j) * n + q0, wt + (6 + j) * n + q0};
      float* out[6] = {};
      for (int a = 0; a < A; a++) out[a] = t + (a * 3 + j) * WB;
      g_line(m, in, out, nb);
    }
    for (int a = 0; a < A; a++) {
      const float* in[3] = {t + (a * 3) * WB, t + (a * 3 + 1) * WB, t + (a * 3 + 2) * WB};
      float* out[6] = {};
      for (int b = 0; b < A; b++) out[b] = u + (a * A + b) * us + q0;
      g_line(m, in, out, nb);
    }
  }
}

// d: A*A rows (entry a*A + b of the input tile), ds apart, of nb tiles -> v: the transformed tiles,
// entry xi = k*A + l at v + xi*vs
void NM_WI_NAME(int m, const float* d, int64_t ds, int nb, float* v, int64_t vs) {
  const int A = m + 2;
  alignas(64) float t[36 * WB];
  for (int q0 = 0; q0 < nb; q0 += WB) {
    const int n = nb - q0 < WB ? nb - q0 : WB;
    // along the rows of the tile (index a) for every column b: t[k*A + b]
    for (int b = 0; b < A; b++) {
      const float* in[6] = {};
      float* out[6] = {};
      for (int a = 0; a < A; a++) in[a] = d + (a * A + b) * ds + q0;
      for (int k = 0; k < A; k++) out[k] = t + (k * A + b) * WB;
      bt_line(m, in, out, n);
    }
    // along the columns (index b) of every row k
    for (int k = 0; k < A; k++) {
      const float* in[6] = {};
      float* out[6] = {};
      for (int b = 0; b < A; b++) in[b] = t + (k * A + b) * WB;
      for (int l = 0; l < A; l++) out[l] = v + (k * A + l) * vs + q0;
      bt_line(m, in, out, n);
    }
  }
}

// M: A*A rows (entry xi of the product), ms apart, of nb tiles -> y: m*m rows (output pixel i*m + j),
// ys apart
void NM_WO_NAME(int m, const float* M, int64_t ms, int nb, float* y, int64_t ys) {
  const int A = m + 2;
  alignas(64) float t[24 * WB];
  for (int q0 = 0; q0 < nb; q0 += WB) {
    const int n = nb - q0 < WB ? nb - q0 : WB;
    // along the rows (index k) for every column l: t[i*A + l]
    for (int l = 0; l < A; l++) {
      const float* in[6] = {};
      float* out[4] = {};
      for (int k = 0; k < A; k++) in[k] = M + (k * A + l) * ms + q0;
      for (int i = 0; i < m; i++) out[i] = t + (i * A + l) * WB;
      at_line(m, in, out, n);
    }
    for (int i = 0; i < m; i++) {
      const float* in[6] = {};
      float* out[4] = {};
      for (int l = 0; l < A; l++) in[l] = t + (i * A + l) * WB;
      for (int j = 0; j < m; j++) out[j] = y + (i * m + j) * ys + q0;
      at_line(m, in, out, n);
    }
  }
}

}  // namespace nm
