// im2col / col2im and pooling; batch norm forward and backward (per channel, parallel over channels).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "threadpool.h"

namespace nm {
namespace {

// for small feature maps: for each kernel offset (kh, kw) and output pixel, the input pixel it reads
// (ih*W + iw), or -1 where that falls in the padding
std::vector<int32_t> offset_table(int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW) {
  const size_t L = static_cast<size_t>(OH) * OW;
  std::vector<int32_t> table(static_cast<size_t>(KH) * KW * L);
  for (int kh = 0; kh < KH; kh++)
    for (int kw = 0; kw < KW; kw++)
      for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
          const int ih = oh * SH - PH + kh, iw = ow * SW - PW + kw;
          table[(static_cast<size_t>(kh) * KW + kw) * L + oh * OW + ow] = ih >= 0 && ih < H && iw >= 0 && iw < W ? ih * W + iw : -1;
        }
  return table;
}

// n floats from s to o, which do not overlap (no run-time alias check per call, as a plain loop gets)
inline void copy_run(float* __restrict o, const float* __restrict s, int n) {
  for (int q = 0; q < n; q++) o[q] = s[q];
}

}  // namespace

void im2col(const float* x, int G, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, float* cols, int64_t ldc) {
  const int rows = C * KH * KW;
  const int64_t L = static_cast<int64_t>(OH) * OW, plane = static_cast<int64_t>(H) * W, image = plane * C;
  // one row of cols (a fixed c, kh, kw) across all G images; the valid output columns [ow0, ow1) of a
  // kernel column kw are the same for every output row and image
  auto row = [&](int r) {
    const int c = r / (KH * KW), kh = (r / KW) % KH, kw = r % KW;
    const int ow0 = SW == 1 ? std::min(OW, std::max(0, PW - kw)) : 0;
    const int ow1 = SW == 1 ? std::max(ow0, std::min(OW, W + PW - kw)) : OW;
    float* o = cols + static_cast<int64_t>(r) * ldc;
    for (int i = 0; i < G; i++) {
      const float* img = x + i * image + c * plane;
      for (int oh = 0; oh < OH; oh++, o += OW) {
        const int ih = oh * SH - PH + kh;
        if (ih < 0 || ih >= H) {
          for (int ow = 0; ow < OW; ow++) o[ow] = 0.f;
          continue;
        }
        const float* src = img + static_cast<int64_t>(ih) * W;
        if (SW == 1) {
          const float* s = src - PW + kw;
          for (int ow = 0; ow < ow0; ow++) o[ow] = 0.f;
          copy_run(o + ow0, s + ow0, ow1 - ow0);
          for (int ow = ow1; ow < OW; ow++) o[ow] = 0.f;
        } else {
          int iw = kw - PW;
          for (int ow = 0; ow < OW; ow++, iw += SW) o[ow] = iw >= 0 && iw < W ? src[iw] : 0.f;
        }
      }
    }
  };
  // small feature maps (deep layers: 4x4, 2x2): the loops above would spend their time on bounds;
  // instead a table gives, for each kernel offset and output pixel, the input offset (or -1: padding)
  // (output rows of 8 or more stride-1 pixels copy as contiguous runs: the loops above, even for 8x8)
  const bool use_table = L <= 64 && (OW < 8 || SW != 1);
  const std::vector<int32_t> table = use_table ? offset_table(H, W, KH, KW, SH, SW, PH, PW, OH, OW) : std::vector<int32_t>();
  auto row_table = [&](int r) {
    const int c = r / (KH * KW), k = r % (KH * KW);
    const int32_t* tb = table.data() + static_cast<size_t>(k) * L;
    float* o = cols + static_cast<int64_t>(r) * ldc;
    for (int i = 0; i < G; i++, o += L) {
      const float* img = x + i * image + c * plane;
      for (int l = 0; l < L; l++) o[l] = tb[l] >= 0 ? img[tb[l]] : 0.f;
    }
  };
  const int T = static_cast<int64_t>(rows) * G * L > (1 << 15) ? std::min(num_threads(), rows) : 1;
  parallel_for(T, [&](int t) {
    for (int r = rows * t / T; r < rows * (t + 1) / T; r++) {
      if (use_table) row_table(r);
      else row(r);
    }
  }, T);
}

void col2im(const float* cols, int64_t ldc, int G, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, float* dx) {
  const int64_t L = static_cast<int64_t>(OH) * OW, plane = static_cast<int64_t>(H) * W;
  // each (image, channel) plane of dx is written by one thread only
  const int64_t planes = static_cast<int64_t>(G) * C;
  auto one = [&](int64_t p) {
    const int i = static_cast<int>(p / C), c = static_cast<int>(p % C);
    float* out = dx + p * plane;
    for (int kh = 0; kh < KH; kh++) {
      for (int kw = 0; kw < KW; kw++) {
        const float* o = cols + static_cast<int64_t>((c * KH + kh) * KW + kw) * ldc + i * L;
        for (int oh = 0; oh < OH; oh++, o += OW) {
          const int ih = oh * SH - PH + kh;
          if (ih < 0 || ih >= H) continue;
          float* dst = out + static_cast<int64_t>(ih) * W;
          if (SW == 1) {
            const int ow0 = std::min(OW, std::max(0, PW - kw)), ow1 = std::max(ow0, std::min(OW, W + PW - kw));
            float* d = dst - PW + kw;
            for (int ow = ow0; ow < ow1; ow++) d[ow] += o[ow];
          } else {
            int iw = kw - PW;
            for (int ow = 0; ow < OW; ow++, iw += SW)
              if (iw >= 0 && iw < W) dst[iw] += o[ow];
          }
        }
      }
    }
  };
  const std::vector<int32_t> table = L <= 64 ? offset_table(H, W, KH, KW, SH, SW, PH, PW, OH, OW) : std::vector<int32_t>();
  auto one_table = [&](int64_t p) {
    const int i = static_cast<int>(p / C), c = static_cast<int>(p % C);
    float* out = dx + p * plane;
    for (int k = 0; k < KH * KW; k++) {
      const int32_t* tb = table.data() + static_cast<size_t>(k) * L;
      const float* o = cols + static_cast<int64_t>(c * KH * KW + k) * ldc + i * L;
      for (int l = 0; l < L; l++)
        if (tb[l] >= 0) out[tb[l]] += o[l];
    }
  };
  const int T = planes * KH * KW * L > (1 << 15) ? static_cast<int>(std::min<int64_t>(num_threads(), planes)) : 1;
  parallel_for(T, [&](int t) {
    for (int64_t p = planes * t / T; p < planes * (t + 1) / T; p++) {
      if (L <= 64) one_table(p);
      else one(p);
    }
  }, T);
}

