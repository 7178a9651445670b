// Direct convolution, stride 1, with the convolution epilogue: each image is zero-padded once into a
// small buffer and every tile of OB channels x NT vectors of output pixels (24 accumulators with
// 16-float vectors, 12 with 8-float; see ACC) is accumulated in registers over the C*KH*KW taps, one
// unaligned input load per vector and one broadcast weight per channel and tap (the weights packed
// once per call, tap-major per block of channels: one contiguous stream of broadcasts per tile, where
// rows of the weight matrix read 6-12 streams CKK floats apart: 5-18% faster on VGG-16's 32x32 to 8x8
// layers and LeNet-5's conv2, interleaved at batch 128 on 2 threads); then the epilogue
// (scale, shift, ReLU, 2x2 max-pool) runs on the image's output while it is in L1/L2. Against the
// im2col GEMM it saves packing B, whose cost per element is spread over only OC/6 micro-tiles (a
// quarter of the work for a merged LeNet-5 conv2, 25 channels), and for the first layers (25 or 27
// taps) the C writes of a K = 25 GEMM. Images are split across the threads.
// Written once over GCC/Clang vector extensions, included with NM_VW (floats per vector) and NM_CD_NAME.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels.h"
#include "threadpool.h"

namespace {

constexpr int CVW = NM_VW;
typedef float cvf __attribute__((vector_size(CVW * 4)));
typedef float cvfu __attribute__((vector_size(CVW * 4), aligned(4)));

struct DirectGeom {
  int C, KH, KW, OH, OWr, Hp, Wp, CKK;
};

// OB output channels x NT vectors of output pixels, vector t at output row voh[t], columns vow[t]..+VW
// (adjacent vectors of one row, or of successive rows where a row is one vector): acc over the taps;
// ob rows of stride OWr
template <int OB, int NT>
void direct_tile(const DirectGeom& g, const float* xp, const float* wb, int obs, int oc0, const int* voh, const int* vow, float* ob) {
  cvf acc[OB][NT];
  for (int o = 0; o < OB; o++)
    for (int t = 0; t < NT; t++) acc[o][t] = cvf{};
  const int64_t plane = static_cast<int64_t>(g.Hp) * g.Wp;
  int64_t boff[NT];
  for (int t = 0; t < NT; t++) boff[t] = static_cast<int64_t>(voh[t]) * g.Wp + vow[t];
  int p = 0;
  for (int c = 0; c < g.C; c++) {
    for (int kh = 0; kh < g.KH; kh++) {
      const float* row = xp + c * plane + static_cast<int64_t>(kh) * g.Wp;
      for (int kw = 0; kw < g.KW; kw++, p++) {
        cvf in[NT];
        for (int t = 0; t < NT; t++) in[t] = *reinterpret_cast<const cvfu*>(row + boff[t] + kw);
        const float* wp = wb + static_cast<int64_t>(p) * obs;
#pragma GCC unroll 24
        for (int o = 0; o < OB; o++) {
          const float wv = wp[o];
          for (int t = 0; t < NT; t++) acc[o][t] += in[t] * wv;
        }
      }
    }
  }
  for (int o = 0; o < OB; o++)
    for (int t = 0; t < NT; t++) *reinterpret_cast<cvfu*>(ob + (static_cast<int64_t>(oc0 + o) * g.OH + voh[t]) * g.OWr + vow[t]) = acc[o][t];
}

// a tile's accumulators: 24 of the 32 registers with 16-float vectors (8 channels x 3 vectors, or
// fewer vectors at the end of an image), 12 of the 16 with 8-float ones (4 x 3, 6 x 2, 12 x 1); the
// weight gradient's 12
constexpr int ACC = CVW >= 16 ? 24 : 12;
constexpr int WG_ACC = 12;

typedef void (*DirectFn)(const DirectGeom&, const float*, const float*, int, int, const int*, const int*, float*);

template <int NT, int... Os>
constexpr std::array<DirectFn, sizeof...(Os)> direct_row(std::integer_sequence<int, Os...>) {
  return {&direct_tile<Os + 1, NT>...};
}
// tiles[NT - 1][OB - 1], OB <= ACC / NT
const std::array<DirectFn, ACC> direct_one = direct_row<1>(std::make_integer_sequence<int, ACC>{});
const std::array<DirectFn, ACC / 2> direct_two = direct_row<2>(std::make_integer_sequence<int, ACC / 2>{});
const std::array<DirectFn, ACC / 3> direct_three = direct_row<3>(std::make_integer_sequence<int, ACC / 3>{});

// every channel of NT output vectors (rows voh, columns vow), in blocks of OBS channels (OBS = ACC /
// the call's full chunk size, so a chunk of NT or fewer vectors fits). wpk: the weights in those
// blocks, each tap-major (wpk[block][p][o]), zero-padded: one contiguous stream of broadcasts per tile
// Channels oc_begin .. oc_end (oc_begin a multiple of OBS), ob holding channel oc_begin first.
inline void direct_chunk(const DirectGeom& g, const float* xp, const float* wpk, int OBS, int oc_begin, int oc_end, const int* voh, const int* vow, int NT, float* ob) {
  for (int oc0 = oc_begin; oc0 < oc_end; oc0 += OBS) {
    const int n = std::min(OBS, oc_end - oc0);
    const DirectFn f = NT == 3 ? direct_three[n - 1] : NT == 2 ? direct_two[n - 1] : direct_one[n - 1];
    f(g, xp, wpk + static_cast<int64_t>(oc0) * g.CKK, OBS, oc0 - oc_begin, voh, vow, ob);
  }
}

// image (C,H,W) into xp (C,Hp,Wp) at rows PH.., columns PW..; what lies outside the input stays as
// it is (0: the caller zeroes xp once). The clamps matter: OH and OW come from the caller, and a
// smaller OH or OW than the input allows makes the buffer smaller than the padded input
inline void pad_image(const float* img, int C, int H, int W, int PH, int PW, int Hp, int Wp, float* xp) {
  const int64_t plane = static_cast<int64_t>(H) * W;
  const int c0 = std::max(0, -PW), c1 = std::min(W, Wp - PW);
  if (c1 <= c0) return;
  for (int c = 0; c < C; c++)
    for (int ih = 0; ih < H; ih++) {
      const int r = ih + PH;
      if (r < 0 || r >= Hp) continue;
      std::memcpy(xp + (static_cast<int64_t>(c) * Hp + r) * Wp + c0 + PW, img + c * plane + static_cast<int64_t>(ih) * W + c0, sizeof(float) * (c1 - c0));
    }
}

}  // namespace

