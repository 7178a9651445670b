// Winograd convolution for 3x3 kernels at stride 1 (F(m x m, 3 x 3), m = 4, or 2 on maps under 4
// pixels), forward and weight gradient. Forward: the weights transformed to U (A*A, OC, C), A = m + 2; per chunk of images the input tiles
// (m x m outputs each, read from an (m+2) x (m+2) window) transformed to V (A*A, C, P) for the chunk's
// P tiles; A*A GEMMs M[xi] (OC, P) = U[xi] (OC, C) V[xi] (C, P) through the micro-kernels; then each
// output tile A^T M A, with the convolution epilogue. A*A / m^2 multiplications an output pixel
// (2.25 for m = 4, 4 for m = 2) against 9 for the direct convolution. Weight gradient: the same input
// tiles, the output gradient's tiles A e A^T, the AA products dU[xi] (OC, C) = dM[xi] (OC, P) V[xi]^T
// summed over the chunks, then G^T dU G per kernel.
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
void wino_g_avx512(int, const float*, int64_t, int, float*, int64_t);
void wino_wb_avx512(int, const float*, int64_t, int, float*);
void wino_in_avx2(int, const float*, int64_t, int, float*, int64_t);
void wino_out_avx2(int, const float*, int64_t, int, float*, int64_t);
void wino_w_avx2(int, const float*, int, float*, int64_t);
void wino_g_avx2(int, const float*, int64_t, int, float*, int64_t);
void wino_wb_avx2(int, const float*, int64_t, int, float*);
void wino_in_generic(int, const float*, int64_t, int, float*, int64_t);
void wino_out_generic(int, const float*, int64_t, int, float*, int64_t);
void wino_w_generic(int, const float*, int, float*, int64_t);
void wino_g_generic(int, const float*, int64_t, int, float*, int64_t);
void wino_wb_generic(int, const float*, int64_t, int, float*);
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
typedef void (*TransformB)(int, const float*, int64_t, int, float*);

// the transforms of the widest vector unit the GEMM uses
struct Transforms {
  TransformFn in, out, grad;  // input tiles, output tiles, output-gradient tiles
  TransformW weights;         // kernels -> U
  TransformB back;            // dU -> the kernels' gradient
};
Transforms transforms() {
  switch (gemm_isa()) {
    case Isa::Avx512: return {wino_in_avx512, wino_out_avx512, wino_g_avx512, wino_w_avx512, wino_wb_avx512};
    case Isa::Avx2: return {wino_in_avx2, wino_out_avx2, wino_g_avx2, wino_w_avx2, wino_wb_avx2};
    default: return {wino_in_generic, wino_out_generic, wino_g_generic, wino_w_generic, wino_wb_generic};
  }
}

// the distance in floats between consecutive entries xi of a transformed array (A*A of them) of n
// floats each: n rounded up to a whole 4 KiB, plus 256 bytes. The transforms read or write all A*A
// entries of a tile at once; at a distance of a multiple of 4 KiB (C * P * 4 bytes usually is) those
// 36 streams fall into the same sets of the L1 cache, which holds 12 lines a set, and evict each other
int64_t spread(int64_t n) { return (n + 1023) / 1024 * 1024 + 64; }