// a where mask is all ones, b where it is zero (bitwise: no branch)
inline float bit_select(uint32_t mask, float a, float b) {
  uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  const uint32_t r = (ua & mask) | (ub & ~mask);
  float f;
  std::memcpy(&f, &r, 4);
  return f;
}

// the larger of two floats, a NaN in either winning; a select, not a branch
inline float pick_max(float a, float b) {
  const bool take = (b > a) | ((b != b) & (a == a));
  return take ? b : a;
}

void epilogue_rows(const float* src, int64_t ldx, int H, int W, float s, float t, bool ident, bool relu, int pool, float* dst, float* m) {
  if (pool != 2) {
    for (int h = 0; h < H; h++) {
      const float* sr = src + h * ldx;
      float* dr = dst + static_cast<int64_t>(h) * W;
      if (relu)
        for (int q = 0; q < W; q++) {
          const float y = s * sr[q] + t;
          dr[q] = y < 0.f ? 0.f : y;
        }
      else
        for (int q = 0; q < W; q++) dr[q] = s * sr[q] + t;
    }
    return;
  }
  const int OH = H / 2, OW = W / 2;
  const float lo = relu ? 0.f : -std::numeric_limits<float>::infinity();
  for (int oh = 0; oh < OH; oh++) {
    const float* r0 = src + static_cast<int64_t>(2 * oh) * ldx;
    const float* r1 = r0 + ldx;
    // the two rows' maxima, column by column, then of each pair of columns: branch-free, so that it
    // vectorizes (comparisons of real data mispredict half the time); the value is the window's
    // maximum whatever the order (a NaN anywhere gives a NaN), as maxPool2d
    for (int q = 0; q < 2 * OW; q++) {
      float a = ident ? r0[q] : s * r0[q] + t, b = ident ? r1[q] : s * r1[q] + t;
      a = a < lo ? lo : a;
      b = b < lo ? lo : b;
      m[q] = pick_max(a, b);
    }
    float* o = dst + static_cast<int64_t>(oh) * OW;
    for (int ow = 0; ow < OW; ow++) o[ow] = pick_max(m[2 * ow], m[2 * ow + 1]);
  }
}

void conv_epilogue(const float* x, bool channel_major, int G, int C, int H, int W, const float* scale, const float* shift, bool relu, int pool, float* out, int64_t ldx) {
  if (ldx <= 0) ldx = W;
  const int64_t L = static_cast<int64_t>(H) * ldx;  // a plane of x
  const int OH = pool == 2 ? H / 2 : H, OW = pool == 2 ? W / 2 : W;
  const int64_t planes = static_cast<int64_t>(G) * C;
  auto one = [&](int64_t p, std::vector<float>& row) {
    const int i = static_cast<int>(p / C), c = static_cast<int>(p % C);
    const float s = scale ? scale[c] : 1.f, t = shift ? shift[c] : 0.f;
    const bool ident = !scale && !shift;  // a plain max-pool: the values untouched (-0 stays -0)
    const float* src = x + (channel_major ? static_cast<int64_t>(c) * G + i : p) * L;
    epilogue_rows(src, ldx, H, W, s, t, ident, relu, pool, out + p * OH * OW, row.data());
  };
  const int T = planes * L > (1 << 15) ? static_cast<int>(std::min<int64_t>(num_threads(), planes)) : 1;
  parallel_for(T, [&](int t) {
    std::vector<float> row(static_cast<size_t>(W) + 1);
    for (int64_t p = planes * t / T; p < planes * (t + 1) / T; p++) one(p, row);
  }, T);
}

void conv_direct_avx512(const float* x, const ConvGeometry& g, const float* w, const ConvEpilogue& e, float* out);
void conv_direct_avx2(const float* x, const ConvGeometry& g, const float* w, const ConvEpilogue& e, float* out);
void conv_direct_generic(const float* x, const ConvGeometry& g, const float* w, const ConvEpilogue& e, float* out);
void conv_wgrad_avx2(const float* x, const ConvGeometry& g, const float* gy, float* gw);
void conv_wgrad_generic(const float* x, const ConvGeometry& g, const float* gy, float* gw);

ConvTarget ConvTarget::now() { return {gemm_isa(), num_threads(), winograd_mode()}; }
int ConvTarget::vector_floats() const { return isa == Isa::Avx512 ? 16 : isa == Isa::Avx2 ? 8 : 4; }
bool ConvTarget::avx2_loops() const { return isa != Isa::Generic && have_avx2_kernel(); }

