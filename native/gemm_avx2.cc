// The AVX2+FMA instantiation of gemm_kernel.h: 6 x 16 micro-tile (12 ymm accumulators).
#include <cstdint>
#include <cstdlib>
#include "gemm.h"
// Built with -mavx2 -mfma (see binding.gyp); only called where CPUID reports AVX2 and FMA.
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#define NM_VW 8
#define NM_KC 256
#define NM_MR 6
#define NM_NV 2
#define NM_MC_PANELS 16
#define NM_NAME sgemm_avx2
#define NM_PAR_NAME sgemm_avx2_par
#include "gemm_kernel.h"
#define NM_ROWS_NAME srows_avx2
#include "rows_kernel.h"
#define NM_NARROW_NAME snarrow_avx2
#define NM_NARROW_CONV_NAME snarrow_conv_avx2
#include "narrow_kernel.h"
#define NM_PACKED_NAME spacked_avx2
#define NM_PACKED_NB_NAME spacked_nb_avx2
#include "packed_kernel.h"
#define NM_HAVE 1
#else
#define NM_HAVE 0
#endif
namespace nm {
bool have_avx2_kernel() { return NM_HAVE; }
#if !NM_HAVE
void sgemm_avx2(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, const ConvB*) { abort(); }
void sgemm_avx2_par(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, int, const ConvB*) { abort(); }
void srows_avx2(int, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t) { abort(); }
void snarrow_avx2(int, int, int, int, const float*, int64_t, const float*, int64_t, float*, int64_t) { abort(); }
void snarrow_conv_avx2(int, int, int, int, int, int, const float*, const float*, int64_t, int, float*) { abort(); }
void spacked_avx2(int, int, int, int, int, const float*, const float*, int64_t, float*) { abort(); }
int spacked_nb_avx2(int) { abort(); }
#endif
}  // namespace nm
