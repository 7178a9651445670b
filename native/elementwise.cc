// Elementwise and reduction loops (the same semantics as src/backend/js.ts), split across the pool
// when large.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bf16.h"
#include "gemm.h"
#include "kernels.h"
#include "threadpool.h"

namespace nm {

void sigmoid_avx512(const float* x, float* out, int64_t n);
void sigmoid_avx2(const float* x, float* out, int64_t n);
void bias_act_avx512(float* y, int64_t ld, int64_t r0, int64_t r1, int64_t c0, int64_t c1, const float* bias, int act);
void bias_act_avx2(float* y, int64_t ld, int64_t r0, int64_t r1, int64_t c0, int64_t c1, const float* bias, int act);
void bias_act_generic(float* y, int64_t ld, int64_t r0, int64_t r1, int64_t c0, int64_t c1, const float* bias, int act);
void sigmoid_generic(const float* x, float* out, int64_t n);
void sgd_range_avx512(float* p, const float* g, float* v, int64_t s, int64_t e, double lr, double mu, double wd, bool nesterov);
void sgd_range_avx2(float* p, const float* g, float* v, int64_t s, int64_t e, double lr, double mu, double wd, bool nesterov);
void sgd_range_generic(float* p, const float* g, float* v, int64_t s, int64_t e, double lr, double mu, double wd, bool nesterov);

UnaryOp unary_op(const char* s) {
  static const char* names[] = {"neg", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh", "square", "sign", "powScalar", "clamp", "affine"};
  for (int i = 0; i < U_BAD; i++)
    if (!std::strcmp(s, names[i])) return static_cast<UnaryOp>(i);
  return U_BAD;
}

BinaryOp binary_op(const char* s) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "reluGrad", "sigmoidGrad", "tanhGrad", "clampGrad", "geMask", "eqMask"};
  for (int i = 0; i < B_BAD; i++)
    if (!std::strcmp(s, names[i])) return static_cast<BinaryOp>(i);
  return B_BAD;
}