const char* conv_algorithm_name(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::Packed: return "packed";
    case ConvAlgorithm::NarrowCopies: return "narrow-copies";
    case ConvAlgorithm::Direct: return "direct";
    case ConvAlgorithm::Winograd: return "winograd";
    case ConvAlgorithm::Dot: return "dot";
    case ConvAlgorithm::NarrowGemm: return "narrow-gemm";
    case ConvAlgorithm::GemmPerImage: return "gemm-per-image";
    case ConvAlgorithm::Im2colGemm: return "im2col-gemm";
    case ConvAlgorithm::ImplicitGemm: return "implicit-gemm";
  }
  return "?";
}

// the direct weight gradient: stride 1, KW <= 6, output rows of whole vectors; maps of 1024 pixels or
// more, or 256 with few channels (smaller maps: too few pixels a tile for its lane sums)
bool conv_weight_grad_direct(const ConvGeometry& g, const ConvTarget& t) {
  if (!g.unit_stride() || g.KW < 1 || g.KW > 6 || g.OW % (t.avx2_loops() ? 8 : 4) != 0) return false;
  const int64_t L = g.pixels();
  return L >= 1024 || (L >= 256 && (g.taps() <= 32 || g.OC <= 32));
}

WeightGradChoice choose_weight_grad_algorithm(const ConvGeometry& g, const ConvTarget& t) {
  if (const int m = winograd_wgrad_tile(g, t)) return {WeightGradAlgorithm::Winograd, m};
  if (conv_weight_grad_direct(g, t)) return {WeightGradAlgorithm::Direct};
  return {WeightGradAlgorithm::Im2colGemm};
}

// 16-float vectors for rows of whole vectors, and for rows past 16 that fill at least half of their
// last vector (padded to it)
bool direct_forward_avx512(int OW, const ConvTarget& t) { return t.isa == Isa::Avx512 && (OW % 16 == 0 || (OW > 16 && OW % 16 >= 8)); }

// the 8-float build on AVX-512 machines too (the 16-float one's shifted input loads split across two
// cache lines)
void conv_weight_grad(const float* x, const ConvGeometry& g, const float* gy, float* gw) {
  if (use_avx2_loops()) conv_wgrad_avx2(x, g, gy, gw);
  else conv_wgrad_generic(x, g, gy, gw);
}

namespace {

// see choose_conv_algorithm: each image's kernel-column copies through narrow_conv_rows and the
// epilogue; one image's output channels split between the threads, or several images split between them
void conv_narrow(const float* x, const ConvGeometry& g, const float* w, const ConvEpilogue& e, float* out) {
  const int N = g.N, C = g.C, H = g.H, W = g.W, KH = g.KH, KW = g.KW, PH = g.PH, PW = g.PW, OH = g.OH, OW = g.OW, OC = g.OC;
  const int L = OH * OW, RH = OH + KH - 1;
  const int64_t SP = static_cast<int64_t>(RH) * OW, plane = static_cast<int64_t>(H) * W;
  const int64_t POL = e.pool == 2 ? static_cast<int64_t>(OH / 2) * (OW / 2) : L;
  const int mr = narrow_tile_rows(L, true), tiles = (OC + mr - 1) / mr;
  const int T = 2.0 * N * OC * L * C * KH * KW < 1e6 ? 1 : std::min(num_threads(), N > 1 ? N : tiles);
  // rows shorter than 16 pixels (8x8 maps) copy through a table of each copy's source offsets in a
  // plane (-1: padding), as im2col does on small maps, rather than three calls a row of 8
  const bool use_table = OW < 16;
  std::vector<int32_t> table;
  if (use_table) {
    table.resize(static_cast<size_t>(KW) * SP);
    for (int kw = 0; kw < KW; kw++)
      for (int r = 0; r < RH; r++)
        for (int ow = 0; ow < OW; ow++) {
          const int ih = r - PH, iw = ow + kw - PW;
          table[(static_cast<size_t>(kw) * RH + r) * OW + ow] = ih >= 0 && ih < H && iw >= 0 && iw < W ? ih * W + iw : -1;
        }
  }
  // output channels [m0, m1) of image n, with this thread's copies of it
  auto image = [&](int n, int m0, int m1) {
    thread_local std::vector<float> S, tmp;
    // plus 4 vectors of slack: the last tap's last tile reads up to 4 vectors past its L floats
    S.resize(static_cast<size_t>(C) * KW * SP + 4 * vector_floats());
    std::fill(S.end() - 4 * vector_floats(), S.end(), 0.f);
    for (int c = 0; c < C; c++) {
      const float* img = x + (static_cast<int64_t>(n) * C + c) * plane;
      if (use_table) {
        float* o = S.data() + static_cast<int64_t>(c) * KW * SP;
        for (int64_t j = 0; j < KW * SP; j++) o[j] = table[j] >= 0 ? img[table[j]] : 0.f;
        continue;
      }
      for (int kw = 0; kw < KW; kw++) {
        float* o = S.data() + (static_cast<int64_t>(c) * KW + kw) * SP;
        const int ow0 = std::min(OW, std::max(0, PW - kw)), ow1 = std::max(ow0, std::min(OW, W + PW - kw));
        for (int r = 0; r < RH; r++, o += OW) {
          const int ih = r - PH;
          if (ih < 0 || ih >= H) {
            std::fill(o, o + OW, 0.f);
            continue;
          }
          std::fill(o, o + ow0, 0.f);
          copy_run(o + ow0, img + static_cast<int64_t>(ih) * W - PW + kw + ow0, ow1 - ow0);
          std::fill(o + ow1, o + OW, 0.f);
        }
      }
    }
    tmp.resize(static_cast<size_t>(m1 - m0) * L);
    narrow_conv_rows(m0, m1, L, C, KH, KW, w, S.data(), SP, OW, tmp.data());
    conv_epilogue(tmp.data(), false, 1, m1 - m0, OH, OW, e.scale ? e.scale + m0 : nullptr, e.shift ? e.shift + m0 : nullptr, e.relu, e.pool, out + static_cast<int64_t>(n) * OC * POL + m0 * POL);
  };
  parallel_for(T, [&](int t) {
    if (N > 1) {
      for (int n = static_cast<int>(static_cast<int64_t>(N) * t / T); n < static_cast<int64_t>(N) * (t + 1) / T; n++) image(n, 0, OC);
      return;
    }
    const int m0 = std::min(OC, tiles * t / T * mr), m1 = std::min(OC, tiles * (t + 1) / T * mr);
    if (m1 > m0) image(0, m0, m1);
  }, T);
}

}  // namespace

