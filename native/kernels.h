// Declarations of the native kernels other than SGEMM. Shapes in the one-line comments; all arrays
// dense row-major float32; the bindings in addon.cc have checked every length before these run.
#pragma once
#include <cstdint>

#include "conv_types.h"

namespace nm {

/** sum of p[0..n) accumulated in Acc over 8 independent chains (a single running sum is bound by the
 *  add latency, 3-4 cycles an element), the chains added pairwise, then the tail */
template <typename Acc>
inline Acc sum_chains8(const float* p, int64_t n) {
  Acc a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) a[k] += p[i + k];
  Acc s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  for (; i < n; i++) s += p[i];
  return s;
}

// G images x (G,C,H,W) -> cols (C*KH*KW, G*OH*OW), row stride ldc; image i in columns i*OH*OW..
void im2col(const float* x, int G, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, float* cols, int64_t ldc);
// cols (C*KH*KW, G*OH*OW), row stride ldc -> dx (G,C,H,W), +=
void col2im(const float* cols, int64_t ldc, int G, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, float* dx);
// x (N,C,H,W) -> out, argmax (N,C,OH,OW)
void maxpool2d(const float* x, int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, float* out, int32_t* argmax);
// gout, argmax (n) -> gx +=
void maxpool2d_backward(const float* gout, const int32_t* argmax, int64_t n, float* gx);
// x (N,C,S) -> y; see the TypeScript interface for the meaning of each argument
// relu: y = max(y, 0) (a fused ReLU)
void batchnorm_forward(const float* x, int N, int C, int64_t S, const float* gamma, const float* beta, float* rmean, float* rvar, bool training, float momentum, float eps, float* y, float* mean, float* invstd, bool relu);
// y: the output of a fused ReLU forward (g counts only where y > 0), or null
// y: a fused ReLU's output (g counts where y > 0); beta (with y): that mask from x by the forward's
// arithmetic instead (y not read)
void batchnorm_backward(const float* x, const float* g, int N, int C, int64_t S, const float* gamma, const float* mean, const float* invstd, bool training, float* gx, float* ggamma, float* gbeta, const float* y, const float* beta = nullptr);

enum UnaryOp { U_NEG, U_EXP, U_LOG, U_SQRT, U_ABS, U_RELU, U_SIGMOID, U_TANH, U_SQUARE, U_SIGN, U_POWS, U_CLAMP, U_AFFINE, U_BAD };
enum BinaryOp { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAX, B_RELUGRAD, B_SIGMOIDGRAD, B_TANHGRAD, B_CLAMPGRAD, B_GE, B_EQ, B_BAD };
UnaryOp unary_op(const char* name);
BinaryOp binary_op(const char* name);
void unary(UnaryOp op, const float* x, float* out, int64_t n, float p0, float p1);
// y (rows, cols) in place: y + bias (per column, none where null), then act: 0 none, 1 ReLU, 2 sigmoid,
// 3 tanh (see the TypeScript interface, biasActivate)
void bias_activate(float* y, int64_t rows, int64_t cols, const float* bias, int act);
// out (shape) = op(a, b), a and b read through strides over shape (0 on broadcast axes)
void binary(BinaryOp op, const float* a, const int64_t* as, const float* b, const int64_t* bs, float* out, const int64_t* shape, int nd, float p0, float p1);
// one SGD step in place (see the TypeScript interface, sgdUpdate): arithmetic in double, as the
// TypeScript loop, so that both give the same bits; v unused where mu is 0
void sgd_update(float* p, const float* g, float* v, int64_t n, double lr, double mu, double wd, bool nesterov);
// w (OC, C, kk) -> out (C, OC, kk), each kernel's kk taps reversed (a stride-1 input gradient's weights)
void flip_conv_weights(const float* w, int64_t OC, int64_t C, int64_t kk, float* out);
// x (shape) -> out (shape permuted by perm)
void permute(const float* x, const int64_t* shape, const int* perm, int nd, float* out);
// sum (op 0) or max (op 1) of x (shape) into out through outStrides (0 on reduced axes)
void reduce(int op, const float* x, const int64_t* shape, const int64_t* os, int nd, float* out, int64_t outLen);

// convolution epilogue: see the TypeScript interface (convEpilogue); x (C,G,H,W) where channel_major,
// else (G,C,H,W), rows ldx apart (0: W); out (G,C,H/pool,W/pool); scale/shift may be null
void conv_epilogue(const float* x, bool channel_major, int G, int C, int H, int W, const float* scale, const float* shift, bool relu, int pool, float* out, int64_t ldx = 0);