namespace {

// elements from which the threads share a loop: memory-bound loops from 64K, the sigmoid's polynomial
// and tanh's libm call from 8K (a DBN layer of 500 at batch 16)
constexpr int64_t SHARE_LIGHT = int64_t{1} << 16, SHARE_HEAVY = int64_t{1} << 13;

// from `least` elements the threads share the range
template <typename F>
void chunked(int64_t n, F f, int64_t least = SHARE_LIGHT) {
  const int T = n > least ? num_threads() : 1;
  parallel_for(T, [&](int t) { f(n * t / T, n * (t + 1) / T); }, T);
}

void unary_range(UnaryOp op, const float* x, float* out, int64_t s, int64_t e, float p0, float p1) {
  switch (op) {
    case U_NEG: for (int64_t i = s; i < e; i++) out[i] = -x[i]; break;
    case U_EXP: for (int64_t i = s; i < e; i++) out[i] = std::exp(x[i]); break;
    case U_LOG: for (int64_t i = s; i < e; i++) out[i] = std::log(x[i]); break;
    case U_SQRT: for (int64_t i = s; i < e; i++) out[i] = std::sqrt(x[i]); break;
    case U_ABS: for (int64_t i = s; i < e; i++) out[i] = std::fabs(x[i]); break;
    case U_RELU: for (int64_t i = s; i < e; i++) out[i] = x[i] > 0.f || x[i] != x[i] ? x[i] : 0.f; break;  // NaN passes through
    case U_SIGMOID:
      // vectors (sigmoid_kernel.h); in place is fine (each vector is read before it is written)
      if (gemm_isa() == Isa::Avx512) sigmoid_avx512(x + s, out + s, e - s);
      else if (use_avx2_loops()) sigmoid_avx2(x + s, out + s, e - s);
      else sigmoid_generic(x + s, out + s, e - s);
      break;
    case U_TANH: for (int64_t i = s; i < e; i++) out[i] = std::tanh(x[i]); break;
    case U_SQUARE: for (int64_t i = s; i < e; i++) out[i] = x[i] * x[i]; break;
    case U_SIGN: for (int64_t i = s; i < e; i++) out[i] = x[i] > 0 ? 1.f : x[i] < 0 ? -1.f : x[i]; break;
    case U_POWS:
      if (p0 == 2.f) for (int64_t i = s; i < e; i++) out[i] = x[i] * x[i];
      else for (int64_t i = s; i < e; i++) out[i] = std::pow(x[i], p0);
      break;
    case U_CLAMP: for (int64_t i = s; i < e; i++) { const float v = x[i]; out[i] = v < p0 ? p0 : v > p1 ? p1 : v; } break;
    case U_AFFINE: for (int64_t i = s; i < e; i++) out[i] = x[i] * p0 + p1; break;
    default: break;
  }
}

// out[j] = f(a[j*sa], b[j*sb]) for j < n; unit and zero strides get their own loops, which the
// compiler vectorizes (a run-time stride kept the same-shape case scalar: relu's backward on
// 128x64x32x32 took 4x the time of the forward). No restrict: out may be a (in place); the
// compiler checks for overlap at run time
template <typename F>
inline void row_loop(const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n, F f) {
  if (sa == 1 && sb == 1) {
    for (int64_t j = 0; j < n; j++) out[j] = f(a[j], b[j]);
  } else if (sa == 1 && sb == 0) {
    const float y = *b;
    for (int64_t j = 0; j < n; j++) out[j] = f(a[j], y);
  } else if (sa == 0 && sb == 1) {
    const float x = *a;
    for (int64_t j = 0; j < n; j++) out[j] = f(x, b[j]);
  } else {
    for (int64_t j = 0; j < n; j++) out[j] = f(a[j * sa], b[j * sb]);
  }
}

inline void binary_row(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* out, int64_t n, float p0, float p1) {
#define NM_LOOP(expr) row_loop(a, sa, b, sb, out, n, [=](float x, float y) { (void)x; (void)y; return (expr); }); break;
  switch (op) {
    case B_ADD: NM_LOOP(x + y)
    case B_SUB: NM_LOOP(x - y)
    case B_MUL: NM_LOOP(x * y)
    case B_DIV: NM_LOOP(x / y)
    case B_POW: NM_LOOP(std::pow(x, y))
    case B_MAX: NM_LOOP(x != x || y != y ? NAN : x >= y ? x : y)
    case B_RELUGRAD: NM_LOOP(y > 0.f ? x : 0.f)
    case B_SIGMOIDGRAD: NM_LOOP(x * y * (1.f - y))
    case B_TANHGRAD: NM_LOOP(x * (1.f - y * y))
    case B_CLAMPGRAD: NM_LOOP(y >= p0 && y <= p1 ? x : 0.f)
    case B_GE: NM_LOOP(x >= y ? 1.f : 0.f)
    case B_EQ: NM_LOOP(x == y ? 1.f : 0.f)
    default: break;
  }
#undef NM_LOOP
}

}  // namespace

void unary(UnaryOp op, const float* x, float* out, int64_t n, float p0, float p1) {
  chunked(n, [&](int64_t s, int64_t e) { unary_range(op, x, out, s, e, p0, p1); }, op == U_SIGMOID || op == U_TANH ? SHARE_HEAVY : SHARE_LIGHT);
}

