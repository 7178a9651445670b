// SGEMM entry points (row-major). Shapes: C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C.
#pragma once
#include <cstdint>

#include "conv_types.h"

namespace nm {

enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

/** the micro-kernel in use: the best the CPU and the build have, capped by NEURONMERGE_SIMD */
Isa gemm_isa();
const char* isa_name(Isa isa);
/** force a micro-kernel (tests); returns false where the CPU or the build lacks it */
bool set_gemm_isa(Isa isa);
/** whether the AVX2+FMA builds of the other vector loops (direct convolution, sigmoid) may run: the
 *  micro-kernel in use is AVX2 or AVX-512 (CPUs with AVX-512 have AVX2) and the AVX2 unit was built */
bool use_avx2_loops();
/** whether the AVX2+FMA unit was built (the compiler took -mavx2 -mfma) */
bool have_avx2_kernel();

/** parallel SGEMM on the pool (threads = 0: all); beta = 0 never reads C */
void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads = 0);

/**
 * B of a convolution's forward GEMM, never stored: the im2col matrix of G images x (G,C,H,W), row
 * p = (c, kh, kw) of C*KH*KW, column j = (image, oh, ow) of G*OH*OW, read straight from x while the
 * GEMM packs its panels (implicit im2col). p0 and j0 shift the origin (a sub-block of the matrix).
 */
struct ConvB : ConvGeometry {
  const float* x;
  int p0 = 0;
  int64_t j0 = 0;
};

/** C (M, N) = alpha * A (M, K) * B + beta * C with B the implicit im2col matrix cb (K = C*KH*KW) */
void sgemm_conv(int M, int N, int K, float alpha, const float* A, int64_t lda, const ConvB& cb, float beta, float* C, int64_t ldc, int threads = 0);

/**
 * w (OC, K) rows -> Wp: ceil(OC / vw) blocks of (K, vw), the block's vw output channels side by side
 * for each k, zeros past OC. vw: the vector width of the kernels that will read it (vector_floats()).
 */
void pack_weights(const float* w, int OC, int K, int vw, float* Wp);

/**
 * Ct (OC, R), rows R apart, = W (OC, K) * X (K, R) with W packed by pack_weights at vector_floats()
 * (packed_kernel.h); X's rows ldx apart. Threads split the channel blocks.
 */
void sgemm_packed(int R, int K, int OC, const float* Wp, const float* X, int64_t ldx, float* Ct);

/** the widest B sgemm_narrow takes: 4 vectors of the micro-kernel in use (64 floats on AVX-512) */
int narrow_max_n();

/**
 * C (M, N) = A (M, K) * B (K, N) for N <= narrow_max_n(), A read in place (no packing; threads split
 * its rows). B's rows must be readable to the next whole vector: ldb >= N rounded up to the vector
 * width (what is past N is read, never used).
 */
void sgemm_narrow(int M, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc);

/** the rows of one tile of the narrow kernel for N columns (its split between threads), of
 *  sgemm_narrow or (copies) of narrow_conv_rows */
int narrow_tile_rows(int N, bool copies = false);

/**
 * Rows [m0, m1) of a stride-1 convolution of one image by the narrow kernel, into Cm (m1 - m0 rows of
 * L = OH * OW floats): A (OC, C * KH * KW) the weights, S the image's kernel-column copies (S + (c * KW
 * + kw) * SP: the zero-padded input's rows ih - PH = -PH .. OH + KH - 2 - PH, columns shifted by kw,
 * OW floats each), readable to a whole vector past its last plane's L floats; L <= narrow_max_n()
 */
void narrow_conv_rows(int m0, int m1, int L, int C, int KH, int KW, const float* A, const float* S, int64_t SP, int OW, float* Cm);

/** the vector width in floats of the micro-kernel in use (16, 8 or 4) */
int vector_floats();

}  // namespace nm
