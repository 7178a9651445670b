// SGEMM entry points (row-major). Shapes: C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C.
#pragma once
#include <cstdint>

namespace nm {

enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

/** the micro-kernel in use: the best the CPU and the build have, capped by NEURONMERGE_SIMD */
Isa gemm_isa();
const char* isa_name(Isa isa);
/** force a micro-kernel (tests); returns false where the CPU or the build lacks it */
bool set_gemm_isa(Isa isa);

/** parallel SGEMM on the pool (threads = 0: all); beta = 0 never reads C */
void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads = 0);

}  // namespace nm