void binary(BinaryOp op, const float* a, const int64_t* as, const float* b, const int64_t* bs, float* out, const int64_t* shape, int nd, float p0, float p1) {
  int64_t total = 1;
  for (int d = 0; d < nd; d++) total *= shape[d];
  if (total == 0) return;
  // merge each axis into the next one where both operands step over it as over one longer axis
  // (a dense same-shape pair becomes one row; a per-channel operand (C,1,1) against (N,C,H,W)
  // becomes rows of H*W), and drop axes of length 1 (no axis left: one element, a scalar included)
  std::vector<int64_t> sh, sa, sb;
  for (int d = 0; d < nd; d++) {
    if (shape[d] == 1) continue;
    if (!sh.empty() && sa.back() == as[d] * shape[d] && sb.back() == bs[d] * shape[d]) {
      sh.back() *= shape[d];
      sa.back() = as[d];
      sb.back() = bs[d];
    } else {
      sh.push_back(shape[d]);
      sa.push_back(as[d]);
      sb.push_back(bs[d]);
    }
  }
  if (sh.empty()) {
    binary_row(op, a, 0, b, 0, out, 1, p0, p1);
    return;
  }
  if (sh.size() == 1) {
    // one row: split it across the threads
    const int64_t s0 = sa[0], s1 = sb[0];
    chunked(total, [&](int64_t s, int64_t e) { binary_row(op, a + s * s0, s0, b + s * s1, s1, out + s, e - s, p0, p1); });
    return;
  }
  nd = static_cast<int>(sh.size());
  shape = sh.data();
  as = sa.data();
  bs = sb.data();
  const int64_t last = shape[nd - 1];
  const int64_t rows = total / last;
  // rows are independent: split them across threads, each walking its own counters
  const int T = total > (1 << 16) && rows > 1 ? num_threads() : 1;
  parallel_for(T, [&](int t) {
    const int64_t r0 = rows * t / T, r1 = rows * (t + 1) / T;
    std::vector<int64_t> idx(nd, 0);
    int64_t ao = 0, bo = 0, rem = r0;
    for (int d = nd - 2; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      ao += idx[d] * as[d];
      bo += idx[d] * bs[d];
    }
    for (int64_t r = r0; r < r1; r++) {
      binary_row(op, a + ao, as[nd - 1], b + bo, bs[nd - 1], out + r * last, last, p0, p1);
      for (int d = nd - 2; d >= 0; d--) {
        ao += as[d];
        bo += bs[d];
        if (++idx[d] < shape[d]) break;
        ao -= as[d] * shape[d];
        bo -= bs[d] * shape[d];
        idx[d] = 0;
      }
    }
  }, T);
}

void bias_activate(float* y, int64_t rows, int64_t cols, const float* bias, int act) {
  if (rows <= 0 || cols <= 0) return;
  auto f = gemm_isa() == Isa::Avx512 ? bias_act_avx512 : use_avx2_loops() ? bias_act_avx2 : bias_act_generic;
  const int64_t total = rows * cols;
  const int T = inside_parallel() || total < (act >= 2 ? SHARE_HEAVY : SHARE_LIGHT) ? 1 : num_threads();
  if (T <= 1) {
    f(y, cols, 0, rows, 0, cols, bias, act);
    return;
  }
  // rows between the threads; one row (batch 1): its columns, in whole vectors
  const int vw = vector_floats();
  parallel_for(T, [&](int t) {
    if (rows >= T) f(y, cols, rows * t / T, rows * (t + 1) / T, 0, cols, bias, act);
    else f(y, cols, 0, rows, std::min(cols, cols * t / T / vw * vw), t == T - 1 ? cols : std::min(cols, cols * (t + 1) / T / vw * vw), bias, act);
  }, T);
}

void sgd_update(float* p, const float* g, float* v, int64_t n, double lr, double mu, double wd, bool nesterov) {
  // sgd_kernel.h, built for each instruction set
  auto f = gemm_isa() == Isa::Avx512 ? sgd_range_avx512 : use_avx2_loops() ? sgd_range_avx2 : sgd_range_generic;
  chunked(n, [&](int64_t s, int64_t e) { f(p, g, v, s, e, lr, mu, wd, nesterov); });
}

void flip_conv_weights(const float* w, int64_t OC, int64_t C, int64_t kk, float* out) {
  // in the destination's order, the output's rows (input channels) shared among the threads
  chunked(OC * C * kk, [&](int64_t s, int64_t e) {
    const int64_t c0 = s / (OC * kk), c1 = e / (OC * kk);
    for (int64_t c = c0; c < c1; c++) {
      float* __restrict dst = out + c * OC * kk;
      for (int64_t o = 0; o < OC; o++, dst += kk) {
        const float* __restrict src = w + (o * C + c) * kk + kk - 1;
        for (int64_t q = 0; q < kk; q++) dst[q] = src[-q];
      }
    }
  });
}

