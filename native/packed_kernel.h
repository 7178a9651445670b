// A convolution's product on few pixels (batch 1 on a small map) with its weights laid out once, ahead
// of the calls (an inference session packs them): Wp holds blocks of NM_VW output channels, each block
// (K, NM_VW) with the channels of a tap side by side, the last block zero-padded. One vector of weights
// read from one contiguous stream times each pixel's im2col value broadcast: P pixels x NB blocks of
// accumulators. Where the weights lie as (OC, K) rows, the narrow kernel broadcasts each weight from
// one of 8 rows at once; at VGG-16's 4x4 maps this layout measured 1.4-1.6x faster with the weights
// coming from L3 (one thread, 128 channels of 256 -> 256: 55 against 85 us). Included by one
// translation unit per instruction set with NM_VW and NM_PACKED_NAME defined.
#include <cstdint>
#include <cstring>

namespace nm {

namespace {

// accumulators a tile may hold: 16 of the 32 zmm registers on AVX-512; 12 of 16 elsewhere (the
// weight vectors and the broadcast need the rest)
constexpr int PACKED_ACC = NM_VW == 16 ? 16 : 12;

// blocks [b, b + NB) times pixels [p0, p0 + P) of X (K rows, ldx apart) into Ct (channel-major,
// rows of R floats; only the OC real channels written)
template <int P, int NB>
inline void packed_tile(int b, int p0, int R, int K, int OC, const float* Wp, const float* X, int64_t ldx, float* Ct) {
  typedef float vf __attribute__((vector_size(NM_VW * 4)));
  vf acc[P][NB];
  for (int p = 0; p < P; p++)
    for (int j = 0; j < NB; j++) acc[p][j] = vf{};
  const float* w[NB];
  for (int j = 0; j < NB; j++) w[j] = Wp + static_cast<int64_t>(b + j) * K * NM_VW;
  const float* x = X + p0;
  for (int k = 0; k < K; k++, x += ldx) {
    vf wv[NB];
    for (int j = 0; j < NB; j++) {
      std::memcpy(&wv[j], w[j] + static_cast<int64_t>(k) * NM_VW, sizeof(vf));
      if ((k & 3) == 0) __builtin_prefetch(w[j] + static_cast<int64_t>(k + 16) * NM_VW);
    }
#pragma GCC unroll 16
    for (int p = 0; p < P; p++) {
      const vf s = x[p] - vf{};  // a broadcast (x - 0 is x, where 0 + x is not for x = -0)
      for (int j = 0; j < NB; j++) acc[p][j] += s * wv[j];
    }
  }
  for (int j = 0; j < NB; j++) {
    float t[P][NM_VW];
    for (int p = 0; p < P; p++) std::memcpy(t[p], &acc[p][j], sizeof(vf));
    const int c0 = (b + j) * NM_VW;
    for (int l = 0; l < NM_VW && c0 + l < OC; l++) {
      float* o = Ct + static_cast<int64_t>(c0 + l) * R + p0;
      for (int p = 0; p < P; p++) o[p] = t[p][l];
    }
  }
}

// all pixels of blocks [b, b + NB): tiles of P (at most 8), then the rest in one smaller tile
template <int P, int NB>
inline void packed_blocks(int b, int R, int K, int OC, const float* Wp, const float* X, int64_t ldx, float* Ct) {
  int p = 0;
  for (; p + P <= R; p += P) packed_tile<P, NB>(b, p, R, K, OC, Wp, X, ldx, Ct);
  if (p < R) {
    switch (R - p) {
#define NM_REST(n) \
  case n: if constexpr (n < P) packed_tile<n, NB>(b, p, R, K, OC, Wp, X, ldx, Ct); break;
      NM_REST(1) NM_REST(2) NM_REST(3) NM_REST(4) NM_REST(5) NM_REST(6) NM_REST(7)
#undef NM_REST
      default: break;
    }
  }
}

// blocks [b0, b1) for R pixels: P x NB accumulators, NB blocks at a time while they last
template <int P, int NB>
inline void packed_range(int b0, int b1, int R, int K, int OC, const float* Wp, const float* X, int64_t ldx, float* Ct) {
  int b = b0;
  for (; b + NB <= b1; b += NB) packed_blocks<P, NB>(b, R, K, OC, Wp, X, ldx, Ct);
  for (; b < b1; b++) packed_blocks<P, 1>(b, R, K, OC, Wp, X, ldx, Ct);
}

}  // namespace

// P pixels x NB blocks for R pixels: 8 x 2 on AVX-512 (VGG-16's 4x4 layers at batch 1, 256 -> 256
// channels: 0.80x the time of 16 x 1 and of 4 x 4, whose loads per product are more, or whose weight
// streams are 4), 6 x 2 elsewhere; under that many pixels 4 x 4 (4 x 3)
constexpr int PACKED_P = NM_VW == 16 ? 8 : 6;

// the number of blocks a tile takes together for R pixels (callers split blocks between threads in
// multiples of it)
int NM_PACKED_NB_NAME(int R) {
  return R >= PACKED_P ? PACKED_ACC / PACKED_P : PACKED_ACC / 4;
}

void NM_PACKED_NAME(int b0, int b1, int R, int K, int OC, const float* Wp, const float* X, int64_t ldx, float* Ct) {
  // (fewer than 4 pixels: all of them in the smaller tile packed_blocks makes for the rest)
  if (R >= PACKED_P) packed_range<PACKED_P, PACKED_ACC / PACKED_P>(b0, b1, R, K, OC, Wp, X, ldx, Ct);
  else packed_range<4, PACKED_ACC / 4>(b0, b1, R, K, OC, Wp, X, ldx, Ct);
}

}  // namespace nm