// the epilogue of one plane: rows of src (H, W), ldx apart -> dst (H/pool, W/pool) dense; s, t the
// channel's scale and shift (ident: neither given, values untouched by a plain max-pool); m: W + 1 floats
void epilogue_rows(const float* src, int64_t ldx, int H, int W, float s, float t, bool ident, bool relu, int pool, float* dst, float* m);

// Winograd F(m x m, 3 x 3): the tile size m (2 or 4) conv_forward takes for this convolution on
// target t, or 0 where it does not (not 3x3 at stride 1, or a shape where another algorithm goes
// first): choose_conv_algorithm's answer. t.winograd -1: chosen by shape, 0: never, 1: wherever the
// geometry allows
int winograd_tile(const ConvGeometry& g, const ConvTarget& t);
// Winograd's own rule (winograd.cc), which choose_conv_algorithm applies where the rules before it
// have not taken the convolution: the tile, or 0 where Winograd measured slower
int winograd_forward_tile(const ConvGeometry& g, const ConvTarget& t);
int winograd_mode();
void set_winograd_mode(int mode);
// x (N,C,H,W), w (OC,C,3,3), stride 1, padding <= 2 -> out (N,OC,OH/pool,OW/pool) with the epilogue.
// U: the weights already transformed by winograd_weights for this m at the kernels' vector width now
// (an inference session's copy), or null: transformed here, each call
void conv_winograd(int m, const float* x, const ConvGeometry& g, const float* w, const ConvEpilogue& e, float* out, const float* U = nullptr);
// the weights (OC, C, 3, 3) transformed for conv_winograd's F(m x m, 3 x 3) by the kernels of the
// vector width now (vector_floats()): U of winograd_weights_size(m, OC, C) floats
int64_t winograd_weights_size(int m, int OC, int C);
void winograd_weights(int m, const float* w, int OC, int C, float* U);

// the weight gradient of that convolution by the same transforms: gw (OC,C,3,3) written (not
// accumulated) from x and the output gradient gy (N,OC,OH,OW); winograd_wgrad_tile as winograd_tile
int winograd_wgrad_tile(const ConvGeometry& g, const ConvTarget& t);
void conv_winograd_wgrad(int m, const float* x, const ConvGeometry& g, const float* gy, float* gw);

// the rules choose_conv_algorithm (conv_types.h) applies: the direct convolution in 16-float vectors
// for rows of OW pixels; the narrow kernel on kernel-column copies; the direct kernel's channel
// blocks split for fewer images than threads; packed weights for at most 16 pixels in all
bool direct_forward_avx512(int OW, const ConvTarget& t);
bool narrow_conv_takes(const ConvGeometry& g, const ConvTarget& t);
bool direct_one_image_takes(const ConvGeometry& g, const ConvTarget& t);
bool packed_conv_takes(const ConvGeometry& g);

// convolution forward + epilogue: x (N,C,H,W), w (OC, C*KH*KW) -> out (N,OC,OH/pool,OW/pool) by the
// algorithm choose_conv_algorithm gives for the target now; p: weights prepared ahead, or none
void conv_forward(const float* x, const ConvGeometry& g, const float* w, const ConvEpilogue& e, float* out, const PreparedConvWeights& p = {});

// the weight gradient of a stride-1 convolution, gw (OC, C, KH, KW) written (not accumulated), from
// x (N,C,H,W) and the output gradient gy (N,OC,OH,OW), directly (conv_direct_kernel.h); only where
// conv_weight_grad_direct says so (stride 1, KW <= 6, output rows of whole vectors, maps large enough)
bool conv_weight_grad_direct(const ConvGeometry& g, const ConvTarget& t);
void conv_weight_grad(const float* x, const ConvGeometry& g, const float* gy, float* gw);

// out (n,m) = squared Euclidean distances between rows of X (n,d) and Y (m,d)
void pairwise_sqdist(const float* X, int n, const float* Y, int m, int d, float* out);
// one Lloyd step: assign each row of X (n,d) to its nearest row of Cen (k,d); newC (k,d) = member means
// (rows of empty clusters left as in Cen), counts (k); returns the inertia (sum of squared distances)
double kmeans_step(const float* X, int n, int d, const float* Cen, int k, int32_t* assign, float* newC, int32_t* counts);

}  // namespace nm