// U (A*A, OC, C) from w (OC, C, 3, 3): G g G^T per kernel, each output channel's kernels as 9 rows of
// C taps (one row per tap) so that the transform runs over channels in vectors
void transform_weights(int m, TransformW fw, const float* w, int OC, int C, float* U) {
  const int64_t xs = spread(static_cast<int64_t>(OC) * C);
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

namespace {

// min_cc: the least C * OC that takes Winograd at batch >= threads
int tile_rule(const ConvGeometry& g, const ConvTarget& t, int64_t min_cc = 4096) {
  if (t.winograd == 0 || g.KH != 3 || g.KW != 3 || !g.unit_stride() || g.PH > 2 || g.PW > 2 || g.OH < 1 || g.OW < 1) return 0;
  const int m = g.OH >= 4 && g.OW >= 4 ? 4 : 2;
  if (t.winograd == 1) return m;
  const int64_t tiles = static_cast<int64_t>(g.N) * ((g.OH + m - 1) / m) * ((g.OW + m - 1) / m);
  const int64_t cc = static_cast<int64_t>(g.C) * g.OC;
  if (g.C < 16 || g.OC < 16) return 0;
  // fewer images than threads (where the narrow kernel and the direct kernel's split channel blocks
  // do not take it, see choose_conv_algorithm): its transform's products keep the threads busy on a single
  // map, given tiles enough to pay for transforming the weights each call
  if (g.N < t.threads) return tiles >= 16 && tiles * cc >= 65536 ? m : 0;
  // channels enough for the GEMMs (K = C, M = OC) to keep their micro-kernels busy, and tiles enough
  // to pay for transforming the weights: F(4x4) from 64, F(2x2) (fewer products saved a tile) from 128
  if (cc < min_cc || tiles < (m == 4 ? 64 : 128)) return 0;
  return m;
}

}  // namespace

int winograd_forward_tile(const ConvGeometry& g, const ConvTarget& t) {
  // C * OC = 4096 with an image per thread goes to the direct kernel where it runs 16-float rows (the
  // weight gradient keeps the rule)
  if (t.winograd == -1 && g.N >= t.threads && static_cast<int64_t>(g.C) * g.OC == 4096 && direct_forward_avx512(g.OW, t)) return 0;
  return tile_rule(g, t);
}

namespace {

// the tiling of an OH x OW output into m x m tiles, and the blocks of tile rows the transforms take
struct Tiles {
  int m, A, AA, TH, TW, RW, rows_blk, PB;
  int64_t T1;  // tiles an image
  Tiles(int m_, int OH, int OW) : m(m_), A(m_ + 2), AA((m_ + 2) * (m_ + 2)), TH((OH + m_ - 1) / m_), TW((OW + m_ - 1) / m_) {
    T1 = static_cast<int64_t>(TH) * TW;
    RW = TW * m + 2;  // a padded input row: tile tc reads columns tc*m .. tc*m + A - 1
    // tile rows per block of the transforms: at most 64 tiles a block (the buffers stay in L1/L2)
    rows_blk = std::max(1, 64 / TW);
    PB = rows_blk * TW;
  }
};

// images a chunk: its per-tile buffers (bytes_per_tile) within max(8 MB, the size of the kernels'
// transform, read or written by every chunk's GEMMs, so that it is not read more often than the
// per-tile buffers are written)
int chunk_images(const Tiles& t, int N, int64_t bytes_per_tile, int64_t kernel_bytes) {
  const int64_t budget = std::max<int64_t>(int64_t{8} << 20, kernel_bytes);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(N, budget / (bytes_per_tile * t.T1))));
}

// this thread's buffers for one call: the kernels' transform K (AA, OC, C; not where the caller has it) and, for a chunk of G images
// (chunk_images), the input tiles V (AA, C, P) and the products M (AA, OC, P); grown, never shrunk
struct Buffers {
  float *K, *V, *M;
  int G;
};
Buffers buffers(const Tiles& t, int N, int C, int OC, std::vector<float>& K, std::vector<float>& V, std::vector<float>& M, bool need_k = true) {
  const int64_t ksize = t.AA * spread(static_cast<int64_t>(OC) * C);
  const int G = chunk_images(t, N, static_cast<int64_t>(t.AA) * (C + OC) * 4, ksize * 4);
  const int64_t P = G * t.T1;
  const size_t vsize = t.AA * spread(C * P), msize = t.AA * spread(OC * P);
  if (need_k && K.size() < static_cast<size_t>(ksize)) K.resize(ksize);
  if (V.size() < vsize) V.resize(vsize);
  if (M.size() < msize) M.resize(msize);
  return {K.data(), V.data(), M.data(), G};
}