bool narrow_conv_takes(const ConvGeometry& g, const ConvTarget& t) {
  const int64_t L = g.pixels();
  // 16 pixels or fewer keep im2col and the narrow kernel; at most 32 taps (first layers) keep the
  // direct kernel
  if (!g.unit_stride() || g.taps() <= 32 || g.OC < 16 || L <= 16) return false;
  // each thread's copies within about its L2 (1 MiB)
  if (static_cast<int64_t>(g.C) * g.KW * (g.OH + g.KH - 1) * g.OW * 4 > (int64_t{1} << 20)) return false;
  if (g.N == 1) return L <= (t.isa == Isa::Avx512 ? 256 : 64);
  // several images: only in the direct kernel's place where it cannot take 16-float vectors (rows of
  // 8 or more that are not a multiple of 16), an image per thread
  return L <= 256 && g.OW >= 8 && g.N >= t.threads && t.isa == Isa::Avx512 && !direct_forward_avx512(g.OW, t);
}

bool direct_one_image_takes(const ConvGeometry& g, const ConvTarget& t) {
  // fewer images than threads: the direct kernel splits the image's blocks of output channels
  // between the threads, on maps past the narrow kernel's with few channels (where Winograd's
  // transforms and the GEMMs run on too little to keep their micro-kernels busy)
  if (g.N >= t.threads || g.KH != 3 || g.KW != 3 || !g.unit_stride() || g.OW < 8 || g.OC < 16 || g.C <= 3) return false;
  const int64_t L = g.pixels(), cc = static_cast<int64_t>(g.C) * g.OC;
  if (direct_forward_avx512(g.OW, t)) return L > 256 && cc < 4096;
  return t.isa == Isa::Avx2 && L > 64 && cc <= 2048;
}

// at most 16 pixels in all: an im2col matrix of at most 16 columns times the packed weights
bool packed_conv_takes(const ConvGeometry& g) {
  const int64_t R = static_cast<int64_t>(g.N) * g.pixels();
  return R >= 1 && R <= 16 && g.taps() >= 16;
}

// The rules in order, first match wins. The measurements behind each threshold are in
// docs/performance.md ("How a convolution chooses its algorithm").
ConvChoice choose_conv_algorithm(const ConvGeometry& g, int pool, bool packed, const ConvTarget& t) {
  const int64_t L = g.pixels(), R = static_cast<int64_t>(g.N) * L;
  const int CKK = g.taps();
  const int direct_width = direct_forward_avx512(g.OW, t) ? 16 : t.avx2_loops() ? 8 : 4;
  // weights packed ahead and few pixels in all: one contiguous stream of weight vectors
  if (packed && packed_conv_takes(g)) return {ConvAlgorithm::Packed};
  // one image at stride 1: kernel-column copies in place of im2col (KW copies, not KH * KW), each
  // thread its own (unless Winograd is forced on: tests, benchmarks)
  const bool narrow = narrow_conv_takes(g, t);
  if (narrow && g.N == 1 && t.winograd != 1) return {ConvAlgorithm::NarrowCopies};
  if (t.winograd != 1 && direct_one_image_takes(g, t)) return {ConvAlgorithm::Direct, 0, direct_width};
  if (const int m = winograd_forward_tile(g, t)) return {ConvAlgorithm::Winograd, m};
  if (narrow) return {ConvAlgorithm::NarrowCopies};
  // stride 1, output rows of at least 8 pixels, an image per thread (or few taps an output, where the
  // GEMM gains nothing from the threads): no B panels to pack
  if (g.unit_stride() && g.OW >= 8 && (CKK <= 32 || g.N >= t.threads)) return {ConvAlgorithm::Direct, 0, direct_width};
  // at most 4 output pixels in all: packing the weights would cost more than the products; the
  // transposed im2col matrix times the weights streams them once
  if (R <= 4 && CKK >= 16) return {ConvAlgorithm::Dot};
  // up to 4 vectors of output pixels in all: the weights read once, where they lie
  if (R <= 4 * t.vector_floats() && CKK >= 16 && g.OC >= 16) return {ConvAlgorithm::NarrowGemm};
  // a large map whose GEMM alone is worth the threads: one image at a time, epilogue in place
  if (pool == 1 && L >= 128 && 2.0 * g.OC * L * CKK >= 1e7) return {ConvAlgorithm::GemmPerImage};
  // small maps at stride 1 with work enough: plain copies for B's panels beat the implicit packing
  // that crosses image rows and the padding
  if (g.unit_stride() && 2.0 * g.OC * CKK * L >= 1e7) return {ConvAlgorithm::Im2colGemm};
  return {ConvAlgorithm::ImplicitGemm};
}

int winograd_tile(const ConvGeometry& g, const ConvTarget& t) {
  const ConvChoice c = choose_conv_algorithm(g, 1, false, t);
  return c.algorithm == ConvAlgorithm::Winograd ? c.tile : 0;
}

