// Winograd convolution for 3x3 kernels at stride 1 (F(m x m, 3 x 3), m = 4, or 2 on maps under 4
// pixels): the weights transformed to U (A*A, OC, C), A = m + 2; per chunk of images the input tiles
// (m x m outputs each, read from an (m+2) x (m+2) window) transformed to V (A*A, C, P) for the chunk's
// P tiles; A*A GEMMs M[xi] (OC, P) = U[xi] (OC, C) V[xi] (C, P) through the micro-kernels; then each
// output tile A^T M A, with the convolution epilogue. A*A / m^2 multiplications an output pixel
// (2.25 for m = 4, 4 for m = 2) against 9 for the direct convolution.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "threadpool.h"

namespace nm {

void wino_in_avx512(int, const float*, int64_t, int, float*, int64_t);
void wino_out_avx512(int, const float*, int64_t, int, float*, int64_t);
void wino_w_avx512(int, const float*, int, float*, int64_t);
void wino_in_avx2(int, const float*, int64_t, int, float*, int64_t);
void wino_out_avx2(int, const float*, int64_t, int, float*, int64_t);
void wino_w_avx2(int, const float*, int, float*, int64_t);
void wino_in_generic(int, const float*, int64_t, int, float*, int64_t);
void wino_out_generic(int, const float*, int64_t, int, float*, int64_t);
void wino_w_generic(int, const float*, int, float*, int64_t);
bool have_avx512_kernel();

namespace {

int initial_mode() {
  const char* e = std::getenv("NEURONMERGE_WINOGRAD");
  if (!e) return -1;
  if (!std::strcmp(e, "0") || !std::strcmp(e, "off")) return 0;
  if (!std::strcmp(e, "1") || !std::strcmp(e, "on")) return 1;
  return -1;
}
int mode = initial_mode();

typedef void (*TransformFn)(int, const float*, int64_t, int, float*, int64_t);
typedef void (*TransformW)(int, const float*, int, float*, int64_t);

// the transforms of the widest vector unit the GEMM uses
void transforms(TransformFn& in, TransformFn& out, TransformW& wt) {
  switch (gemm_isa()) {
    case Isa::Avx512: in = wino_in_avx512; out = wino_out_avx512; wt = wino_w_avx512; return;
    case Isa::Avx2: in = wino_in_avx2; out = wino_out_avx2; wt = wino_w_avx2; return;
    default: in = wino_in_generic; out = wino_out_generic; wt = wino_w_generic;
  }
}

// U (A*A, OC, C) from w (OC, C, 3, 3): G g G^T per kernel, each output channel's kernels as 9 rows of
// C taps (one row per tap) so that the transform runs over channels in vectors
void transform_weights(int m, TransformW fw, const float* w, int OC, int C, float* U) {
  const int64_t xs = static_cast<int64_t>(OC) * C;
  const int T = xs * 9 > (1 << 15) ? std::min(num_threads(), OC) : 1;
  parallel_for(T, [&](int t) {
    std::vector<float> wt(static_cast<size_t>(9) * C);
    for (int o = OC * t / T; o < OC * (t + 1) / T; o++) {
      const float* g = w + static_cast<int64_t>(o) * C * 9;
      for (int c = 0; c < C; c++)
        for (int k = 0; k < 9; k++) wt[static_cast<size_t>(k) * C + c] = g[c * 9 + k];
      fw(m, wt.data(), C, U + static_cast<int64_t>(o) * C, xs);
    }
  }, T);
}

}  // namespace

int winograd_mode() { return mode; }
void set_winograd_mode(int m) { mode = m < 0 ? -1 : m > 0 ? 1 : 0; }

int winograd_tile(int N, int C, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, int OC) {
  if (mode == 0 || KH != 3 || KW != 3 || SH != 1 || SW != 1 || PH > 2 || PW > 2 || OH < 1 || OW < 1) return 0;
  const int m = OH >= 4 && OW >= 4 ? 4 : 2;
  if (mode == 1) return m;
  // where it measured faster than the direct convolution and the GEMM (forward, 2 threads, Zen 5):
  // channels enough for the GEMMs (a 3-channel first layer: 4.5x slower), and tiles enough to pay for
  // transforming the weights (OC*C*A*A floats each call): F(4x4) from 64 tiles (VGG-16's 4x4 layers
  // at 64 images 0.8x the time, at 32 images 1.3x; 16x16 layers at 4 images 0.7-0.8x, at 2 images
  // 0.9-1.0x), F(2x2), with fewer multiplications saved a tile, from 128 (2x2 layers at 128 images
  // 0.9x, at 64 images 1.2x)
  const int64_t tiles = static_cast<int64_t>(N) * ((OH + m - 1) / m) * ((OW + m - 1) / m);
  if (C < 16 || OC < 16 || tiles < (m == 4 ? 64 : 128)) return 0;
  return m;
}

void conv_winograd(int m, const float* x, int N, int C, int H, int W, int PH, int PW, int OH, int OW, const float* w, int OC, const float* scale, const float* shift, bool relu, int pool, float* out) {
  const int A = m + 2, AA = A * A;
  const int TH = (OH + m - 1) / m, TW = (OW + m - 1) / m;
  const int64_t T1 = static_cast<int64_t>(TH) * TW;  // tiles an image
  const int POH = pool == 2 ? OH / 2 : OH, POW = pool == 2 ? OW / 2 : OW;
  TransformFn tin, tout;
  TransformW tw;
  transforms(tin, tout, tw);

  thread_local std::vector<float> U, V, Mx;
  const int64_t usize = static_cast<int64_t>(AA) * OC * C;
  if (U.size() < static_cast<size_t>(usize)) U.resize(usize);
  transform_weights(m, tw, w, OC, C, U.data());
  // images a chunk: its V and M within max(8 MB, the size of U), so that U, read by every chunk's
  // GEMMs, is not read more often than V and M are written
  const int64_t tile_bytes = static_cast<int64_t>(AA) * (C + OC) * 4;
  const int64_t budget = std::max<int64_t>(int64_t{8} << 20, usize * 4);
  const int G = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(N, budget / (tile_bytes * T1))));
  const int64_t Pmax = G * T1;
  if (V.size() < static_cast<size_t>(AA * C * Pmax)) V.resize(AA * C * Pmax);
  if (Mx.size() < static_cast<size_t>(AA * OC * Pmax)) Mx.resize(AA * OC * Pmax);
  float *Up = U.data(), *Vp = V.data(), *Mp = Mx.data();
  const int threads = num_threads();
  const int RW = TW * m + 2;  // a padded input row: tile tc reads columns tc*m .. tc*m + A - 1
  // tile rows per block of the transforms: the block's tiles at most WBLK (the buffers stay in L1/L2)
  constexpr int WBLK = 64;
  const int rows_blk = std::max(1, WBLK / TW);
  const int PB = rows_blk * TW;

  for (int n0 = 0; n0 < N; n0 += G) {
    const int g = std::min(G, N - n0);
    const int64_t P = g * T1;
    const int total_rows = g * TH;  // tile rows of the chunk, image-major
    // input tiles -> V (AA, C, P), one channel at a time per thread
    const int Tc = std::min(threads, C);
    parallel_for(Tc, [&](int t) {
      std::vector<float> d(static_cast<size_t>(AA) * PB), row(RW);
      for (int c = C * t / Tc; c < C * (t + 1) / Tc; c++) {
        for (int r0 = 0; r0 < total_rows; r0 += rows_blk) {
          const int nr = std::min(rows_blk, total_rows - r0);
          for (int r = 0; r < nr; r++) {
            const int img = (r0 + r) / TH, tr = (r0 + r) % TH;
            const float* plane = x + ((static_cast<int64_t>(n0) + img) * C + c) * H * W;
            for (int a = 0; a < A; a++) {
              const int ih = tr * m - PH + a;
              float* dr = d.data() + static_cast<int64_t>(a) * A * PB + r * TW;
              if (ih < 0 || ih >= H) {
                for (int b = 0; b < A; b++) std::fill(dr + b * PB, dr + b * PB + TW, 0.f);
                continue;
              }
              // the row with its zero padding: row[q] = x[ih][q - PW]
              const float* src = plane + static_cast<int64_t>(ih) * W;
              const int lo = std::min(PW, RW), hi = std::min(RW, PW + W);
              std::fill(row.begin(), row.begin() + lo, 0.f);
              std::memcpy(row.data() + lo, src, sizeof(float) * std::max(0, hi - lo));
              std::fill(row.begin() + std::max(lo, hi), row.end(), 0.f);
              for (int b = 0; b < A; b++) {
                float* o = dr + b * PB;
                const float* s = row.data() + b;
                for (int tc = 0; tc < TW; tc++) o[tc] = s[tc * m];
              }
            }
          }
          tin(m, d.data(), PB, nr * TW, Vp + static_cast<int64_t>(c) * P + static_cast<int64_t>(r0) * TW, C * P);
        }
      }
    }, Tc);
    // the AA products, shared among the threads (each GEMM on one thread)
    parallel_for(AA, [&](int xi) {
      sgemm(false, false, OC, static_cast<int>(P), C, 1.f, Up + static_cast<int64_t>(xi) * OC * C, C, Vp + static_cast<int64_t>(xi) * C * P, P, 0.f, Mp + static_cast<int64_t>(xi) * OC * P, P, 1);
    });
    // output tiles -> out with the epilogue, one channel at a time per thread
    const int To = std::min(threads, OC);
    parallel_for(To, [&](int t) {
      std::vector<float> y(static_cast<size_t>(m) * m * PB), rows(static_cast<size_t>(m) * TW * m), ep(TW * m + 1);
      for (int o = OC * t / To; o < OC * (t + 1) / To; o++) {
        const float s = scale ? scale[o] : 1.f, sh = shift ? shift[o] : 0.f;
        const bool ident = !scale && !shift;
        for (int r0 = 0; r0 < total_rows; r0 += rows_blk) {
          const int nr = std::min(rows_blk, total_rows - r0);
          tout(m, Mp + static_cast<int64_t>(o) * P + static_cast<int64_t>(r0) * TW, OC * P, nr * TW, y.data(), PB);
          for (int r = 0; r < nr; r++) {
            const int img = (r0 + r) / TH, tr = (r0 + r) % TH;
            const int h = std::min(m, OH - tr * m);  // output rows of this tile row
            for (int i = 0; i < h; i++)
              for (int j = 0; j < m; j++) {
                const float* yr = y.data() + static_cast<int64_t>(i * m + j) * PB + r * TW;
                float* dst = rows.data() + static_cast<int64_t>(i) * TW * m + j;
                for (int tc = 0; tc < TW; tc++) dst[tc * m] = yr[tc];
              }
            float* plane = out + ((static_cast<int64_t>(n0) + img) * OC + o) * POH * POW;
            float* dst = plane + static_cast<int64_t>(pool == 2 ? tr * m / 2 : tr * m) * POW;
            epilogue_rows(rows.data(), TW * m, h, OW, s, sh, ident, relu, pool, dst, ep.data());
          }
        }
      }
    }, To);
  }
}

}  // namespace nm