namespace nm {

void NM_CD_NAME(const float* x, const ConvGeometry& geo, const float* w, const ConvEpilogue& e, float* out) {
  const int N = geo.N, C = geo.C, H = geo.H, W = geo.W, KH = geo.KH, KW = geo.KW, PH = geo.PH, PW = geo.PW, OH = geo.OH, OW = geo.OW, OC = geo.OC;
  const float *scale = e.scale, *shift = e.shift;
  const bool relu = e.relu;
  const int pool = e.pool;
  DirectGeom g;
  g.C = C;
  g.KH = KH;
  g.KW = KW;
  g.OH = OH;
  g.OWr = (OW + CVW - 1) / CVW * CVW;
  g.Hp = OH + KH - 1;
  g.Wp = g.OWr + KW - 1;
  g.CKK = C * KH * KW;
  const int POH = pool == 2 ? OH / 2 : OH, POW = pool == 2 ? OW / 2 : OW;
  const int64_t image = static_cast<int64_t>(C) * H * W;
  // the image's OH x V output vectors, row by row, in chunks of NT. With 16-float vectors: 3 (8
  // channels a tile, 24 accumulators), chunks spanning rows (batch 128, 2 threads, Zen 5, both
  // builds alternating in one process: 1.16-1.22x the 12-accumulator tiles on 16- to 64-channel
  // layers at 32x32 and 16x16). With 8-float: 3 (4 channels a tile) or 2 where V is even and not a
  // multiple of 3 (6 channels a tile), a chunk spanning rows only where a row is one vector
  // (LeNet-5's conv2: 8x8 outputs)
  const int V = g.OWr / CVW;
  const int NT = ACC == 24 || V % 3 == 0 || V % 2 != 0 ? 3 : 2;
  const bool span = ACC == 24 || V == 1;
  const int OBS = ACC / NT;
  const int blocks = (OC + OBS - 1) / OBS;
  // reused from call to call (a fresh 2.4 MB block costs page faults each time); the padding lanes of
  // the last block are zeroed each call
  thread_local std::vector<float> wpk;
  if (wpk.size() < static_cast<size_t>(blocks) * g.CKK * OBS) wpk.resize(static_cast<size_t>(blocks) * g.CKK * OBS);
  if (OC % OBS) std::fill(wpk.begin() + static_cast<size_t>(blocks - 1) * g.CKK * OBS, wpk.begin() + static_cast<size_t>(blocks) * g.CKK * OBS, 0.f);
  for (int o = 0; o < OC; o++)
    for (int p = 0; p < g.CKK; p++) wpk[(static_cast<size_t>(o / OBS) * g.CKK + p) * OBS + o % OBS] = w[static_cast<int64_t>(o) * g.CKK + p];
  // this thread's buffer, by pointer: inside the workers the name would mean their own (empty) one
  const float* const wpack = wpk.data();
  // work items: whole images, or with fewer images than threads, S parts of each image's channel
  // blocks (each part pads the image itself: C*H*W copies against its share of the products)
  // under 1e6 FLOPs in all, one thread: LeNet-5's conv1 at batch 1 (1 -> 20 channels, 5x5, 24x24)
  // 10.7 against 14-15 us on 2, its merged form (1 -> 10) 6.5 against 10-11 (Zen 5, one process)
  const int nt = 2.0 * N * OC * OH * OW * g.CKK < 1e6 ? 1 : num_threads();
  const int S = N >= nt ? 1 : std::min(blocks, nt / N);
  const int items = N * S, T = std::min(items, nt);
  parallel_for(T, [&](int t) {
    std::vector<float> xp(static_cast<size_t>(C) * g.Hp * g.Wp, 0.f);
    std::vector<float> ob(static_cast<size_t>(std::min(OC, (blocks + S - 1) / S * OBS)) * OH * g.OWr);
    for (int q = items * t / T; q < items * (t + 1) / T; q++) {
      const int i = q / S, s = q % S;
      const int oc_begin = std::min(OC, blocks * s / S * OBS), oc_end = std::min(OC, blocks * (s + 1) / S * OBS);
      if (oc_end <= oc_begin) continue;
      pad_image(x + i * image, C, H, W, PH, PW, g.Hp, g.Wp, xp.data());
      const int total = OH * V;
      for (int v = 0; v < total;) {
        int voh[3], vow[3], n = 0;
        const int row = v / V;
        while (n < NT && v < total && (span || v / V == row)) {
          voh[n] = v / V;
          vow[n] = (v % V) * CVW;
          n++;
          v++;
        }
        direct_chunk(g, xp.data(), wpack, OBS, oc_begin, oc_end, voh, vow, n, ob.data());
      }
      // the epilogue on this part's output (rows OWr apart), into its place in out
      conv_epilogue(ob.data(), false, 1, oc_end - oc_begin, OH, OW, scale ? scale + oc_begin : nullptr, shift ? shift + oc_begin : nullptr, relu, pool,
                    out + (static_cast<int64_t>(i) * OC + oc_begin) * POH * POW, g.OWr);
    }
  }, T);
}

}  // namespace nm