void conv_forward(const float* x, const ConvGeometry& g, const float* w, const ConvEpilogue& e, float* out, const PreparedConvWeights& p) {
  const int N = g.N, C = g.C, H = g.H, W = g.W, KH = g.KH, KW = g.KW, SH = g.SH, SW = g.SW, PH = g.PH, PW = g.PW, OH = g.OH, OW = g.OW, OC = g.OC;
  const int64_t L = g.pixels();
  const int CKK = g.taps();
  const ConvTarget t = ConvTarget::now();
  const ConvChoice choice = choose_conv_algorithm(g, e.pool, p.packed && p.packed_width == t.vector_floats(), t);
  switch (choice.algorithm) {
    case ConvAlgorithm::Packed: {
      const int R = static_cast<int>(N * L);
      thread_local std::vector<float> cols, tmpc;
      cols.resize(static_cast<size_t>(CKK) * R);
      tmpc.resize(static_cast<size_t>(OC) * R);
      im2col(x, N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, cols.data(), R);
      sgemm_packed(R, CKK, OC, p.packed, cols.data(), R, tmpc.data());
      conv_epilogue(tmpc.data(), true, N, OC, OH, OW, e.scale, e.shift, e.relu, e.pool, out);
      return;
    }
    case ConvAlgorithm::NarrowCopies:
      conv_narrow(x, g, w, e, out);
      return;
    case ConvAlgorithm::Direct:
      if (choice.width == 16) conv_direct_avx512(x, g, w, e, out);
      else if (choice.width == 8) conv_direct_avx2(x, g, w, e, out);
      else conv_direct_generic(x, g, w, e, out);
      return;
    case ConvAlgorithm::Winograd: {
      const int m = choice.tile;
      const bool ready = p.winograd && p.winograd_tile == m && p.winograd_width == t.vector_floats();
      conv_winograd(m, x, g, w, e, out, ready ? p.winograd : nullptr);
      return;
    }
    case ConvAlgorithm::Dot: {
      const int R = static_cast<int>(N * L), KK = KH * KW;
      const int64_t plane = static_cast<int64_t>(H) * W;
      thread_local std::vector<float> colsT, outT, tmpc;
      colsT.resize(static_cast<size_t>(CKK) * R);
      outT.resize(static_cast<size_t>(OC) * R);
      tmpc.resize(static_cast<size_t>(OC) * R);
      // the im2col matrix already transposed: a row of CKK per output pixel, written in order, each
      // kernel offset's input offset (or -1: padding) from the offset table
      const std::vector<int32_t> table = offset_table(H, W, KH, KW, SH, SW, PH, PW, OH, OW);
      for (int r = 0; r < R; r++) {
        const int n = r / static_cast<int>(L), l = r % static_cast<int>(L);
        const float* img = x + n * C * plane;
        float* o = colsT.data() + static_cast<size_t>(r) * CKK;
        for (int c = 0; c < C; c++, o += KK, img += plane)
          for (int k = 0; k < KK; k++) {
            const int32_t tt = table[static_cast<size_t>(k) * L + l];
            o[k] = tt >= 0 ? img[tt] : 0.f;
          }
      }
      sgemm(false, true, R, OC, CKK, 1.f, colsT.data(), CKK, w, CKK, 0.f, outT.data(), OC);
      for (int r = 0; r < R; r++)
        for (int o = 0; o < OC; o++) tmpc[static_cast<size_t>(o) * R + r] = outT[static_cast<size_t>(r) * OC + o];
      conv_epilogue(tmpc.data(), true, N, OC, OH, OW, e.scale, e.shift, e.relu, e.pool, out);
      return;
    }
    case ConvAlgorithm::NarrowGemm: {
      const int R = static_cast<int>(N * L), vw = vector_floats(), ld = (R + vw - 1) / vw * vw;
      thread_local std::vector<float> cols, tmpc;
      cols.resize(static_cast<size_t>(CKK) * ld);
      tmpc.resize(static_cast<size_t>(OC) * R);
      im2col(x, N, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, cols.data(), ld);
      if (ld > R)
        for (int k = 0; k < CKK; k++) std::fill(cols.begin() + static_cast<int64_t>(k) * ld + R, cols.begin() + static_cast<int64_t>(k + 1) * ld, 0.f);
      sgemm_narrow(OC, R, CKK, w, CKK, cols.data(), ld, tmpc.data(), R);
      conv_epilogue(tmpc.data(), true, N, OC, OH, OW, e.scale, e.shift, e.relu, e.pool, out);
      return;
    }
    case ConvAlgorithm::GemmPerImage: {
      ConvB cb{g, x};
      for (int i = 0; i < N; i++) {
        cb.j0 = i * L;
        float* o = out + static_cast<int64_t>(i) * OC * L;
        sgemm_conv(OC, static_cast<int>(L), CKK, 1.f, w, CKK, cb, 0.f, o, L);
        if (!e.plain()) conv_epilogue(o, false, 1, OC, OH, OW, e.scale, e.shift, e.relu, 1, o);
      }
      return;
    }
    case ConvAlgorithm::Im2colGemm:
    case ConvAlgorithm::ImplicitGemm:
      break;
  }
  // G images side by side (one wide GEMM) into a channel-major buffer of about 4 MB, then the
  // epilogue reorders them into out
  const int64_t POL = e.pool == 2 ? static_cast<int64_t>(OH / 2) * (OW / 2) : L;
  const int G = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(N, (int64_t{1} << 20) / std::max<int64_t>(1, OC * L))));
  thread_local std::vector<float> tmp;
  if (tmp.size() < static_cast<size_t>(OC) * G * L) tmp.resize(static_cast<size_t>(OC) * G * L);
  if (choice.algorithm == ConvAlgorithm::Im2colGemm) {
    // the im2col matrix of at most 16 MB of images, then the plain GEMM
    const int GE = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(G, (int64_t{1} << 22) / (static_cast<int64_t>(CKK) * L))));
    thread_local std::vector<float> cols;
    if (cols.size() < static_cast<size_t>(CKK) * GE * L) cols.resize(static_cast<size_t>(CKK) * GE * L);
    for (int n0 = 0; n0 < N; n0 += GE) {
      const int k = std::min(GE, N - n0);
      im2col(x + static_cast<int64_t>(n0) * C * H * W, k, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, cols.data(), static_cast<int64_t>(k) * L);
      sgemm(false, false, OC, static_cast<int>(k * L), CKK, 1.f, w, CKK, cols.data(), static_cast<int64_t>(k) * L, 0.f, tmp.data(), static_cast<int64_t>(k) * L);
      conv_epilogue(tmp.data(), true, k, OC, OH, OW, e.scale, e.shift, e.relu, e.pool, out + static_cast<int64_t>(n0) * OC * POL);
    }
    return;
  }
  ConvB cb{g, x};
  for (int n0 = 0; n0 < N; n0 += G) {
    const int k = std::min(G, N - n0);
    cb.j0 = static_cast<int64_t>(n0) * L;
    sgemm_conv(OC, static_cast<int>(k * L), CKK, 1.f, w, CKK, cb, 0.f, tmp.data(), k * L);
    conv_epilogue(tmp.data(), true, k, OC, OH, OW, e.scale, e.shift, e.relu, e.pool, out + static_cast<int64_t>(n0) * OC * POL);
  }
}

