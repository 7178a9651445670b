// The portable instantiation of gemm_kernel.h: 4-float vectors (SSE2 on x86-64, NEON on arm64),
// 6 x 8 micro-tile. Runs on any CPU.
#define NM_VW 4
#define NM_MR 6
#define NM_NV 2
#define NM_MC_PANELS 24
#define NM_NAME sgemm_generic
#define NM_PAR_NAME sgemm_generic_par
#include "gemm_kernel.h"
#define NM_ROWS_NAME srows_generic
#include "rows_kernel.h"
#define NM_NARROW_NAME snarrow_generic
#define NM_NARROW_CONV_NAME snarrow_conv_generic
#include "narrow_kernel.h"
#define NM_PACKED_NAME spacked_generic
#define NM_PACKED_NB_NAME spacked_nb_generic
#include "packed_kernel.h"
