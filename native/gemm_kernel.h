// The SGEMM core, BLIS style, written once over GCC/Clang vector extensions and compiled three times
// (gemm_avx512.cc, gemm_avx2.cc, gemm_generic.cc), each with its own target flags, so that the same
// source gives the AVX-512, the AVX2+FMA and the portable micro-kernel. Included with NM_VW (floats per
// vector), NM_MR (rows of the micro-tile), NM_NV (vectors per row) and NM_NAME (the entry's name).
//
// C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C, row-major; beta is applied by the
// micro-kernel with the first K block.
// op(A) is packed into MR-row panels (k-major), op(B) into NR-column panels (k-major), zero-padded;
// the micro-kernel keeps an MR x NR tile of C in registers across a KC-long slice.

#include <algorithm>
#include <array>
#include <utility>
#include <atomic>
#include <thread>
#include <cstddef>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "gemm.h"
#include "threadpool.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#ifndef NM_KC
#define NM_KC 256
#endif

namespace {

constexpr int VW = NM_VW;
constexpr int MR = NM_MR;
constexpr int NV = NM_NV;
constexpr int NR = NV * VW;
constexpr int KC = NM_KC;
constexpr int MC = MR * (NM_MC_PANELS);
// the most rows of C whose whole A block is shared by the threads of a parallel product (a multiple of MR)
constexpr int MS = (384 + MR - 1) / MR * MR;
constexpr int NC = 4096;
// the most rows of C that the serial core takes as one block of rows where B is wide (at least NW
// columns in the N block): the whole op(A) slice (at most 516 x KC, about L2's size) packed once,
// op(B) packed NS columns at a time, against streaming each packed KC x NC B panel (2 MB and more,
// out of L2) from L3 once per MC-row block. Interleaved against OpenBLAS at 1 thread: 256x3584x1152
// 0.93x -> 1.01x, 128x7168x576 0.93x -> 0.98x, 512x4608x896 tB 0.97x -> 1.00x (a thread's share of
// the column-share split at 2 threads: 0.97x -> 0.99x); narrower B lost that way (512x512x4608 1.01x
// -> 0.98x, 256x1792x2304 0.99x -> 0.98x), hence NW
constexpr int MW = (512 + MR - 1) / MR * MR;
constexpr int NW = 2048;
// columns of B packed at a time where C has a single block of rows (an L2-sized piece)
constexpr int NS = (NR * ((64 * 1024) / (KC * NR))) > 0 ? NR * ((64 * 1024) / (KC * NR)) : NR;

typedef float vf __attribute__((vector_size(VW * 4)));
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));  // unaligned access

struct Buffers {
  float* a = nullptr;
  float* b = nullptr;
  // a parallel product's shared buffers, the caller's (see NM_PAR_NAME): the second B panel (b being
  // the first), or two A blocks of up to MS rows
  float* b2 = nullptr;
  float* as = nullptr;
  float* a2 = nullptr;
  ~Buffers() {
    free(as);
    free(a);
    free(b);
    free(a2);
    free(b2);
  }
  void ensure() {
    if (!a) a = static_cast<float*>(aligned_alloc(64, sizeof(float) * std::max(MC, MW) * KC));
    if (!b) b = static_cast<float*>(aligned_alloc(64, sizeof(float) * KC * ((NC + NR - 1) / NR) * NR));
  }
  void ensure_shared(bool panels) {
    if (panels && !b2) b2 = static_cast<float*>(aligned_alloc(64, sizeof(float) * KC * ((NC + NR - 1) / NR) * NR));
    if (!panels && !as) as = static_cast<float*>(aligned_alloc(64, sizeof(float) * MS * KC));
    if (!panels && !a2) a2 = static_cast<float*>(aligned_alloc(64, sizeof(float) * MS * KC));
  }
};

// one set of packing buffers per thread
thread_local Buffers tls;