// ---------------------------------------------------------------- weight gradient, stride 1
// (built where the including unit names it, NM_WG_NAME: the AVX-512 unit builds the forward only)
#ifdef NM_WG_NAME
//
// gw[o][c][kh][kw] = sum over images and output pixels of g[n][o][oh][ow] * xpad[n][c][oh+kh][ow+kw]
// (xpad: the image zero-padded by PH, PW), for stride 1 and output rows of whole vectors. Each tile
// holds OB channels x KW taps of one (c, kh) in 12 vector accumulators over all of an image's pixels
// (a vector of g per channel, a shifted vector of the padded input row per tap), carried from image
// to image in a buffer of vectors and summed across their lanes once, at the end (a lane sum per
// tile and image cost a fifth of the 8-float build's time and half of a 16-float one's). Instead of
// the im2col matrix and a GEMM whose B panels (C*KH*KW x pixels, transposed) cost more to pack than
// the OC rows of A spread them over. Threads take blocks of output channels: each writes its own
// rows of gw, and the sums run in the same order whatever the thread count.
namespace {

template <int OB, int KW>
void wgrad_tile(const float* xp, int Wp, int OH, int OW, const float* const* grows, cvf* acc_io) {
  cvf acc[OB][KW];
  for (int o = 0; o < OB; o++)
    for (int k = 0; k < KW; k++) acc[o][k] = acc_io[o * KW + k];
  for (int oh = 0; oh < OH; oh++) {
    const float* xr = xp + static_cast<int64_t>(oh) * Wp;
    const int64_t go = static_cast<int64_t>(oh) * OW;
    for (int v = 0; v < OW; v += CVW) {
      cvf xv[KW];
      for (int k = 0; k < KW; k++) xv[k] = *reinterpret_cast<const cvfu*>(xr + v + k);
#pragma GCC unroll 24
      for (int o = 0; o < OB; o++) {
        const cvf gv = *reinterpret_cast<const cvfu*>(grows[o] + go + v);
        for (int k = 0; k < KW; k++) acc[o][k] += gv * xv[k];
      }
    }
  }
  for (int o = 0; o < OB; o++)
    for (int k = 0; k < KW; k++) acc_io[o * KW + k] = acc[o][k];
}

typedef void (*WgradFn)(const float*, int, int, int, const float* const*, cvf*);

template <int KW>
constexpr WgradFn wgrad_fn() { return &wgrad_tile<WG_ACC / KW, KW>; }
const std::array<WgradFn, 6> wgrad_tiles = {wgrad_fn<1>(), wgrad_fn<2>(), wgrad_fn<3>(), wgrad_fn<4>(), wgrad_fn<5>(), wgrad_fn<6>()};

// the most bytes of a thread's accumulator vectors at a time: the input channels go in groups that fit
constexpr int64_t WG_PARTIAL_BYTES = int64_t{2} << 20;

}  // namespace

