// The portable instantiations of conv_direct_kernel.h, sigmoid_kernel.h, sgd_kernel.h and winograd_kernel.h: 4-float vectors (SSE2 on x86-64, NEON on arm64).
#define NM_VW 4
#define NM_CD_NAME conv_direct_generic
#define NM_WG_NAME conv_wgrad_generic
#include "conv_direct_kernel.h"
#define NM_SIG_NAME sigmoid_generic
#define NM_BA_NAME bias_act_generic
#include "sigmoid_kernel.h"
#define NM_SGD_NAME sgd_range_generic
#include "sgd_kernel.h"
#define NM_WI_NAME wino_in_generic
#define NM_WO_NAME wino_out_generic
#define NM_WW_NAME wino_w_generic
#define NM_WGY_NAME wino_g_generic
#define NM_WB_NAME wino_wb_generic
#include "winograd_kernel.h"