void permute(const float* x, const int64_t* shape, const int* perm, int nd, float* out) {
  if (nd == 0) {
    out[0] = x[0];
    return;
  }
  std::vector<int64_t> xs(nd), oshape(nd), ostr(nd);
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; d--) {
    xs[d] = s;
    s *= shape[d];
  }
  const int64_t total = s;
  if (total == 0) return;
  for (int d = 0; d < nd; d++) {
    oshape[d] = shape[perm[d]];
    ostr[d] = xs[perm[d]];
  }
  const int64_t last = oshape[nd - 1], sl = ostr[nd - 1], rows = total / last;
  const int T = total > (1 << 16) && rows > 1 ? num_threads() : 1;
  parallel_for(T, [&](int t) {
    const int64_t r0 = rows * t / T, r1 = rows * (t + 1) / T;
    std::vector<int64_t> idx(nd, 0);
    int64_t xi = 0, rem = r0;
    for (int d = nd - 2; d >= 0; d--) {
      idx[d] = rem % oshape[d];
      rem /= oshape[d];
      xi += idx[d] * ostr[d];
    }
    for (int64_t r = r0; r < r1; r++) {
      float* o = out + r * last;
      const float* p = x + xi;
      if (sl == 1) std::memcpy(o, p, sizeof(float) * last);
      else for (int64_t j = 0; j < last; j++) o[j] = p[j * sl];
      for (int d = nd - 2; d >= 0; d--) {
        xi += ostr[d];
        if (++idx[d] < oshape[d]) break;
        xi -= ostr[d] * oshape[d];
        idx[d] = 0;
      }
    }
  }, T);
}

void reduce(int op, const float* x, const int64_t* shape, const int64_t* os, int nd, float* out, int64_t outLen) {
  const float init = op == 0 ? 0.f : -INFINITY;
  for (int64_t i = 0; i < outLen; i++) out[i] = init;
  if (nd == 0) {
    out[0] = x[0];
    return;
  }
  int64_t total = 1;
  for (int d = 0; d < nd; d++) total *= shape[d];
  if (total == 0) return;
  const int64_t last = shape[nd - 1], rows = total / last, sl = os[nd - 1];
  // a sum along the last axis (a bias gradient: (N, C, L) summed over N and L): each row's sum in
  // double over 8 independent chains (one chain was bound by the add latency, 4 cycles an element:
  // 9 ms for 128x64x1024), the rows on the threads, then added to their outputs in row order
  std::vector<float> rowSum;
  if (op == 0 && sl == 0 && total >= (int64_t{1} << 16)) {
    rowSum.resize(rows);
    const int T = rows > 1 ? num_threads() : 1;
    parallel_for(T, [&](int t) {
      const int64_t r0 = rows * t / T, r1 = rows * (t + 1) / T;
      for (int64_t r = r0; r < r1; r++) rowSum[r] = static_cast<float>(sum_chains8<double>(x + r * last, last));
    }, T);
  }
  std::vector<int64_t> idx(nd, 0);
  int64_t o = 0;
  const float* p = x;
  for (int64_t r = 0; r < rows; r++, p += last) {
    if (op == 0) {
      if (sl == 0 && !rowSum.empty()) {
        out[o] += rowSum[r];
      } else if (sl == 0) {
        double acc = 0;
        for (int64_t j = 0; j < last; j++) acc += p[j];
        out[o] += static_cast<float>(acc);
      } else {
        for (int64_t j = 0; j < last; j++) out[o + j * sl] += p[j];
      }
    } else {
      for (int64_t j = 0; j < last; j++) {
        const float v = p[j];
        float& q = out[o + j * sl];
        if (q == q && !(v <= q)) q = v;  // a NaN takes the place and keeps it
      }
    }
    for (int d = nd - 2; d >= 0; d--) {
      o += os[d];
      if (++idx[d] < shape[d]) break;
      o -= os[d] * shape[d];
      idx[d] = 0;
    }
  }
}

}  // namespace nm

namespace nm {
void round_bf16(const float* x, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = bf16_round(x[i]);
}
}  // namespace nm