// the (M+2) x (M+2) windows of a row of TW tiles, read at win (rows ld apart, tile tc from column
// tc*M) -> entry a*(M+2) + b of tile tc at d[(a*(M+2) + b)*ds + tc]; the 36 (or 16) copies of a tile
// unrolled, the loop over the row's few tiles outside them
template <int M>
inline void gather_windows(const float* __restrict win, int64_t ld, int TW, float* __restrict d, int64_t ds) {
  constexpr int A = M + 2;
  for (int tc = 0; tc < TW; tc++) {
    const float* s = win + tc * M;
    float* o = d + tc;
#pragma GCC unroll 6
    for (int a = 0; a < A; a++)
#pragma GCC unroll 6
      for (int b = 0; b < A; b++) o[(a * A + b) * ds] = s[a * ld + b];
  }
}

// the inverse of gather_windows for a row of TW output tiles: pixel i*M + j of tile tc, at
// y[(i*M + j)*ys + tc] -> rows[i*TW*M + tc*M + j] (M rows of the output, TW*M pixels each)
template <int M>
inline void scatter_tiles(const float* __restrict y, int64_t ys, int TW, float* __restrict rows) {
  for (int tc = 0; tc < TW; tc++)
#pragma GCC unroll 4
    for (int i = 0; i < M; i++)
#pragma GCC unroll 4
      for (int j = 0; j < M; j++) rows[(static_cast<int64_t>(i) * TW + tc) * M + j] = y[(i * M + j) * ys + tc];
}

// V (AA, C, P) for the P = g * T1 tiles of images n0 .. n0 + g of x, one channel at a time per thread.
// Each (image, channel) plane is first copied into a zero-bordered buffer (its border written once a
// call), so that every tile's window is read without bounds checks; the windows of up to PB tiles,
// across images, then go through the transform together (its loops run over tiles)
void input_tiles(const Tiles& t, TransformFn tin, const float* x, int n0, int g, int C, int H, int W, int PH, int PW, float* V) {
  const int m = t.m, TW = t.TW, PB = t.PB, RW = t.RW;
  const int PR = t.TH * m + 2;  // padded rows: tile row tr reads rows tr*m .. tr*m + A - 1
  const int64_t P = g * t.T1;
  const int total_rows = g * t.TH;  // tile rows of the chunk, image-major
  const int Tc = std::min(num_threads(), C);
  const int hi = std::min(H, PR - PH), wi = std::min(W, RW - PW);  // the plane's part any tile reads
  parallel_for(Tc, [&](int th) {
    std::vector<float> d(static_cast<size_t>(t.AA) * PB), pad(static_cast<size_t>(PR) * RW, 0.f);
    for (int c = C * th / Tc; c < C * (th + 1) / Tc; c++) {
      int loaded = -1;
      for (int r0 = 0; r0 < total_rows; r0 += t.rows_blk) {
        const int nr = std::min(t.rows_blk, total_rows - r0);
        for (int r = 0; r < nr; r++) {
          const int img = (r0 + r) / t.TH, tr = (r0 + r) % t.TH;
          if (img != loaded) {
            const float* plane = x + ((static_cast<int64_t>(n0) + img) * C + c) * H * W;
            for (int ih = 0; ih < hi; ih++) {
              const float* __restrict src = plane + static_cast<int64_t>(ih) * W;
              float* __restrict dst = pad.data() + static_cast<int64_t>(ih + PH) * RW + PW;
              for (int iw = 0; iw < wi; iw++) dst[iw] = src[iw];
            }
            loaded = img;
          }
          const float* win = pad.data() + static_cast<int64_t>(tr * m) * RW;
          if (m == 4) gather_windows<4>(win, RW, TW, d.data() + r * TW, PB);
          else gather_windows<2>(win, RW, TW, d.data() + r * TW, PB);
        }
        tin(m, d.data(), PB, nr * TW, V + static_cast<int64_t>(c) * P + static_cast<int64_t>(r0) * TW, spread(C * P));
      }
    }
  }, Tc);
}

}  // namespace

