// The AVX-512 instantiations of gemm_kernel.h (12 x 32 micro-tile, 24 zmm accumulators), rows_kernel.h
// and winograd_kernel.h.
#include <cstdint>
#include <cstdlib>
#include "gemm.h"
// Built with -mavx512f -mfma (see binding.gyp); only called where CPUID reports AVX-512F.
#if defined(__x86_64__) && defined(__AVX512F__)
#define NM_VW 16
#define NM_MR 12
#define NM_NV 2
// K blocks of up to 512 (256 elsewhere): against OpenBLAS 0.3.21 on a Zen 5, 2048^3 at 1 thread
// 0.82-0.91x -> 0.96x, at 2 threads 0.89-0.93x -> 0.95-0.98x; 1024^3 0.97-0.99x / 0.99-1.14x; training
// steps of VGG-16, LeNet-5 and the DBN the same within the noise
#define NM_KC 512
#define NM_MC_PANELS 16
#define NM_NAME sgemm_avx512
#define NM_PAR_NAME sgemm_avx512_par
#include "gemm_kernel.h"
#define NM_ROWS_NAME srows_avx512
#include "rows_kernel.h"
#define NM_NARROW_NAME snarrow_avx512
#define NM_NARROW_CONV_NAME snarrow_conv_avx512
#include "narrow_kernel.h"
#define NM_PACKED_NAME spacked_avx512
#define NM_PACKED_NB_NAME spacked_nb_avx512
#include "packed_kernel.h"
#define NM_WI_NAME wino_in_avx512
#define NM_WO_NAME wino_out_avx512
#define NM_WW_NAME wino_w_avx512
#define NM_WGY_NAME wino_g_avx512
#define NM_WB_NAME wino_wb_avx512
#include "winograd_kernel.h"
#define NM_HAVE 1
#else
#define NM_HAVE 0
#endif
namespace nm {
bool have_avx512_kernel() { return NM_HAVE; }
#if !NM_HAVE
void sgemm_avx512(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, const ConvB*) { abort(); }
void sgemm_avx512_par(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, int, const ConvB*) { abort(); }
void srows_avx512(int, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t) { abort(); }
void snarrow_avx512(int, int, int, int, const float*, int64_t, const float*, int64_t, float*, int64_t) { abort(); }
void snarrow_conv_avx512(int, int, int, int, int, int, const float*, const float*, int64_t, int, float*) { abort(); }
void spacked_avx512(int, int, int, int, int, const float*, const float*, int64_t, float*) { abort(); }
int spacked_nb_avx512(int) { abort(); }
void wino_in_avx512(int, const float*, int64_t, int, float*, int64_t) { abort(); }
void wino_out_avx512(int, const float*, int64_t, int, float*, int64_t) { abort(); }
void wino_w_avx512(int, const float*, int, float*, int64_t) { abort(); }
void wino_g_avx512(int, const float*, int64_t, int, float*, int64_t) { abort(); }
void wino_wb_avx512(int, const float*, int64_t, int, float*) { abort(); }
#endif
}  // namespace nm