void maxpool2d(const float* x, int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, float* out, int32_t* argmax) {
  const int64_t planes = static_cast<int64_t>(N) * C;
  auto plane = [&](int64_t nc) {
    const int64_t base = nc * H * W;
    int64_t o = nc * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
      const int h0 = oh * SH - PH, hs = std::max(h0, 0), he = std::min(h0 + KH, H);
      for (int ow = 0; ow < OW; ow++, o++) {
        const int w0 = ow * SW - PW, ws = std::max(w0, 0), we = std::min(w0 + KW, W);
        float best = -std::numeric_limits<float>::infinity();
        int64_t bi = -1;
        for (int h = hs; h < he; h++)
          for (int w = ws; w < we; w++) {
            const int64_t i = base + static_cast<int64_t>(h) * W + w;
            const float v = x[i];
            if (bi < 0 || v > best || (v != v && best == best)) {
              best = v;
              bi = i;
            }
          }
        out[o] = best;
        if (argmax) argmax[o] = static_cast<int32_t>(bi);
      }
    }
  };
  // the common case (2×2 windows, stride 2, no padding, every window inside): two rows at a time,
  // no bounds per window; the same choice of maximum (first of equals, a NaN wins) as the loop above
  auto plane2 = [&](int64_t nc) {
    const float* xp = x + nc * H * W;
    float* op = out + nc * OH * OW;
    int32_t* ap = argmax ? argmax + nc * OH * OW : nullptr;
    const int64_t base = nc * H * W;
    for (int oh = 0; oh < OH; oh++) {
      const float* r0 = xp + static_cast<int64_t>(2 * oh) * W;
      const float* r1 = r0 + W;
      const int32_t i0 = static_cast<int32_t>(base + static_cast<int64_t>(2 * oh) * W);
      if (!ap) {
        for (int ow = 0; ow < OW; ow++) op[oh * OW + ow] = pick_max(pick_max(r0[2 * ow], r0[2 * ow + 1]), pick_max(r1[2 * ow], r1[2 * ow + 1]));
        continue;
      }
      // selects, not branches (which comparisons of activations mispredict), 4 windows at a time in
      // vectors where GCC's vector extensions are there
      int ow = 0;
#if defined(__GNUC__) && !defined(__clang__)
      typedef float v4f __attribute__((vector_size(16)));
      typedef float v4fu __attribute__((vector_size(16), aligned(4)));
      typedef int32_t v4i __attribute__((vector_size(16)));
      const v4i evens = {0, 2, 4, 6}, odds = {1, 3, 5, 7};
      auto wins = [](v4f v, v4f best) { return (v > best) | ((v != v) & (best == best)); };
      auto sel = [](v4i m, v4f a, v4f b) { return reinterpret_cast<v4f>((reinterpret_cast<v4i>(a) & m) | (reinterpret_cast<v4i>(b) & ~m)); };
      for (; ow + 4 <= OW; ow += 4) {
        const int w = 2 * ow;
        const v4f a0 = *reinterpret_cast<const v4fu*>(r0 + w), a1 = *reinterpret_cast<const v4fu*>(r0 + w + 4);
        const v4f b0 = *reinterpret_cast<const v4fu*>(r1 + w), b1 = *reinterpret_cast<const v4fu*>(r1 + w + 4);
        const v4f v0 = __builtin_shuffle(a0, a1, evens), v1 = __builtin_shuffle(a0, a1, odds);
        const v4f v2 = __builtin_shuffle(b0, b1, evens), v3 = __builtin_shuffle(b0, b1, odds);
        const v4i t1 = wins(v1, v0);
        v4f best = sel(t1, v1, v0);
        v4i k = t1 & 1;
        const v4i t2 = wins(v2, best);
        best = sel(t2, v2, best);
        k = (k & ~t2) | (t2 & W);
        const v4i t3 = wins(v3, best);
        best = sel(t3, v3, best);
        k = (k & ~t3) | (t3 & (W + 1));
        const v4i idx = (i0 + w) + evens + k;
        std::memcpy(op + oh * OW + ow, &best, sizeof best);
        std::memcpy(ap + oh * OW + ow, &idx, sizeof idx);
      }
#endif
      for (; ow < OW; ow++) {
        const int w = 2 * ow;
        const float v0 = r0[w], v1 = r0[w + 1], v2 = r1[w], v3 = r1[w + 1];
        // masks of all ones where the later value wins (greater, or a NaN over a number)
        const uint32_t t1 = 0u - static_cast<uint32_t>((v1 > v0) | ((v1 != v1) & (v0 == v0)));
        float best = bit_select(t1, v1, v0);
        uint32_t k = t1 & 1u;
        const uint32_t t2 = 0u - static_cast<uint32_t>((v2 > best) | ((v2 != v2) & (best == best)));
        best = bit_select(t2, v2, best);
        k = (k & ~t2) | (t2 & static_cast<uint32_t>(W));
        const uint32_t t3 = 0u - static_cast<uint32_t>((v3 > best) | ((v3 != v3) & (best == best)));
        best = bit_select(t3, v3, best);
        k = (k & ~t3) | (t3 & static_cast<uint32_t>(W + 1));
        op[oh * OW + ow] = best;
        ap[oh * OW + ow] = i0 + w + static_cast<int32_t>(k);
      }
    }
  };
  const bool fast = KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0 && 2 * OH <= H && 2 * OW <= W;
  if (fast && !argmax && OH == H / 2 && OW == W / 2) {
    // inference: the branch-free 2x2 path of the convolution epilogue (no argmax to keep)
    conv_epilogue(x, false, N, C, H, W, nullptr, nullptr, false, 2, out);
    return;
  }
  const int T = planes * OH * OW > (1 << 15) ? num_threads() : 1;
  parallel_for(T, [&](int t) {
    for (int64_t nc = planes * t / T; nc < planes * (t + 1) / T; nc++) {
      if (fast) plane2(nc);
      else plane(nc);
    }
  }, T);
}