namespace nm {

void NM_WG_NAME(const float* x, const ConvGeometry& geo, const float* g, float* gw) {
  const int N = geo.N, C = geo.C, H = geo.H, W = geo.W, KH = geo.KH, KW = geo.KW, PH = geo.PH, PW = geo.PW, OH = geo.OH, OW = geo.OW, OC = geo.OC;
  const int OB = WG_ACC / KW;
  const WgradFn tile = wgrad_tiles[KW - 1];
  const int Hp = OH + KH - 1, Wp = OW + KW - 1;
  const int64_t plane = static_cast<int64_t>(H) * W, image = C * plane, L = static_cast<int64_t>(OH) * OW;
  const int blocks = (OC + OB - 1) / OB;
  const int T = std::min(blocks, num_threads());
  parallel_for(T, [&](int t) {
    const int b0 = blocks * t / T, b1 = blocks * (t + 1) / T;
    if (b1 <= b0) return;
    // accumulators of one input channel for this thread's blocks: (block, kh, o, k) vectors
    const int64_t per_channel = static_cast<int64_t>(b1 - b0) * KH * OB * KW;
    const int cg = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(C, WG_PARTIAL_BYTES / (per_channel * static_cast<int64_t>(sizeof(cvf))))));
    std::vector<float> xp(static_cast<size_t>(cg) * Hp * Wp, 0.f);
    std::vector<cvf> acc(static_cast<size_t>(cg * per_channel));
    for (int c0 = 0; c0 < C; c0 += cg) {
      const int cn = std::min(cg, C - c0);
      std::fill(acc.begin(), acc.end(), cvf{});
      for (int i = 0; i < N; i++) {
        pad_image(x + i * image + c0 * plane, cn, H, W, PH, PW, Hp, Wp, xp.data());
        for (int b = b0; b < b1; b++) {
          const int o0 = b * OB, ob = std::min(OB, OC - o0);
          // a short last block repeats its last channel (computed, not stored)
          const float* grows[WG_ACC];
          for (int o = 0; o < OB; o++) grows[o] = g + (static_cast<int64_t>(i) * OC + o0 + std::min(o, ob - 1)) * L;
          for (int c = 0; c < cn; c++)
            for (int kh = 0; kh < KH; kh++)
              tile(xp.data() + (static_cast<int64_t>(c) * Hp + kh) * Wp, Wp, OH, OW, grows, acc.data() + ((static_cast<int64_t>(c) * (b1 - b0) + (b - b0)) * KH + kh) * OB * KW);
        }
      }
      // each weight's lanes summed once
      for (int c = 0; c < cn; c++)
        for (int b = b0; b < b1; b++) {
          const int o0 = b * OB, ob = std::min(OB, OC - o0);
          for (int kh = 0; kh < KH; kh++) {
            const cvf* a = acc.data() + ((static_cast<int64_t>(c) * (b1 - b0) + (b - b0)) * KH + kh) * OB * KW;
            for (int o = 0; o < ob; o++)
              for (int k = 0; k < KW; k++) {
                float s = 0;
                for (int l = 0; l < CVW; l++) s += a[o * KW + k][l];
                gw[((static_cast<int64_t>(o0 + o) * C + c0 + c) * KH + kh) * KW + k] = s;
              }
          }
        }
    }
  }, T);
}

}  // namespace nm
#endif  // NM_WG_NAME