#if defined(__AVX2__) && (NM_VW == 8 || NM_VW == 16)
// the 8x8 register transpose (AVX2; the AVX-512 build has it too) packs a transposed B (panels of
// 32 or 16 columns, 8 at a time); for A only with the AVX2 build's 6-row panels
#define NM_PACK_T8 1
#define NM_PACK_AVX2 (NM_VW == 8 && NM_MR == 6)
// rows r0..r7 (8 floats each) -> columns: out[k] = (r0[k], r1[k], ..., r7[k])
inline void transpose8(const __m256 r[8], __m256 out[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  out[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  out[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  out[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  out[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  out[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  out[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  out[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  out[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// the first 6 floats of v at d (a 16-byte and an 8-byte store: nothing written past d[5])
inline void store6(float* d, __m256 v) {
  _mm_storeu_ps(d, _mm256_castps256_ps128(v));
  _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm256_extractf128_ps(v, 1));
}
#else
#define NM_PACK_T8 0
#define NM_PACK_AVX2 0
#endif

// op(A) rows i0.. i0+mc, k p0.. p0+kc into MR-row panels, each k-major (d[p*MR + r]), zero-padded.
// The AVX2 build (MR 6) transposes 6 rows x 8 k per step in registers: the scalar loop took 3 to 6
// cycles per element, 4-12% of a 1-thread product's time (measured with a cycle counter around the
// packing calls on 2048^3, 512x512x4608 and 4608x512x512 tA)
inline void pack_a(const float* A, int64_t lda, bool ta, int i0, int mc, int p0, int kc, float* dst) {
  if (ta) {
    // op(A)(i,k) = A[k*lda + i]: a panel's k-th column is contiguous. Row of A by row (one
    // contiguous read per k), its pieces to every panel
    const int full = mc / MR * MR;
    for (int p = 0; p < kc; p++) {
      const float* s = A + static_cast<int64_t>(p0 + p) * lda + i0;
      float* d = dst + p * MR;
      for (int ir = 0; ir < full; ir += MR, d += static_cast<int64_t>(MR) * kc) std::memcpy(d, s + ir, sizeof(float) * MR);
      if (full < mc) {
        int r = 0;
        for (; r < mc - full; r++) d[r] = s[full + r];
        for (; r < MR; r++) d[r] = 0.f;
      }
    }
    return;
  }
  for (int ir = 0; ir < mc; ir += MR) {
    const int rows = std::min(MR, mc - ir);
    float* d = dst + static_cast<int64_t>(ir) * kc;
    int p = 0;
#if NM_PACK_AVX2
    if (rows == MR) {
      const float* s = A + static_cast<int64_t>(i0 + ir) * lda + p0;
      for (; p + 8 <= kc; p += 8) {
        __m256 r[8], c[8];
        for (int q = 0; q < MR; q++) r[q] = _mm256_loadu_ps(s + q * lda + p);
        r[6] = r[7] = _mm256_setzero_ps();
        transpose8(r, c);
        for (int k = 0; k < 8; k++) store6(d + (p + k) * MR, c[k]);
      }
    }
#endif
    for (int r = 0; r < rows; r++) {
      const float* s = A + static_cast<int64_t>(i0 + ir + r) * lda + p0;
      for (int q = p; q < kc; q++) d[q * MR + r] = s[q];
    }
    for (int r = rows; r < MR; r++)
      for (int q = p; q < kc; q++) d[q * MR + r] = 0.f;
  }
}

// the panels of an implicit B (a convolution's im2col matrix, never stored): element (p, j) is pixel
// (ih, iw) = (oh*SH - PH + kh, ow*SW - PW + kw) of channel c of image i, or 0 in the padding. Per
// panel, a table of the NR columns' (image, ih - kh, iw - kw); per row p and vector of VW columns: a
// whole-vector copy where the columns are adjacent pixels of one row and all inside the image (the
// common case), a gather where they are inside but not adjacent (strides), an element-wise check at
// the padding. (Making each row first and cutting it into panels cost about 3 cycles per element.)
inline void pack_b_conv(const nm::ConvB& cb, int p0, int kc, int j0, int nc, float* dst) {
  const int64_t L = static_cast<int64_t>(cb.OH) * cb.OW, plane = static_cast<int64_t>(cb.H) * cb.W;
  int64_t off[KC];
  int khs[KC], kws[KC];
  for (int p = 0; p < kc; p++) {
    const int q = cb.p0 + p0 + p;
    const int c = q / (cb.KH * cb.KW), kh = (q / cb.KW) % cb.KH, kw = q % cb.KW;
    off[p] = c * plane + static_cast<int64_t>(kh) * cb.W + kw;
    khs[p] = kh;
    kws[p] = kw;
  }
  // the first column's (image, oh, ow), then stepped column by column (no division per column)
  const int64_t jfirst = cb.j0 + j0;
  int64_t img = jfirst / L;
  int oh = static_cast<int>((jfirst - img * L) / cb.OW), ow = static_cast<int>(jfirst - img * L - static_cast<int64_t>(oh) * cb.OW);
  for (int jr = 0; jr < nc; jr += NR) {
    const int cols = std::min(NR, nc - jr);
    int64_t base[NR];
    int ih0[NR], iw0[NR];
    for (int q = 0; q < cols; q++) {
      ih0[q] = oh * cb.SH - cb.PH;
      iw0[q] = ow * cb.SW - cb.PW;
      base[q] = img * cb.C * plane + static_cast<int64_t>(ih0[q]) * cb.W + iw0[q];
      if (++ow == cb.OW) {
        ow = 0;
        if (++oh == cb.OH) {
          oh = 0;
          img++;
        }
      }
    }
    // per vector: adjacent pixels of one row? the range of its rows and columns
    bool run[NV], full[NV];
    int hlo[NV], hhi[NV], wlo[NV], whi[NV];
    for (int v = 0; v < NV; v++) {
      full[v] = (v + 1) * VW <= cols;
      run[v] = full[v];
      hlo[v] = wlo[v] = INT32_MAX;
      hhi[v] = whi[v] = INT32_MIN;
      for (int t = 0; t < VW && v * VW + t < cols; t++) {
        const int q = v * VW + t;
        if (t > 0 && base[q] != base[v * VW] + t) run[v] = false;
        hlo[v] = std::min(hlo[v], ih0[q]);
        hhi[v] = std::max(hhi[v], ih0[q]);
        wlo[v] = std::min(wlo[v], iw0[q]);
        whi[v] = std::max(whi[v], iw0[q]);
      }
    }
    float* d = dst + static_cast<int64_t>(jr) * kc;
    for (int p = 0; p < kc; p++, d += NR) {
      const float* s = cb.x + off[p];
      const int kh = khs[p], kw = kws[p];
      for (int v = 0; v < NV; v++) {
        const bool inside = full[v] && hlo[v] + kh >= 0 && hhi[v] + kh < cb.H && wlo[v] + kw >= 0 && whi[v] + kw < cb.W;
        if (inside && run[v]) {
          *reinterpret_cast<vf*>(d + v * VW) = *reinterpret_cast<const vfu*>(s + base[v * VW]);
        } else if (inside) {
          for (int t = 0; t < VW; t++) d[v * VW + t] = s[base[v * VW + t]];
        } else {
          for (int t = 0; t < VW; t++) {
            const int q = v * VW + t;
            const bool ok = q < cols && ih0[q] + kh >= 0 && ih0[q] + kh < cb.H && iw0[q] + kw >= 0 && iw0[q] + kw < cb.W;
            d[q] = ok ? s[base[q]] : 0.f;
          }
        }
      }
    }
  }
}

inline void pack_b(const float* B, int64_t ldb, bool tb, int p0, int kc, int j0, int nc, float* dst, const nm::ConvB* cb = nullptr) {
  const int full = nc / NR * NR;
  if (cb) {
    pack_b_conv(*cb, p0, kc, j0, nc, dst);
    return;
  }
  if (!tb) {
    // row by row: each row of B is read as one contiguous run (friendly to the prefetcher and the
    // TLB), and its NR-wide pieces go to their panels
    for (int p = 0; p < kc; p++) {
      const float* s = B + static_cast<int64_t>(p0 + p) * ldb + j0;
      for (int jr = 0; jr < full; jr += NR) {
        float* d = dst + static_cast<int64_t>(jr) * kc + p * NR;
        for (int v = 0; v < NV; v++) *reinterpret_cast<vf*>(d + v * VW) = *reinterpret_cast<const vfu*>(s + jr + v * VW);
      }
      if (full < nc) {
        float* d = dst + static_cast<int64_t>(full) * kc + p * NR;
        int c = 0;
        for (; c < nc - full; c++) d[c] = s[full + c];
        for (; c < NR; c++) d[c] = 0.f;
      }
    }
    return;
  }
  // op(B)(k,j) = B[j*ldb + k]: each column of the panel is contiguous along k. Transpose through a
  // small tile: read 8 k of each of the NR columns, then write 8 full rows of the panel (in registers,
  // 8 x 8 at a time, in the AVX2 and AVX-512 builds; the AVX-512 build's scalar tile took 16% of a
  // DBN forward at batch 128, and its products of 128 rows by 250-2000 columns ran 0.89-0.94x the
  // time with the register transpose, in-process A/B on a Zen 5, 2 threads)
  constexpr int PB = 8;
  alignas(64) float tile[NR][PB];
  for (int jr = 0; jr < nc; jr += NR) {
    const int cols = std::min(NR, nc - jr);
    float* d = dst + static_cast<int64_t>(jr) * kc;
    int p = 0;
#if NM_PACK_T8
    if (cols == NR) {
      const float* s = B + static_cast<int64_t>(j0 + jr) * ldb + p0;
      for (; p + PB <= kc; p += PB)
        for (int g = 0; g < NR; g += 8) {
          __m256 r[8], c[8];
          for (int q = 0; q < 8; q++) r[q] = _mm256_loadu_ps(s + (g + q) * ldb + p);
          transpose8(r, c);
          for (int k = 0; k < 8; k++) _mm256_storeu_ps(d + (p + k) * NR + g, c[k]);
        }
    }
#endif
    for (; p + PB <= kc; p += PB) {
      for (int c = 0; c < cols; c++) {
        const float* s = B + static_cast<int64_t>(j0 + jr + c) * ldb + p0 + p;
        for (int i = 0; i < PB; i++) tile[c][i] = s[i];
      }
      for (int c = cols; c < NR; c++)
        for (int i = 0; i < PB; i++) tile[c][i] = 0.f;
      for (int i = 0; i < PB; i++)
        for (int c = 0; c < NR; c++) d[(p + i) * NR + c] = tile[c][i];
    }
    for (; p < kc; p++) {
      for (int c = 0; c < cols; c++) d[p * NR + c] = B[static_cast<int64_t>(j0 + jr + c) * ldb + p0 + p];
      for (int c = cols; c < NR; c++) d[p * NR + c] = 0.f;
    }
  }
}

// C tile (rows x cols, row stride ldc) = alpha * Apanel (kc x MR) * Bpanel (kc x NR) + beta * C;
// consecutive k of the B panel are ldbp floats apart (NR for a packed panel; reading a row-major B in
// place, with ldbp = ldb, measures slower: one page per k, TLB misses). beta = 0 never
// reads C (the first K block of a product with beta 0).
// R (rows computed, <= MR) and V (vectors per row computed, <= NV) are compile-time: the full tile is
// <MR, NV>; an edge tile (the last rows of M = 128 with MR = 6, the last columns of N = 500) runs a
// smaller instance instead of computing zero-padded rows and columns, which measured 3-5% of the
// time of the fully connected products at batch 128.
template <int R, int V>
inline void tile_kernel(int kc, const float* __restrict a, const float* __restrict b, int64_t ldbp, float* c, int64_t ldc, float alpha, float beta, int rows, int cols) {
  // S interleaved sets of accumulators where one set holds fewer than 8 vectors (an edge tile of 1-3
  // rows): two FMA pipes of 4 cycles' latency need 8 independent sums in flight, and a 2-row tile's
  // 4 accumulators alone kept the pipes half idle. The tile alone, 1 thread, kc 256, in a loop:
  // 3x16 72 -> 90-95 GFLOP/s, 2x16 50 -> 60, 1x16 26 -> 42-55, 2x8 26 -> 42 (a 6x16 tile 93-95); in
  // whole products a few tenths of a percent to ~3% (the last 2 rows of M = 128, 512, 50), below
  // this machine's noise. The sets are summed at the end: another summation order, as deterministic
  constexpr int S = R * V >= 8 ? 1 : std::min(4, std::min((8 + R * V - 1) / (R * V), 12 / (R * V)));
  vf sets[S][R][V];
  vf (&acc)[R][V] = sets[0];
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) {
#pragma GCC unroll 4
    for (int s = 0; s < S; s++)
#pragma GCC unroll 4
      for (int v = 0; v < V; v++) sets[s][r][v] = vf{};
    if (r < rows) {
      __builtin_prefetch(c + r * ldc, 1, 3);
      __builtin_prefetch(c + r * ldc + V * VW - 1, 1, 3);
    }
    // and the next tile down (usually the caller's next call: same columns), whose C lines then
    // arrive during this one (prefetches never fault, past C's end included). 1-3% at 1 thread on
    // wide C (512x4608x896 tB, 512x2304x1808 tB) in interleaved runs; no change measurable at 2
    __builtin_prefetch(c + (R + r) * ldc, 1, 3);
    __builtin_prefetch(c + (R + r) * ldc + V * VW - 1, 1, 3);
  }
  // one k: the B row's vectors times each A value, into set s
  auto step = [&](int s) __attribute__((always_inline)) {
    __builtin_prefetch(b + 8 * ldbp, 0, 3);
    vf bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; v++) bv[v] = *reinterpret_cast<const vfu*>(b + v * VW);
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      const float ar = a[r];
#pragma GCC unroll 4
      for (int v = 0; v < V; v++) sets[s][r][v] += bv[v] * ar;
    }
    a += MR;
    b += ldbp;
  };
  int p = 0;
  if constexpr (S > 1) {
    for (; p + S <= kc; p += S)
#pragma GCC unroll 4
      for (int s = 0; s < S; s++) step(s);
#pragma GCC unroll 4
    for (int s = 1; s < S; s++)
#pragma GCC unroll 16
      for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) acc[r][v] += sets[s][r][v];
  }
#pragma GCC unroll 4
  for (; p < kc; p++) step(0);
  if (rows == R && cols == V * VW) {
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      float* cr = c + r * ldc;
#pragma GCC unroll 4
      for (int v = 0; v < V; v++) {
        vfu* cp = reinterpret_cast<vfu*>(cr + v * VW);
        if (beta == 0.f) *cp = acc[r][v] * alpha;
        else if (beta == 1.f) *cp = *cp + acc[r][v] * alpha;
        else *cp = *cp * beta + acc[r][v] * alpha;
      }
    }
  } else {
    alignas(64) float tile[R * V * VW];
    for (int r = 0; r < R; r++)
      for (int v = 0; v < V; v++) *reinterpret_cast<vf*>(tile + (r * V + v) * VW) = acc[r][v];
    for (int r = 0; r < rows; r++)
      for (int q = 0; q < cols; q++) {
        float& cv = c[r * ldc + q];
        const float t = tile[r * V * VW + q];
        cv = beta == 0.f ? alpha * t : beta == 1.f ? cv + alpha * t : cv * beta + alpha * t;
      }
  }
}

typedef void (*TileFn)(int, const float*, const float*, int64_t, float*, int64_t, float, float, int, int);

// edge[V - 1][R - 1] = tile_kernel<R, V>, for R = 1..MR and V = 1, NV
template <int V, int... Rs>
constexpr std::array<TileFn, sizeof...(Rs)> edge_row(std::integer_sequence<int, Rs...>) {
  return {&tile_kernel<Rs + 1, V>...};
}
const std::array<TileFn, MR> edge_one = edge_row<1>(std::make_integer_sequence<int, MR>{});
const std::array<TileFn, MR> edge_all = edge_row<NV>(std::make_integer_sequence<int, MR>{});

inline void micro_kernel(int kc, const float* __restrict a, const float* __restrict b, int64_t ldbp, float* c, int64_t ldc, float alpha, float beta, int rows, int cols) {
  if (rows == MR && cols > (NV - 1) * VW) {
    tile_kernel<MR, NV>(kc, a, b, ldbp, c, ldc, alpha, beta, rows, cols);
    return;
  }
  (cols <= VW ? edge_one : edge_all)[rows - 1](kc, a, b, ldbp, c, ldc, alpha, beta, rows, cols);
}

// C (rows x cols at c, row stride ldc) = alpha * a packed A block (rows x kc at pa) * packed B panels
// (kc x cols at pb) + beta * C: B panel by B panel (kept in L1), each against every panel of the A
// block (kept in L2)
inline void block_kernel(int kc, int rows, int cols, const float* pa, const float* pb, float* c, int64_t ldc, float alpha, float beta) {
  for (int jr = 0; jr < cols; jr += NR) {
    const int w = std::min(NR, cols - jr);
    for (int ir = 0; ir < rows; ir += MR)
      micro_kernel(kc, pa + static_cast<int64_t>(ir) * kc, pb + static_cast<int64_t>(jr) * kc, NR, c + static_cast<int64_t>(ir) * ldc + jr, ldc, alpha, beta, std::min(MR, rows - ir), w);
  }
}

}  // namespace

namespace nm {

// K in equal blocks of at most KC (576 = 288 + 288, not 512 + 64: a short block pays the C updates
// and packing of a full one)
inline int k_block(int K) {
  const int nk = (K + KC - 1) / KC;
  return (K + nk - 1) / nk;
}

// N in equal blocks of whole panels, at most NC (4608 = 2304 + 2304, not 4096 + 512: a narrow last
// block pays a K loop and a barrier per K block for a fraction of the work)
inline int n_block(int N) {
  const int nb = (N + NC - 1) / NC;
  return std::min(NC, ((N + nb - 1) / nb + NR - 1) / NR * NR);
}

// serial core: C (M,N) = alpha * op(A) * op(B) + beta * C (K > 0)
void NM_NAME(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const ConvB* cb) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  const int KB = k_block(K);
  tls.ensure();
  float* pa = tls.a;
  float* pb = tls.b;
  const int NB = n_block(N);
  for (int jc = 0; jc < N; jc += NB) {
    const int nc = std::min(NB, N - jc);
    for (int pc = 0; pc < K; pc += KB) {
      const int kc = std::min(KB, K - pc);
      const float bk = pc == 0 ? beta : 1.f;
      if (M <= MC || (M <= MW && nc >= NW)) {
        // one block of rows: each B panel is used by that block only, so pack B a few panels at a time
        // (NS columns, an L2-sized block) just before use, instead of the whole KC x NC panel first
        pack_a(A, lda, ta, 0, M, pc, kc, pa);
        for (int js = 0; js < nc; js += NS) {
          const int ns = std::min(NS, nc - js);
          pack_b(B, ldb, tb, pc, kc, jc + js, ns, pb, cb);
          block_kernel(kc, M, ns, pa, pb, C + jc + js, ldc, alpha, bk);
        }
        continue;
      }
      pack_b(B, ldb, tb, pc, kc, jc, nc, pb, cb);
      for (int ic = 0; ic < M; ic += MC) {
        const int mc = std::min(MC, M - ic);
        pack_a(A, lda, ta, ic, mc, pc, kc, pa);
        block_kernel(kc, mc, nc, pa, pb, C + static_cast<int64_t>(ic) * ldc + jc, ldc, alpha, bk);
      }
    }
  }
}


namespace {

// one round of waiting for another thread: a pause for the first 4000 rounds, then a yield
inline void spin_pause(int spins) {
  if (spins < 4000) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    std::this_thread::yield();
  }
}

// all T threads of one parallel_for meet here; spins briefly, then yields
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void wait() {
    const int ph = phase_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      phase_.store(ph + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; phase_.load(std::memory_order_acquire) == ph; spins++) spin_pause(spins);
  }

 private:
  const int n_;
  std::atomic<int> arrived_{0};
  std::atomic<int> phase_{0};
};

}  // namespace

inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

// where part i of `parts` equal parts (give or take one unit) of `units` units of `width` starts,
// clipped to `limit`: the threads' shares and the claimed blocks and pieces of a parallel product
inline int part_start(int units, int i, int parts, int width, int limit) {
  return std::min(limit, static_cast<int>(static_cast<int64_t>(units) * i / parts) * width);
}

// T equal shares of C's columns (whole panels), each computed by the serial core on its own thread
// (static: its NR and serial core differ between the three builds of this file)
static void col_shares(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int T, const ConvB* cb) {
  const int colUnits = (N + NR - 1) / NR;
  parallel_for(T, [&](int t) {
    const int n0 = part_start(colUnits, t, T, NR, N), n1 = part_start(colUnits, t + 1, T, NR, N);
    if (n1 <= n0) return;
    ConvB sub;
    if (cb) {
      sub = *cb;
      sub.j0 += n0;
    }
    const float* Bp = cb ? nullptr : tb ? B + static_cast<int64_t>(n0) * ldb : B + n0;
    NM_NAME(ta, tb, M, n1 - n0, K, alpha, A, lda, Bp, ldb, beta, C + n0, ldc, cb ? &sub : nullptr);
  }, T);
}

// parallel core on T threads (T <= the pool's size). Where packing an operand twice costs less than
// sharing it, nothing is shared: C of more than MS rows and several K blocks (each thread packs
// op(B) itself and runs its own row blocks, or takes a column share where op(B) is transposed and
// wide), C of at most MS rows, one K block and several N blocks (column shares). Otherwise, in each
// (jc, pc) step the threads either pack the B panel together and take C's row blocks (each packing
// its own A blocks), or, where C has at most MS rows, pack the whole A block together and take
// pieces of its column panels. Blocks and pieces are claimed one at a time from a counter per step, not split in advance: on a machine
// shared with other work, a core that is slowed down takes fewer of them instead of holding up the
// step's end.
// The shared panel (or block) alternates between two buffers, so one barrier per step suffices: a
// thread packing step i + 1 into a buffer knows every thread has finished step i - 1, its last reader,
// since all passed the barrier of step i.
void NM_PAR_NAME(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int T, const ConvB* cb) {
  if (M <= 0 || N <= 0 || K <= 0) return;
  const int KB = k_block(K);
  const int NB = n_block(N);
  const int steps = (N + NB - 1) / NB * ((K + KB - 1) / KB);
  // C's row blocks: at most MC rows, as many as a multiple of T, of equal MR-row panels give or take
  // one (part_start), so that threads taking them in turn end together (blocks of MC and a short
  // last one left 288 rows to one thread and 224 to the other at M 512)
  const int rowUnits = (M + MR - 1) / MR;
  const int rowBlocks = round_up((M + MC - 1) / MC, T);
  if (M > MS && K > KC) {
    // C of many rows and a K of several blocks: each thread packs op(B) itself and works on its own
    // row blocks of C. The shared B panel costs a barrier per K block and a panel written by one core
    // and read by the other; packing op(B) twice costs less where K spans several blocks
    // (interleaved against OpenBLAS at 2 threads, with each thread on a fixed half of C's rows:
    // 512x512x4608 0.92x -> 0.97x, 1024^3 0.95x -> 1.00x, 512x1808x2304 0.95x -> 0.97x, 4608x512x512
    // tA 1.06x -> 1.08x), not in one K block (1152x3584x256 tA 1.07x -> 1.01x, 500x8192x50 tA
    // 1.24x -> 1.19x)
    if (tb && N > M) {
      // a transposed B wider than C is tall (the wide weight gradients, 512x4608x896 tB): column
      // shares instead, each thread packing all of op(A) and half of op(B), whose 8x8 transposes
      // cost more per element than A's packing (interleaved: 512x4608x896 tB 0.95x -> 0.98x,
      // 512x2304x1808 tB 0.96x -> 1.00x, 512x4608x512 tB 1.01x -> 1.03x; 512x896x4608 with a plain
      // B read 1.03x -> 0.99x that way, so it keeps row shares)
      col_shares(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, T, cb);
      return;
    }
    // Thread t's own row blocks are [t * per, (t + 1) * per). Each thread packs each step's B panel itself and runs its own blocks,
    // then takes another thread's not yet claimed blocks of the same step where that thread is at
    // least two blocks behind (a core slowed by other work). done[b]: steps completed on block b (a
    // block's steps run in order, whoever runs them; a wait is only ever for an earlier step).
    // Against fixed halves: level on a quiet machine (within 1%), and with a busy loop on one core
    // 1.11x / 1.43x / 1.30x OpenBLAS on 512x512x4608 / 1024^3 / 512x1808x2304 where the fixed halves
    // read 0.94x / 0.97x / 0.96x. (Blocks claimed from one counter, without own blocks, measured 1-4%
    // slower on a quiet machine: C's row blocks then move between the cores.)
    const int per = rowBlocks / T;
    std::unique_ptr<std::atomic<int>[]> next(new std::atomic<int>[static_cast<size_t>(steps) * T]), done(new std::atomic<int>[rowBlocks]);
    for (int i = 0; i < steps; i++)
      for (int u = 0; u < T; u++) next[static_cast<size_t>(i) * T + u].store(u * per, std::memory_order_relaxed);
    for (int b = 0; b < rowBlocks; b++) done[b].store(0, std::memory_order_relaxed);
    parallel_for(T, [&](int t) {
      tls.ensure();
      int step = 0;
      for (int jc = 0; jc < N; jc += NB) {
        const int nc = std::min(NB, N - jc);
        for (int pc = 0; pc < K; pc += KB, step++) {
          const int kc = std::min(KB, K - pc);
          const float bk = pc == 0 ? beta : 1.f;
          pack_b(B, ldb, tb, pc, kc, jc, nc, tls.b, cb);
          auto run = [&](int b) {
            for (int spins = 0; done[b].load(std::memory_order_acquire) < step; spins++) spin_pause(spins);
            const int ic = part_start(rowUnits, b, rowBlocks, MR, M);
            const int mc = part_start(rowUnits, b + 1, rowBlocks, MR, M) - ic;
            pack_a(A, lda, ta, ic, mc, pc, kc, tls.a);
            block_kernel(kc, mc, nc, tls.a, tls.b, C + static_cast<int64_t>(ic) * ldc + jc, ldc, alpha, bk);
            done[b].store(step + 1, std::memory_order_release);
          };
          std::atomic<int>* nx = &next[static_cast<size_t>(step) * T];
          for (int b; (b = nx[t].fetch_add(1, std::memory_order_relaxed)) < (t + 1) * per;) run(b);
          for (int v = 1; v < T; v++) {
            const int u = (t + v) % T, end = (u + 1) * per;
            for (int b = nx[u].load(std::memory_order_relaxed); b + 1 < end;) {
              if (nx[u].compare_exchange_weak(b, b + 1, std::memory_order_relaxed)) {
                run(b);
                b = nx[u].load(std::memory_order_relaxed);
              }
            }
          }
        }
      }
    }, T);
    return;
  }
  if (M <= MS && K <= KC && N > NC) {
    // C of few rows, one K block and several N blocks (VGG-16's first layer as a product,
    // 64x131072x27): each thread runs the serial core on its own share of C's columns, packing the
    // small op(A) itself, instead of a barrier per N block (interleaved against OpenBLAS at 2
    // threads: 64x131072x27 1.00x -> 1.12x)
    col_shares(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, T, cb);
    return;
  }
  // row blocks also where C has too few column panels to give each thread two (a 10-class layer)
  const bool byRows = M > MS || (NB + NR - 1) / NR < 2 * T;
  tls.ensure();
  tls.ensure_shared(byRows);
  float* const pbShared[2] = {tls.b, tls.b2};
  float* const paShared[2] = {tls.as, tls.a2};
  std::unique_ptr<std::atomic<int>[]> claims(new std::atomic<int>[steps]);
  for (int i = 0; i < steps; i++) claims[i].store(0, std::memory_order_relaxed);
  SpinBarrier bar(T);
  parallel_for(T, [&](int t) {
    tls.ensure();
    int step = 0;
    for (int jc = 0; jc < N; jc += NB) {
      const int nc = std::min(NB, N - jc);
      const int panels = (nc + NR - 1) / NR;
      for (int pc = 0; pc < K; pc += KB, step++) {
        const int kc = std::min(KB, K - pc);
        const float bk = pc == 0 ? beta : 1.f;
        std::atomic<int>& claim = claims[step];
        if (byRows) {
          // the B panel is packed together (an even share each), then the threads take C's row blocks
          float* const pb = pbShared[step & 1];
          const int j0 = part_start(panels, t, T, NR, nc), j1 = part_start(panels, t + 1, T, NR, nc);
          if (j1 > j0) pack_b(B, ldb, tb, pc, kc, jc + j0, j1 - j0, pb + static_cast<int64_t>(j0) * kc, cb);
          bar.wait();
          for (int b; (b = claim.fetch_add(1, std::memory_order_relaxed)) < rowBlocks;) {
            const int ic = part_start(rowUnits, b, rowBlocks, MR, M);
            const int mc = part_start(rowUnits, b + 1, rowBlocks, MR, M) - ic;
            pack_a(A, lda, ta, ic, mc, pc, kc, tls.a);
            block_kernel(kc, mc, nc, tls.a, pb, C + static_cast<int64_t>(ic) * ldc + jc, ldc, alpha, bk);
          }
        } else {
          // one block of rows (at most MS): packed once, an even share of its panels each, shared;
          // the threads take pieces of its column panels (4 per thread, or more of at most NS columns;
          // as many as a multiple of T, of equal panels give or take one), each packing its piece of B
          // before use
          float* const pa = paShared[step & 1];
          const int r0 = part_start(rowUnits, t, T, MR, M), r1 = part_start(rowUnits, t + 1, T, MR, M);
          if (r1 > r0) pack_a(A, lda, ta, r0, r1 - r0, pc, kc, pa + static_cast<int64_t>(r0) * kc);
          bar.wait();
          const int pieces = std::min(panels, round_up(std::max(4 * T, (nc + NS - 1) / NS), T));
          for (int q; (q = claim.fetch_add(1, std::memory_order_relaxed)) < pieces;) {
            const int js = part_start(panels, q, pieces, NR, nc);
            const int ns = part_start(panels, q + 1, pieces, NR, nc) - js;
            pack_b(B, ldb, tb, pc, kc, jc + js, ns, tls.b, cb);
            block_kernel(kc, M, ns, pa, tls.b, C + jc + js, ldc, alpha, bk);
          }
        }
      }
    }
  }, T);
}

}  // namespace nm