void maxpool2d_backward(const float* gout, const int32_t* argmax, int64_t n, float* gx) {
  // windows may overlap (stride < kernel), so two outputs can add into one input: split the outputs
  // into contiguous ranges whose input indices cannot meet. argmax is ascending by plane, so a range
  // boundary at a plane start is safe when windows stay within their plane; here: split only when the
  // ranges' index intervals do not overlap, else run serially
  const int T = n > (1 << 16) ? num_threads() : 1;
  if (T > 1) {
    std::vector<int64_t> lo(T + 1);
    for (int t = 0; t <= T; t++) lo[t] = n * t / T;
    bool disjoint = true;
    int32_t prev_max = -1;
    for (int t = 0; t < T && disjoint; t++) {
      int32_t mn = INT32_MAX, mx = -1;
      for (int64_t o = lo[t]; o < lo[t + 1]; o++) {
        const int32_t i = argmax[o];
        if (i < 0) continue;
        mn = std::min(mn, i);
        mx = std::max(mx, i);
      }
      if (mx >= 0 && mn <= prev_max) disjoint = false;
      if (mx >= 0) prev_max = mx;
    }
    if (disjoint) {
      parallel_for(T, [&](int t) {
        for (int64_t o = lo[t]; o < lo[t + 1]; o++) {
          const int32_t i = argmax[o];
          if (i >= 0) gx[i] += gout[o];
        }
      }, T);
      return;
    }
  }
  for (int64_t o = 0; o < n; o++) {
    const int32_t i = argmax[o];
    if (i >= 0) gx[i] += gout[o];
  }
}

// The batch norm's per-channel sums, each over 8 independent chains where an image plane has at least
// kChains8 pixels: a single running sum is bound by the add latency (3-4 cycles an element); in float,
// added in double per image plane. Small planes (8x8) keep the single sum, where the chains measured
// slower (docs/performance.md).
namespace {
constexpr int64_t kChains8 = 256;
inline float sum8(const float* p, int64_t n) {
  if (n < kChains8) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += p[i];
    return s;
  }
  return sum_chains8<float>(p, n);
}
// sum of (p[i] - m)^2
inline float sumsq8(const float* p, int64_t n, float m) {
  if (n < kChains8) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
      const float d = p[i] - m;
      s += d * d;
    }
    return s;
  }
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) {
      const float d = p[i + k] - m;
      a[k] += d * d;
    }
  float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  for (; i < n; i++) {
    const float d = p[i] - m;
    s += d * d;
  }
  return s;
}
// g where y > 0, else +0, without a branch: a select written as y > 0 ? g : 0 became a compare
// and a jump, which the signs of the activations mispredict half the time (the fused backward took
// 3x the plain one); the bit mask keeps it a vector AND
inline float keep_if_positive(float g, float y) {
  uint32_t b;
  std::memcpy(&b, &g, 4);
  b &= 0u - static_cast<uint32_t>(y > 0.f);
  float r;
  std::memcpy(&r, &b, 4);
  return r;
}

// a batch norm's per-channel affine map, computed the same way by the forward and by the backward
// that recomputes the fused ReLU's mask from x (the mask of y > 0 bit for bit: y is this value, or 0
// where it is not above 0, a NaN passing through)
struct BnAffine {
  float scale, shift;
  BnAffine(float gamma, float beta, float mean, float invstd) : scale(gamma * invstd), shift(beta - mean * scale) {}
  float operator()(float x) const { return x * scale + shift; }
};

// the gradient a batch norm's backward sees at i: g[i]; with a fused ReLU g[i] where its output is
// above 0, else 0, told by the output y (Y) or by the affine map of x (FromX: y not read)
enum class Mask { None, Y, FromX };
template <Mask K>
inline float masked(const float* g, const float* x, const float* y, const BnAffine& af, int64_t i) {
  return K == Mask::Y ? keep_if_positive(g[i], y[i]) : K == Mask::FromX ? keep_if_positive(g[i], af(x[i])) : g[i];
}

