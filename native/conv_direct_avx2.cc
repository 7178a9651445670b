// The AVX2+FMA instantiations of conv_direct_kernel.h, sigmoid_kernel.h, sgd_kernel.h and winograd_kernel.h (8-float vectors). Built in
// the same unit and under the same conditions as gemm_avx2.cc (-mavx2 -mfma, see binding.gyp), so
// use_avx2_loops() (gemm.h) says when they may run.
#include <cstdint>
#include <cstdlib>
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__)
#define NM_VW 8
#define NM_CD_NAME conv_direct_avx2
#define NM_WG_NAME conv_wgrad_avx2
#include "conv_direct_kernel.h"
#define NM_SIG_NAME sigmoid_avx2
#define NM_BA_NAME bias_act_avx2
#include "sigmoid_kernel.h"
#define NM_SGD_NAME sgd_range_avx2
#include "sgd_kernel.h"
#define NM_WI_NAME wino_in_avx2
#define NM_WO_NAME wino_out_avx2
#define NM_WW_NAME wino_w_avx2
#define NM_WGY_NAME wino_g_avx2
#define NM_WB_NAME wino_wb_avx2
#include "winograd_kernel.h"
#else
namespace nm {
void conv_direct_avx2(const float*, const ConvGeometry&, const float*, const ConvEpilogue&, float*) { abort(); }
void conv_wgrad_avx2(const float*, const ConvGeometry&, const float*, float*) { abort(); }
void sigmoid_avx2(const float*, float*, int64_t) { abort(); }
void bias_act_avx2(float*, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, int) { abort(); }
void sgd_range_avx2(float*, const float*, float*, int64_t, int64_t, double, double, double, bool) { abort(); }
void wino_in_avx2(int, const float*, int64_t, int, float*, int64_t) { abort(); }
void wino_out_avx2(int, const float*, int64_t, int, float*, int64_t) { abort(); }
void wino_w_avx2(int, const float*, int, float*, int64_t) { abort(); }
void wino_g_avx2(int, const float*, int64_t, int, float*, int64_t) { abort(); }
void wino_wb_avx2(int, const float*, int64_t, int, float*) { abort(); }
}  // namespace nm
#endif
