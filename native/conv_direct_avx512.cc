// The AVX-512 instantiations of conv_direct_kernel.h (16-float vectors), sgd_kernel.h and sigmoid_kernel.h: built with -mavx512f -mfma in
// the same static library as gemm_avx512.cc (see binding.gyp), run only where CPUID reports AVX-512F
// and the output rows are whole 16-float vectors (conv.cc chooses). The forward only: the weight
// gradient in 16-float vectors measured slower (conv.cc, conv_weight_grad).
#include <cstdint>
#include <cstdlib>
#if defined(__x86_64__) && defined(__AVX512F__)
#define NM_VW 16
#define NM_CD_NAME conv_direct_avx512
#include "conv_direct_kernel.h"
#define NM_SGD_NAME sgd_range_avx512
#include "sgd_kernel.h"
#define NM_SIG_NAME sigmoid_avx512
#define NM_BA_NAME bias_act_avx512
#include "sigmoid_kernel.h"
#else
namespace nm {
void conv_direct_avx512(const float*, const ConvGeometry&, const float*, const ConvEpilogue&, float*) { abort(); }
void sgd_range_avx512(float*, const float*, float*, int64_t, int64_t, double, double, double, bool) { abort(); }
void sigmoid_avx512(const float*, float*, int64_t) { abort(); }
void bias_act_avx512(float*, int64_t, int64_t, int64_t, int64_t, int64_t, const float*, int) { abort(); }
}  // namespace nm
#endif