int64_t winograd_weights_size(int m, int OC, int C) { return static_cast<int64_t>(m + 2) * (m + 2) * spread(static_cast<int64_t>(OC) * C); }

void winograd_weights(int m, const float* w, int OC, int C, float* U) { transform_weights(m, transforms().weights, w, OC, C, U); }

void conv_winograd(int m, const float* x, const ConvGeometry& geo, const float* w, const ConvEpilogue& e, float* out, const float* Upre) {
  const int N = geo.N, C = geo.C, H = geo.H, W = geo.W, PH = geo.PH, PW = geo.PW, OH = geo.OH, OW = geo.OW, OC = geo.OC;
  const float *scale = e.scale, *shift = e.shift;
  const bool relu = e.relu;
  const int pool = e.pool;
  const Tiles tl(m, OH, OW);
  const int AA = tl.AA, TW = tl.TW, TH = tl.TH, PB = tl.PB;
  const int POH = pool == 2 ? OH / 2 : OH, POW = pool == 2 ? OW / 2 : OW;
  const Transforms tf = transforms();
  thread_local std::vector<float> U, V, Mx;
  const Buffers bf = buffers(tl, N, C, OC, U, V, Mx, !Upre);
  float *Vp = bf.V, *Mp = bf.M;
  const float* Up = Upre ? Upre : bf.K;
  const int G = bf.G;
  if (!Upre) transform_weights(m, tf.weights, w, OC, C, bf.K);

  for (int n0 = 0; n0 < N; n0 += G) {
    const int g = std::min(G, N - n0);
    const int64_t P = g * tl.T1;
    const int total_rows = g * TH;
    input_tiles(tl, tf.in, x, n0, g, C, H, W, PH, PW, Vp);
    // the AA products, shared among the threads (each GEMM on one thread)
    parallel_for(AA, [&](int xi) {
      sgemm(false, false, OC, static_cast<int>(P), C, 1.f, Up + xi * spread(static_cast<int64_t>(OC) * C), C, Vp + xi * spread(C * P), P, 0.f, Mp + xi * spread(OC * P), P, 1);
    });
    // output tiles -> out with the epilogue, one channel at a time per thread
    const int To = std::min(num_threads(), OC);
    parallel_for(To, [&](int t) {
      std::vector<float> y(static_cast<size_t>(m) * m * PB), rows(static_cast<size_t>(m) * TW * m), ep(TW * m + 1);
      for (int o = OC * t / To; o < OC * (t + 1) / To; o++) {
        const float s = scale ? scale[o] : 1.f, sh = shift ? shift[o] : 0.f;
        const bool ident = !scale && !shift;
        for (int r0 = 0; r0 < total_rows; r0 += tl.rows_blk) {
          const int nr = std::min(tl.rows_blk, total_rows - r0);
          tf.out(m, Mp + static_cast<int64_t>(o) * P + static_cast<int64_t>(r0) * TW, spread(OC * P), nr * TW, y.data(), PB);
          for (int r = 0; r < nr; r++) {
            const int img = (r0 + r) / TH, tr = (r0 + r) % TH;
            const int h = std::min(m, OH - tr * m);  // output rows of this tile row
            if (m == 4) scatter_tiles<4>(y.data() + r * TW, PB, TW, rows.data());
            else scatter_tiles<2>(y.data() + r * TW, PB, TW, rows.data());
            float* plane = out + ((static_cast<int64_t>(n0) + img) * OC + o) * POH * POW;
            float* dst = plane + static_cast<int64_t>(pool == 2 ? tr * m / 2 : tr * m) * POW;
            epilogue_rows(rows.data(), TW * m, h, OW, s, sh, ident, relu, pool, dst, ep.data());
          }
        }
      }
    }, To);
  }
}

// the forward's rule, with fewer channels at batch >= threads: from C * OC = 2048 on maps of at least
// 1024 pixels (which the direct kernel takes otherwise), from 512 on smaller ones
int winograd_wgrad_tile(const ConvGeometry& g, const ConvTarget& t) {
  const int64_t min_cc = g.pixels() >= 1024 ? 2048 : 512;
  return tile_rule(g, t, min_cc);
}