// sum of e[i] and of e[i] * (x[i] - m), e[i] the masked gradient
template <Mask K>
inline void sums_g_gx(const float* g, const float* x, const float* y, const BnAffine& af, int64_t n, float m, float& sg, float& sgx) {
  auto e = [&](int64_t i) { return masked<K>(g, x, y, af, i); };
  if (n < kChains8) {
    float s = 0, t = 0;
    for (int64_t i = 0; i < n; i++) {
      const float gi = e(i);
      s += gi;
      t += gi * (x[i] - m);
    }
    sg = s;
    sgx = t;
    return;
  }
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) {
      const float gi = e(i + k);
      a[k] += gi;
      b[k] += gi * (x[i + k] - m);
    }
  float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  float t = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
  for (; i < n; i++) {
    const float gi = e(i);
    s += gi;
    t += gi * (x[i] - m);
  }
  sg = s;
  sgx = t;
}

// one image's gx of a channel: k * (e - a - (x - m) * is * b) in training, k * e in eval
template <Mask K>
inline void gx_row(const float* g, const float* x, const float* y, const BnAffine& af, int64_t n, bool training, float k, float a, float b, float m, float is, float* gx) {
  if (training)
    for (int64_t i = 0; i < n; i++) gx[i] = k * (masked<K>(g, x, y, af, i) - a - (x[i] - m) * is * b);
  else
    for (int64_t i = 0; i < n; i++) gx[i] = k * masked<K>(g, x, y, af, i);
}

// the channel's two passes for one mask
template <Mask K>
inline void bn_backward_channel(const float* x, const float* g, const float* y, int N, int C, int64_t S, int c, const BnAffine& af, float gamma, float mu, float is, bool training, double M, float* gx, float* ggamma, float* gbeta) {
  double sg = 0, sgx = 0;
  for (int n = 0; n < N; n++) {
    const int64_t base = (static_cast<int64_t>(n) * C + c) * S;
    float a, b;
    sums_g_gx<K>(g + base, x + base, y ? y + base : nullptr, af, S, mu, a, b);
    sg += a;
    sgx += static_cast<double>(b) * is;
  }
  ggamma[c] = static_cast<float>(sgx);
  gbeta[c] = static_cast<float>(sg);
  const float k = gamma * is;
  const float a = static_cast<float>(sg / M), b = static_cast<float>(sgx / M);
  for (int n = 0; n < N; n++) {
    const int64_t base = (static_cast<int64_t>(n) * C + c) * S;
    gx_row<K>(g + base, x + base, y ? y + base : nullptr, af, S, training, k, a, b, mu, is, gx + base);
  }
}
}  // namespace

void batchnorm_forward(const float* x, int N, int C, int64_t S, const float* gamma, const float* beta, float* rmean, float* rvar, bool training, float momentum, float eps, float* y, float* mean, float* invstd, bool relu) {
  const double M = static_cast<double>(N) * S;
  auto channel = [&](int c) {
    double mu, var;
    if (training) {
      double s = 0;
      for (int n = 0; n < N; n++) s += sum8(x + (static_cast<int64_t>(n) * C + c) * S, S);
      mu = s / M;
      double ss = 0;
      for (int n = 0; n < N; n++) ss += sumsq8(x + (static_cast<int64_t>(n) * C + c) * S, S, static_cast<float>(mu));
      var = ss / M;
      rmean[c] = static_cast<float>((1 - momentum) * rmean[c] + momentum * mu);
      rvar[c] = static_cast<float>((1 - momentum) * rvar[c] + momentum * (M > 1 ? ss / (M - 1) : var));
    } else {
      mu = rmean[c];
      var = rvar[c];
    }
    const float is = static_cast<float>(1.0 / std::sqrt(var + eps));
    mean[c] = static_cast<float>(mu);
    invstd[c] = is;
    const BnAffine af(gamma[c], beta[c], mean[c], is);
    for (int n = 0; n < N; n++) {
      const int64_t base = (static_cast<int64_t>(n) * C + c) * S;
      if (relu) {
        for (int64_t i = 0; i < S; i++) {
          const float v = af(x[base + i]);
          y[base + i] = v > 0.f || v != v ? v : 0.f;  // as relu: NaN passes through
        }
      } else {
        for (int64_t i = 0; i < S; i++) y[base + i] = af(x[base + i]);
      }
    }
  };
  const int T = static_cast<double>(N) * C * S > (1 << 15) ? std::min(num_threads(), C) : 1;
  parallel_for(T, [&](int t) {
    for (int c = C * t / T; c < C * (t + 1) / T; c++) channel(c);
  }, T);
}

void batchnorm_backward(const float* x, const float* g, int N, int C, int64_t S, const float* gamma, const float* mean, const float* invstd, bool training, float* gx, float* ggamma, float* gbeta, const float* y, const float* beta) {
  const double M = static_cast<double>(N) * S;
  // with beta, the fused ReLU's mask comes from x: one array fewer read twice (x, g and y of a channel
  // of a large map together pass a core's L2)
  const bool from_x = y && beta;
  auto channel = [&](int c) {
    const float mu = mean[c], is = invstd[c];
    const BnAffine af(gamma[c], from_x ? beta[c] : 0.f, mu, is);
    if (from_x) bn_backward_channel<Mask::FromX>(x, g, nullptr, N, C, S, c, af, gamma[c], mu, is, training, M, gx, ggamma, gbeta);
    else if (y) bn_backward_channel<Mask::Y>(x, g, y, N, C, S, c, af, gamma[c], mu, is, training, M, gx, ggamma, gbeta);
    else bn_backward_channel<Mask::None>(x, g, nullptr, N, C, S, c, af, gamma[c], mu, is, training, M, gx, ggamma, gbeta);
  };
  const int T = static_cast<double>(N) * C * S > (1 << 15) ? std::min(num_threads(), C) : 1;
  parallel_for(T, [&](int t) {
    for (int c = C * t / T; c < C * (t + 1) / T; c++) channel(c);
  }, T);
}

}  // namespace nm