void conv_winograd_wgrad(int m, const float* x, const ConvGeometry& geo, const float* gy, float* gw) {
  const int N = geo.N, C = geo.C, H = geo.H, W = geo.W, PH = geo.PH, PW = geo.PW, OH = geo.OH, OW = geo.OW, OC = geo.OC;
  const Tiles tl(m, OH, OW);
  const int AA = tl.AA, TW = tl.TW, TH = tl.TH, PB = tl.PB;
  const Transforms tf = transforms();
  thread_local std::vector<float> dU, V, dM;
  const Buffers bf = buffers(tl, N, C, OC, dU, V, dM);
  float *Up = bf.K, *Vp = bf.V, *Mp = bf.M;
  const int G = bf.G;

  for (int n0 = 0; n0 < N; n0 += G) {
    const int g = std::min(G, N - n0);
    const int64_t P = g * tl.T1;
    const int total_rows = g * TH;
    input_tiles(tl, tf.in, x, n0, g, C, H, W, PH, PW, Vp);
    // the output gradient's tiles -> dM (AA, OC, P), one channel at a time per thread
    const int To = std::min(num_threads(), OC);
    parallel_for(To, [&](int t) {
      std::vector<float> e(static_cast<size_t>(m) * m * PB);
      for (int o = OC * t / To; o < OC * (t + 1) / To; o++) {
        for (int r0 = 0; r0 < total_rows; r0 += tl.rows_blk) {
          const int nr = std::min(tl.rows_blk, total_rows - r0);
          for (int r = 0; r < nr; r++) {
            const int img = (r0 + r) / TH, tr = (r0 + r) % TH;
            const float* plane = gy + ((static_cast<int64_t>(n0) + img) * OC + o) * OH * OW;
            for (int i = 0; i < m; i++) {
              const int oh = tr * m + i;
              for (int j = 0; j < m; j++) {
                float* er = e.data() + static_cast<int64_t>(i * m + j) * PB + r * TW;
                if (oh >= OH) {
                  std::fill(er, er + TW, 0.f);
                  continue;
                }
                const float* src = plane + static_cast<int64_t>(oh) * OW + j;
                const int full = (OW - j + m - 1) / m;  // tiles whose column j lies inside the map
                for (int tc = 0; tc < full; tc++) er[tc] = src[tc * m];
                for (int tc = full; tc < TW; tc++) er[tc] = 0.f;
              }
            }
          }
          tf.grad(m, e.data(), PB, nr * TW, Mp + static_cast<int64_t>(o) * P + static_cast<int64_t>(r0) * TW, spread(OC * P));
        }
      }
    }, To);
    // dU[xi] (OC, C) += dM[xi] (OC, P) V[xi]^T, the AA products shared among the threads
    const float beta = n0 == 0 ? 0.f : 1.f;
    parallel_for(AA, [&](int xi) {
      sgemm(false, true, OC, C, static_cast<int>(P), 1.f, Mp + xi * spread(OC * P), P, Vp + xi * spread(C * P), P, beta, Up + xi * spread(static_cast<int64_t>(OC) * C), C, 1);
    });
  }
  // gw[o][c] = G^T dU G, each output channel's C kernels at once
  const int64_t xs = spread(static_cast<int64_t>(OC) * C);
  const int T = xs * 9 > (1 << 15) ? std::min(num_threads(), OC) : 1;
  parallel_for(T, [&](int t) {
    std::vector<float> wt(static_cast<size_t>(9) * C);
    for (int o = OC * t / T; o < OC * (t + 1) / T; o++) {
      tf.back(m, Up + static_cast<int64_t>(o) * C, xs, C, wt.data());
      float* g = gw + static_cast<int64_t>(o) * C * 9;
      for (int c = 0; c < C; c++)
        for (int k = 0; k < 9; k++) g[c * 9 + k] = wt[static_cast<size_t>(k) * C + c];
    }
  }, T);
}

}  // namespace nm
