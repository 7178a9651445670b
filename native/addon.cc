// The N-API bindings: thin, checked, zero-copy over Float32Array. Every entry checks its arguments'
// types, sizes, offsets and strides against the arrays' lengths and throws a JavaScript error naming
// the function and the argument; nothing reads or writes out of bounds, whatever it is passed.
#include <napi.h>

#include <cmath>
#include <csignal>
#include <ctime>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstdint>
#include <string>
#include <vector>

#include "bf16.h"
#include "gemm.h"
#include "kernels.h"
#include "threadpool.h"

namespace {

constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;

[[noreturn]] void fail(Napi::Env env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }
[[noreturn]] void type_fail(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

struct Args {
  const Napi::CallbackInfo& info;
  const char* fn;
  Napi::Env env() const { return info.Env(); }

  void count(size_t n) const {
    if (info.Length() != n) type_fail(env(), std::string(fn) + ": expected " + std::to_string(n) + " arguments, got " + std::to_string(info.Length()));
  }

  Napi::TypedArray typed(size_t i, const char* name, napi_typedarray_type t, const char* tname) const {
    if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != t)
      type_fail(env(), std::string(fn) + ": " + name + " must be a " + tname);
    return info[i].As<Napi::TypedArray>();
  }

  float* f32(size_t i, const char* name, int64_t* len) const {
    auto a = typed(i, name, napi_float32_array, "Float32Array").As<Napi::Float32Array>();
    *len = static_cast<int64_t>(a.ElementLength());
    return a.Data();
  }

  int32_t* i32(size_t i, const char* name, int64_t* len) const {
    auto a = typed(i, name, napi_int32_array, "Int32Array").As<Napi::Int32Array>();
    *len = static_cast<int64_t>(a.ElementLength());
    return a.Data();
  }

  int64_t integer(size_t i, const char* name, int64_t lo = 0, int64_t hi = kMaxDim) const {
    if (!info[i].IsNumber()) type_fail(env(), std::string(fn) + ": " + name + " must be a number");
    const double v = info[i].As<Napi::Number>().DoubleValue();
    if (!std::isfinite(v) || v != std::floor(v) || v < static_cast<double>(lo) || v > static_cast<double>(hi))
      fail(env(), std::string(fn) + ": " + name + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + info[i].ToString().Utf8Value());
    return static_cast<int64_t>(v);
  }

  double number(size_t i, const char* name) const {
    if (!info[i].IsNumber()) type_fail(env(), std::string(fn) + ": " + name + " must be a number");
    return info[i].As<Napi::Number>().DoubleValue();
  }

  bool boolean(size_t i, const char* name) const {
    if (!info[i].IsBoolean()) type_fail(env(), std::string(fn) + ": " + name + " must be a boolean");
    return info[i].As<Napi::Boolean>().Value();
  }

  std::string str(size_t i, const char* name) const {
    if (!info[i].IsString()) type_fail(env(), std::string(fn) + ": " + name + " must be a string");
    return info[i].As<Napi::String>().Utf8Value();
  }

  std::vector<int64_t> ints(size_t i, const char* name, int64_t lo = 0) const {
    if (!info[i].IsArray()) type_fail(env(), std::string(fn) + ": " + name + " must be an array of integers");
    auto arr = info[i].As<Napi::Array>();
    if (arr.Length() > 32) fail(env(), std::string(fn) + ": " + name + " has " + std::to_string(arr.Length()) + " entries (at most 32)");
    std::vector<int64_t> out;
    for (uint32_t k = 0; k < arr.Length(); k++) {
      Napi::Value v = arr[k];
      if (!v.IsNumber()) type_fail(env(), std::string(fn) + ": " + name + "[" + std::to_string(k) + "] must be a number");
      const double d = v.As<Napi::Number>().DoubleValue();
      if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(kMaxDim))
        fail(env(), std::string(fn) + ": " + name + "[" + std::to_string(k) + "] = " + v.ToString().Utf8Value() + " is not a valid integer");
      out.push_back(static_cast<int64_t>(d));
    }
    return out;
  }

  // a (rows x cols) matrix with leading dimension ld starting at off must lie inside len elements
  void matrix(const char* name, int64_t len, int64_t off, int64_t rows, int64_t cols, int64_t ld) const {
    if (ld < std::max<int64_t>(1, cols))
      fail(env(), std::string(fn) + ": leading dimension of " + name + " is " + std::to_string(ld) + ", less than its " + std::to_string(cols) + " columns");
    if (rows == 0 || cols == 0) return;
    const int64_t last = off + (rows - 1) * ld + cols;  // one past the last element read
    if (off < 0 || last > len)
      fail(env(), std::string(fn) + ": " + name + " (" + std::to_string(rows) + "x" + std::to_string(cols) + ", ld " + std::to_string(ld) + ", offset " +
                      std::to_string(off) + ") needs " + std::to_string(last) + " elements, the array has " + std::to_string(len));
  }

  Napi::Object object(size_t i, const char* name) const {
    if (!info[i].IsObject() || info[i].IsArray() || info[i].IsTypedArray()) type_fail(env(), std::string(fn) + ": " + name + " must be an object");
    return info[i].As<Napi::Object>();
  }

  // an integer field of object `obj` (argument `name`), in [lo, hi]; `fallback` where it is absent
  // (INT64_MIN: required)
  int64_t field(const Napi::Object& obj, const char* name, const char* key, int64_t lo, int64_t hi = kMaxDim, int64_t fallback = INT64_MIN) const {
    const Napi::Value v = obj.Get(key);
    const std::string at = std::string(fn) + ": " + name + "." + key;
    if (v.IsUndefined() && fallback != INT64_MIN) return fallback;
    if (!v.IsNumber()) type_fail(env(), at + " must be a number");
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) || d > static_cast<double>(hi))
      fail(env(), at + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v.ToString().Utf8Value());
    return static_cast<int64_t>(d);
  }

  bool flag(const Napi::Object& obj, const char* name, const char* key) const {
    const Napi::Value v = obj.Get(key);
    if (v.IsUndefined()) return false;
    if (!v.IsBoolean()) type_fail(env(), std::string(fn) + ": " + name + "." + key + " must be a boolean");
    return v.As<Napi::Boolean>().Value();
  }

  void exact(const char* name, int64_t len, int64_t need) const {
    if (len != need) fail(env(), std::string(fn) + ": " + name + " has " + std::to_string(len) + " elements, expected " + std::to_string(need));
  }
  void atLeast(const char* name, int64_t len, int64_t need) const {
    if (len < need) fail(env(), std::string(fn) + ": " + name + " has " + std::to_string(len) + " elements, needs at least " + std::to_string(need));
  }
};

// ------------------------------------------------------------------ gemm

struct GemmCall {
  bool ta, tb;
  int M, N, K;
  float alpha, beta;
  const float* A;
  const float* B;
  float* C;
  int64_t lda, ldb, ldc;
  void run() const { nm::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); }
};

GemmCall parse_gemm(const Args& a) {
  a.count(16);
  GemmCall g;
  g.ta = a.boolean(0, "transA");
  g.tb = a.boolean(1, "transB");
  g.M = static_cast<int>(a.integer(2, "M"));
  g.N = static_cast<int>(a.integer(3, "N"));
  g.K = static_cast<int>(a.integer(4, "K"));
  g.alpha = static_cast<float>(a.number(5, "alpha"));
  int64_t la, lb, lc;
  float* A = a.f32(6, "A", &la);
  const int64_t aOff = a.integer(7, "aOff", 0, INT64_MAX / 4);
  g.lda = a.integer(8, "lda", 1);
  float* B = a.f32(9, "B", &lb);
  const int64_t bOff = a.integer(10, "bOff", 0, INT64_MAX / 4);
  g.ldb = a.integer(11, "ldb", 1);
  g.beta = static_cast<float>(a.number(12, "beta"));
  float* C = a.f32(13, "C", &lc);
  const int64_t cOff = a.integer(14, "cOff", 0, INT64_MAX / 4);
  g.ldc = a.integer(15, "ldc", 1);
  if (g.K > 0 && g.alpha != 0.f) {
    a.matrix("A", la, aOff, g.ta ? g.K : g.M, g.ta ? g.M : g.K, g.lda);
    a.matrix("B", lb, bOff, g.tb ? g.N : g.K, g.tb ? g.K : g.N, g.ldb);
  }
  a.matrix("C", lc, cOff, g.M, g.N, g.ldc);
  g.A = A + aOff;
  g.B = B + bOff;
  g.C = C + cOff;
  return g;
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  parse_gemm(Args{info, "gemm"}).run();
  return info.Env().Undefined();
}

// Runs a task off the main thread, holding references to its arrays until it is done.
class TaskWorker : public Napi::AsyncWorker {
 public:
  TaskWorker(Napi::Env env, std::function<double()> task, const Napi::CallbackInfo& info)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), task_(std::move(task)) {
    for (size_t i = 0; i < info.Length(); i++)
      if (info[i].IsObject()) refs_.push_back(Napi::Persistent(info[i].As<Napi::Object>()));
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { result_ = task_(); }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<double()> task_;
  std::vector<Napi::ObjectReference> refs_;
  double result_ = 0;
};

Napi::Value GemmAsync(const Napi::CallbackInfo& info) {
  GemmCall g = parse_gemm(Args{info, "gemmAsync"});
  auto* w = new TaskWorker(info.Env(), [g] { g.run(); return 0.0; }, info);
  w->Queue();
  return w->Promise();
}

// ------------------------------------------------------------------ convolution, pooling, batch norm

using nm::ConvGeometry;

// the positional sizes C, H, W, KH, KW, SH, SW, PH, PW, OH, OW from argument i on (im2col, col2im,
// pooling: one image, one output channel)
ConvGeometry geometry(const Args& a, size_t i) {
  ConvGeometry g;
  g.N = 1;
  g.OC = 1;
  g.C = static_cast<int>(a.integer(i, "C", 1));
  g.H = static_cast<int>(a.integer(i + 1, "H", 1));
  g.W = static_cast<int>(a.integer(i + 2, "W", 1));
  g.KH = static_cast<int>(a.integer(i + 3, "KH", 1));
  g.KW = static_cast<int>(a.integer(i + 4, "KW", 1));
  g.SH = static_cast<int>(a.integer(i + 5, "SH", 1));
  g.SW = static_cast<int>(a.integer(i + 6, "SW", 1));
  g.PH = static_cast<int>(a.integer(i + 7, "PH", 0));
  g.PW = static_cast<int>(a.integer(i + 8, "PW", 0));
  g.OH = static_cast<int>(a.integer(i + 9, "OH", 1));
  g.OW = static_cast<int>(a.integer(i + 10, "OW", 1));
  if (static_cast<int64_t>(g.C) * g.H * g.W > kMaxDim || static_cast<int64_t>(g.C) * g.KH * g.KW > kMaxDim || static_cast<int64_t>(g.OH) * g.OW > kMaxDim)
    fail(a.env(), std::string(a.fn) + ": sizes too large");
  return g;
}

Napi::Value Im2col(const Napi::CallbackInfo& info) {
  Args a{info, "im2col"};
  a.count(17);
  int64_t lx, lc;
  const float* x = a.f32(0, "x", &lx);
  const int64_t xOff = a.integer(1, "xOff", 0, INT64_MAX / 4);
  const int64_t G = a.integer(2, "G", 1);
  ConvGeometry g = geometry(a, 3);
  float* cols = a.f32(14, "cols", &lc);
  const int64_t cOff = a.integer(15, "colsOff", 0, INT64_MAX / 4);
  const int64_t ld = a.integer(16, "ldCols", 1);
  const int64_t image = static_cast<int64_t>(g.C) * g.H * g.W;
  if (static_cast<double>(G) * image > static_cast<double>(kMaxDim) || static_cast<double>(G) * g.OH * g.OW > static_cast<double>(kMaxDim)) fail(a.env(), "im2col: G images are too large");
  a.matrix("x", lx, xOff, 1, G * image, G * image);
  a.matrix("cols", lc, cOff, static_cast<int64_t>(g.C) * g.KH * g.KW, G * g.OH * g.OW, ld);
  nm::im2col(x + xOff, static_cast<int>(G), g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, cols + cOff, ld);
  return info.Env().Undefined();
}

Napi::Value Col2im(const Napi::CallbackInfo& info) {
  Args a{info, "col2im"};
  a.count(17);
  int64_t lc, lx;
  const float* cols = a.f32(0, "cols", &lc);
  const int64_t cOff = a.integer(1, "colsOff", 0, INT64_MAX / 4);
  const int64_t ld = a.integer(2, "ldCols", 1);
  const int64_t G = a.integer(3, "G", 1);
  ConvGeometry g = geometry(a, 4);
  float* dx = a.f32(15, "dx", &lx);
  const int64_t xOff = a.integer(16, "dxOff", 0, INT64_MAX / 4);
  const int64_t image = static_cast<int64_t>(g.C) * g.H * g.W;
  if (static_cast<double>(G) * image > static_cast<double>(kMaxDim) || static_cast<double>(G) * g.OH * g.OW > static_cast<double>(kMaxDim)) fail(a.env(), "col2im: G images are too large");
  a.matrix("cols", lc, cOff, static_cast<int64_t>(g.C) * g.KH * g.KW, G * g.OH * g.OW, ld);
  a.matrix("dx", lx, xOff, 1, G * image, G * image);
  nm::col2im(cols + cOff, ld, static_cast<int>(G), g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, dx + xOff);
  return info.Env().Undefined();
}

Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  Args a{info, "maxPool2d"};
  a.count(15);
  int64_t lx, lo, la;
  const float* x = a.f32(0, "x", &lx);
  const int N = static_cast<int>(a.integer(1, "N", 1));
  ConvGeometry g = geometry(a, 2);
  float* out = a.f32(13, "out", &lo);
  int32_t* arg = a.i32(14, "argmax", &la);
  const int64_t nin = static_cast<int64_t>(N) * g.C * g.H * g.W, nout = static_cast<int64_t>(N) * g.C * g.OH * g.OW;
  if (nin > kMaxDim) fail(a.env(), "maxPool2d: input larger than 2^31 elements");
  a.exact("x", lx, nin);
  a.exact("out", lo, nout);
  // an empty argmax: inference, nothing to record for a backward pass
  if (la != 0) a.exact("argmax", la, nout);
  nm::maxpool2d(x, N, g.C, g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, out, la == 0 ? nullptr : arg);
  return info.Env().Undefined();
}

Napi::Value MaxPool2dBackward(const Napi::CallbackInfo& info) {
  Args a{info, "maxPool2dBackward"};
  a.count(3);
  int64_t lg, la, lx;
  const float* gout = a.f32(0, "gout", &lg);
  const int32_t* arg = a.i32(1, "argmax", &la);
  float* gx = a.f32(2, "gx", &lx);
  a.exact("argmax", la, lg);
  for (int64_t o = 0; o < la; o++)
    if (arg[o] >= lx || arg[o] < -1) fail(a.env(), "maxPool2dBackward: argmax[" + std::to_string(o) + "] = " + std::to_string(arg[o]) + " is outside gx (" + std::to_string(lx) + " elements)");
  nm::maxpool2d_backward(gout, arg, lg, gx);
  return info.Env().Undefined();
}

Napi::Value BatchNormForward(const Napi::CallbackInfo& info) {
  Args a{info, "batchNormForward"};
  a.count(15);
  int64_t lx, lg, lb, lm, lv, ly, lmean, lis;
  const float* x = a.f32(0, "x", &lx);
  const int N = static_cast<int>(a.integer(1, "N", 1));
  const int C = static_cast<int>(a.integer(2, "C", 1));
  const int64_t S = a.integer(3, "S", 1);
  const float* gamma = a.f32(4, "gamma", &lg);
  const float* beta = a.f32(5, "beta", &lb);
  float* rm = a.f32(6, "runningMean", &lm);
  float* rv = a.f32(7, "runningVar", &lv);
  const bool training = a.boolean(8, "training");
  const float momentum = static_cast<float>(a.number(9, "momentum"));
  const float eps = static_cast<float>(a.number(10, "eps"));
  float* y = a.f32(11, "y", &ly);
  float* mean = a.f32(12, "mean", &lmean);
  float* is = a.f32(13, "invstd", &lis);
  const bool relu = a.boolean(14, "relu");
  const double total = static_cast<double>(N) * C * S;
  if (total > static_cast<double>(kMaxDim)) fail(a.env(), "batchNormForward: input larger than 2^31 elements");
  a.exact("x", lx, N * C * S);
  a.exact("y", ly, N * C * S);
  for (auto [n, l] : {std::pair<const char*, int64_t>{"gamma", lg}, {"beta", lb}, {"runningMean", lm}, {"runningVar", lv}, {"mean", lmean}, {"invstd", lis}}) a.exact(n, l, C);
  nm::batchnorm_forward(x, N, C, S, gamma, beta, rm, rv, training, momentum, eps, y, mean, is, relu);
  return info.Env().Undefined();
}

Napi::Value BatchNormBackward(const Napi::CallbackInfo& info) {
  Args a{info, "batchNormBackward"};
  if (info.Length() != 13 && info.Length() != 14) fail(a.env(), "batchNormBackward: expected 13 or 14 arguments, got " + std::to_string(info.Length()));
  int64_t lx, lg, lgam, lm, lis, lgx, lgg, lgb, ly;
  const float* x = a.f32(0, "x", &lx);
  const float* g = a.f32(1, "g", &lg);
  const int N = static_cast<int>(a.integer(2, "N", 1));
  const int C = static_cast<int>(a.integer(3, "C", 1));
  const int64_t S = a.integer(4, "S", 1);
  const float* gamma = a.f32(5, "gamma", &lgam);
  const float* mean = a.f32(6, "mean", &lm);
  const float* is = a.f32(7, "invstd", &lis);
  const bool training = a.boolean(8, "training");
  float* gx = a.f32(9, "gx", &lgx);
  float* gg = a.f32(10, "ggamma", &lgg);
  float* gb = a.f32(11, "gbeta", &lgb);
  const float* y = a.f32(12, "y", &ly);
  if (static_cast<double>(N) * C * S > static_cast<double>(kMaxDim)) fail(a.env(), "batchNormBackward: input larger than 2^31 elements");
  if (ly != 0) a.exact("y", ly, N * C * S);
  for (auto [n, l] : {std::pair<const char*, int64_t>{"x", lx}, {"g", lg}, {"gx", lgx}}) a.exact(n, l, N * C * S);
  for (auto [n, l] : {std::pair<const char*, int64_t>{"gamma", lgam}, {"mean", lm}, {"invstd", lis}, {"ggamma", lgg}, {"gbeta", lgb}}) a.exact(n, l, C);
  // beta (with y): the ReLU's mask from x by the forward's arithmetic, y not read
  const float* beta = nullptr;
  if (info.Length() == 14 && !info[13].IsUndefined()) {
    int64_t lbeta;
    beta = a.f32(13, "beta", &lbeta);
    a.exact("beta", lbeta, C);
  }
  nm::batchnorm_backward(x, g, N, C, S, gamma, mean, is, training, gx, gg, gb, ly ? y : nullptr, ly ? beta : nullptr);
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ elementwise, permute, reduce

Napi::Value Unary(const Napi::CallbackInfo& info) {
  Args a{info, "unary"};
  a.count(5);
  const std::string name = a.str(0, "op");
  const nm::UnaryOp op = nm::unary_op(name.c_str());
  if (op == nm::U_BAD) fail(a.env(), "unary: unknown op '" + name + "'");
  int64_t lx, lo;
  const float* x = a.f32(1, "x", &lx);
  float* out = a.f32(2, "out", &lo);
  a.exact("out", lo, lx);
  nm::unary(op, x, out, lx, static_cast<float>(a.number(3, "p0")), static_cast<float>(a.number(4, "p1")));
  return info.Env().Undefined();
}

Napi::Value BiasActivate(const Napi::CallbackInfo& info) {
  Args a{info, "biasActivate"};
  a.count(5);
  int64_t ly, lb;
  float* y = a.f32(0, "y", &ly);
  const int64_t rows = a.integer(1, "rows"), cols = a.integer(2, "cols");
  const float* bias = a.f32(3, "bias", &lb);
  const std::string name = a.str(4, "op");
  const int act = name == "none" ? 0 : name == "relu" ? 1 : name == "sigmoid" ? 2 : name == "tanh" ? 3 : -1;
  if (act < 0) fail(a.env(), "biasActivate: unknown op '" + name + "' (none, relu, sigmoid or tanh)");
  if (static_cast<double>(rows) * cols > static_cast<double>(kMaxDim)) fail(a.env(), "biasActivate: rows*cols is larger than 2^31 elements");
  a.exact("y", ly, rows * cols);
  if (lb != 0 && lb != cols) fail(a.env(), "biasActivate: bias has " + std::to_string(lb) + " elements, expected 0 or cols = " + std::to_string(cols));
  nm::bias_activate(y, rows, cols, lb ? bias : nullptr, act);
  return info.Env().Undefined();
}

Napi::Value SgdUpdate(const Napi::CallbackInfo& info) {
  Args a{info, "sgdUpdate"};
  a.count(7);
  int64_t lp, lg, lv;
  float* p = a.f32(0, "p", &lp);
  const float* g = a.f32(1, "g", &lg);
  float* v = a.f32(2, "v", &lv);
  const double lr = a.number(3, "lr"), mu = a.number(4, "mu"), wd = a.number(5, "wd");
  const bool nesterov = a.boolean(6, "nesterov");
  a.exact("g", lg, lp);
  if (mu != 0) a.exact("v", lv, lp);
  nm::sgd_update(p, g, v, lp, lr, mu, wd, nesterov);
  return info.Env().Undefined();
}

// roundBf16(x, out): out = x rounded to the nearest bfloat16 (ties to even; native/bf16.h), as float32;
// out may be x
Napi::Value RoundBf16(const Napi::CallbackInfo& info) {
  Args a{info, "roundBf16"};
  a.count(2);
  int64_t lx, lo;
  const float* x = a.f32(0, "x", &lx);
  float* out = a.f32(1, "out", &lo);
  a.exact("out", lo, lx);
  if (out != x && out < x + lx && x < out + lo) fail(a.env(), "roundBf16: out overlaps x (allowed only as the same array)");
  nm::round_bf16(x, out, lx);
  return info.Env().Undefined();
}

// flipConvWeights(w, OC, C, kk, out): w (OC, C, kk) -> out (C, OC, kk), each kernel's taps reversed
Napi::Value FlipConvWeights(const Napi::CallbackInfo& info) {
  Args a{info, "flipConvWeights"};
  a.count(5);
  int64_t lw, lo;
  const float* w = a.f32(0, "w", &lw);
  const int64_t OC = a.integer(1, "OC"), C = a.integer(2, "C"), kk = a.integer(3, "kk");
  float* out = a.f32(4, "out", &lo);
  const double n = static_cast<double>(OC) * static_cast<double>(C) * static_cast<double>(kk);
  if (n > static_cast<double>(kMaxDim)) fail(a.env(), "flipConvWeights: OC * C * kk is larger than 2^31 elements");
  a.exact("w", lw, OC * C * kk);
  a.exact("out", lo, OC * C * kk);
  nm::flip_conv_weights(w, OC, C, kk, out);
  return info.Env().Undefined();
}

// the largest offset a strided walk over shape reaches (+1), or 0 for an empty shape
int64_t reach(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t r = 0;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 0) return 0;
    r += (shape[d] - 1) * strides[d];
  }
  return r + 1;
}

int64_t product(const std::vector<int64_t>& shape) {
  double p = 1;
  for (auto d : shape) p *= static_cast<double>(d);
  return p > static_cast<double>(kMaxDim) ? -1 : static_cast<int64_t>(p);
}

Napi::Value Binary(const Napi::CallbackInfo& info) {
  Args a{info, "binary"};
  a.count(9);
  const std::string name = a.str(0, "op");
  const nm::BinaryOp op = nm::binary_op(name.c_str());
  if (op == nm::B_BAD) fail(a.env(), "binary: unknown op '" + name + "'");
  int64_t la, lb, lo;
  const float* A = a.f32(1, "a", &la);
  auto as = a.ints(2, "aStrides");
  const float* B = a.f32(3, "b", &lb);
  auto bs = a.ints(4, "bStrides");
  float* out = a.f32(5, "out", &lo);
  auto shape = a.ints(6, "outShape");
  if (as.size() != shape.size() || bs.size() != shape.size()) fail(a.env(), "binary: aStrides, bStrides and outShape must have the same length");
  const int64_t total = product(shape);
  if (total < 0) fail(a.env(), "binary: outShape is larger than 2^31 elements");
  a.exact("out", lo, total);
  if (total > 0) {
    if (reach(shape, as) > la) fail(a.env(), "binary: aStrides over outShape reach beyond a (" + std::to_string(la) + " elements)");
    if (reach(shape, bs) > lb) fail(a.env(), "binary: bStrides over outShape reach beyond b (" + std::to_string(lb) + " elements)");
  } else if (shape.empty()) {
    a.atLeast("a", la, 1);
    a.atLeast("b", lb, 1);
  }
  nm::binary(op, A, as.data(), B, bs.data(), out, shape.data(), static_cast<int>(shape.size()), static_cast<float>(a.number(7, "p0")), static_cast<float>(a.number(8, "p1")));
  return info.Env().Undefined();
}

Napi::Value Permute(const Napi::CallbackInfo& info) {
  Args a{info, "permute"};
  a.count(4);
  int64_t lx, lo;
  const float* x = a.f32(0, "x", &lx);
  auto shape = a.ints(1, "shape");
  auto perm64 = a.ints(2, "perm");
  float* out = a.f32(3, "out", &lo);
  const int nd = static_cast<int>(shape.size());
  if (static_cast<int>(perm64.size()) != nd) fail(a.env(), "permute: perm and shape differ in length");
  std::vector<int> perm(nd);
  std::vector<bool> seen(nd, false);
  for (int d = 0; d < nd; d++) {
    if (perm64[d] >= nd || seen[perm64[d]]) fail(a.env(), "permute: perm is not a permutation of the axes");
    seen[perm64[d]] = true;
    perm[d] = static_cast<int>(perm64[d]);
  }
  const int64_t total = product(shape);
  if (total < 0) fail(a.env(), "permute: shape is larger than 2^31 elements");
  a.exact("x", lx, total);
  a.exact("out", lo, total);
  nm::permute(x, shape.data(), perm.data(), nd, out);
  return info.Env().Undefined();
}

// the epilogue arguments (scale, shift, relu, pool) from argument i on: scale and shift have 0 or C
// elements (C named cName in the message)
struct EpilogueArgs {
  const float* scale;
  const float* shift;
  bool relu;
  int64_t pool;
};
// (prefixed: "epilogue." where the caller's interface holds them in an object)
EpilogueArgs epilogue_args(const Args& a, size_t i, int64_t C, const char* cName, bool prefixed = false) {
  int64_t ls, lt;
  EpilogueArgs e;
  e.scale = a.f32(i, prefixed ? "epilogue.scale" : "scale", &ls);
  e.shift = a.f32(i + 1, prefixed ? "epilogue.shift" : "shift", &lt);
  e.relu = a.boolean(i + 2, prefixed ? "epilogue.relu" : "relu");
  e.pool = a.integer(i + 3, prefixed ? "epilogue.pool" : "pool", 1, 2);
  for (auto [name, len] : {std::pair<const char*, int64_t>{prefixed ? "epilogue.scale" : "scale", ls}, {prefixed ? "epilogue.shift" : "shift", lt}})
    if (len != 0 && len != C) fail(a.env(), std::string(a.fn) + ": " + name + " has " + std::to_string(len) + " elements, expected 0 or " + cName + " = " + std::to_string(C));
  if (!ls) e.scale = nullptr;
  if (!lt) e.shift = nullptr;
  return e;
}

Napi::Value ConvEpilogue(const Napi::CallbackInfo& info) {
  Args a{info, "convEpilogue"};
  a.count(13);
  int64_t lx, lo;
  const float* x = a.f32(0, "x", &lx);
  const int64_t xOff = a.integer(1, "xOff", 0, INT64_MAX / 4);
  const bool cm = a.boolean(2, "channelMajor");
  const int64_t G = a.integer(3, "G"), C = a.integer(4, "C"), H = a.integer(5, "H"), W = a.integer(6, "W");
  const EpilogueArgs e = epilogue_args(a, 7, C, "C");
  const int64_t pool = e.pool;
  float* out = a.f32(11, "out", &lo);
  const int64_t outOff = a.integer(12, "outOff", 0, INT64_MAX / 4);
  const double total = static_cast<double>(G) * C * H * W;
  if (total > static_cast<double>(kMaxDim)) fail(a.env(), "convEpilogue: G*C*H*W is larger than 2^31 elements");
  const int64_t n = G * C * H * W, m = G * C * (H / pool) * (W / pool);
  if (n > 0) a.matrix("x", lx, xOff, 1, n, n);
  if (m > 0) a.matrix("out", lo, outOff, 1, m, m);
  if (m == 0) return info.Env().Undefined();
  float* o = out + outOff;
  const float* xp = x + xOff;
  // in place only elementwise and image-major; any other overlap would read what was already written
  if (o < xp + n && xp < o + m && !(o == xp && pool == 1 && !cm)) fail(a.env(), "convEpilogue: out overlaps x (allowed only as the same array range, image-major, pool 1)");
  nm::conv_epilogue(xp, cm, static_cast<int>(G), static_cast<int>(C), static_cast<int>(H), static_cast<int>(W), e.scale, e.shift, e.relu, static_cast<int>(pool), o);
  return info.Env().Undefined();
}

// a convolution's geometry (argument i): a Float64Array of its 13 sizes in the order of
// nm::ConvGeometry (N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW), written by the TypeScript side from
// its ConvGeometry object (src/backend/native.ts: a typed array crosses N-API in one step, 13 named
// properties took 3-4 us a call). Each an integer in range, the output no larger than the padded input
// gives, and the input, the output (`what`: output, output gradient) and the weight each within 2^31
// elements
ConvGeometry conv_geometry(const Args& a, size_t i, const char* what) {
  if (!a.info[i].IsTypedArray() || a.info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    type_fail(a.env(), std::string(a.fn) + ": geometry must be a Float64Array of 13 sizes");
  auto arr = a.info[i].As<Napi::Float64Array>();
  if (arr.ElementLength() != 13) fail(a.env(), std::string(a.fn) + ": geometry has " + std::to_string(arr.ElementLength()) + " sizes, expected 13");
  static const char* names[13] = {"N", "C", "H", "W", "OC", "KH", "KW", "SH", "SW", "PH", "PW", "OH", "OW"};
  int v[13];
  for (int k = 0; k < 13; k++) {
    const double d = arr[k];
    const double lo = (k == 9 || k == 10) ? 0 : 1;  // padding may be 0
    if (!std::isfinite(d) || d != std::floor(d) || d < lo || d > static_cast<double>(kMaxDim))
      fail(a.env(), std::string(a.fn) + ": geometry." + names[k] + " must be an integer in [" + std::to_string(static_cast<int>(lo)) + ", " + std::to_string(kMaxDim) + "], got " + (std::isnan(d) ? std::string("none") : Napi::Number::New(a.env(), d).ToString().Utf8Value()));
    v[k] = static_cast<int>(d);
  }
  ConvGeometry g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  const double N = g.N, L = static_cast<double>(g.pixels());
  if (N * static_cast<double>(g.image()) > static_cast<double>(kMaxDim) || N * g.OC * L > static_cast<double>(kMaxDim) || static_cast<double>(g.OC) * g.C * g.KH * g.KW > static_cast<double>(kMaxDim))
    fail(a.env(), std::string(a.fn) + ": the input, " + what + " or weight is larger than 2^31 elements");
  // the output size the geometry gives (stride, padding): an OH or OW beyond it would read outside
  // the padded image
  if (g.H + 2 * g.PH < g.KH || g.W + 2 * g.PW < g.KW || g.OH > (g.H + 2 * g.PH - g.KH) / g.SH + 1 || g.OW > (g.W + 2 * g.PW - g.KW) / g.SW + 1)
    fail(a.env(), std::string(a.fn) + ": geometry's OH x OW " + std::to_string(g.OH) + "x" + std::to_string(g.OW) + " is larger than the input " + std::to_string(g.H) + "x" + std::to_string(g.W) + ", padding " + std::to_string(g.PH) + "," + std::to_string(g.PW) + " and kernel " + std::to_string(g.KH) + "x" + std::to_string(g.KW) + " give");
  return g;
}

// the first of x's N images (argument 0, from the offset at argument 1), checked to lie inside x
const float* conv_images(const Args& a, const ConvGeometry& g) {
  int64_t lx;
  const float* x = a.f32(0, "x", &lx);
  const int64_t xOff = a.integer(1, "xOff", 0, INT64_MAX / 4);
  const int64_t n = g.N * g.image();
  a.matrix("x", lx, xOff, 1, n, n);
  return x + xOff;
}

// convForward(x, xOff, geometry, w, scale, shift, relu, pool, out, outOff, packed, packedWidth,
// winograd, winogradTile, winogradWidth): the Kernels interface's convForward with its epilogue and
// prepared-weights objects spread into arguments (src/backend/native.ts). packed and winograd: the
// weights laid out by packConvWeights (for packedWidth) and transformed by winogradWeights (tile,
// winogradWidth), or empty; each read where this call takes that path and the width is the kernels' now
Napi::Value ConvForward(const Napi::CallbackInfo& info) {
  Args a{info, "convForward"};
  a.count(15);
  const ConvGeometry g = conv_geometry(a, 2, "output");
  const float* xp = conv_images(a, g);
  int64_t lw, lo;
  const float* w = a.f32(3, "w", &lw);
  const EpilogueArgs ea = epilogue_args(a, 4, g.OC, "OC", true);
  nm::ConvEpilogue e;
  e.scale = ea.scale;
  e.shift = ea.shift;
  e.relu = ea.relu;
  e.pool = static_cast<int>(ea.pool);
  float* out = a.f32(8, "out", &lo);
  const int64_t outOff = a.integer(9, "outOff", 0, INT64_MAX / 4);
  const int64_t L = g.pixels(), CKK = g.taps(), image = g.N * g.image();
  const int64_t POL = e.pool == 2 ? static_cast<int64_t>(g.OH / 2) * (g.OW / 2) : L;
  a.exact("w", lw, static_cast<int64_t>(g.OC) * CKK);
  const int64_t m = g.N * g.OC * POL;
  if (m > 0) a.matrix("out", lo, outOff, 1, m, m);
  if (m == 0) return info.Env().Undefined();  // (CKK >= 1: the geometry has C, KH, KW >= 1)
  float* o = out + outOff;
  if ((o < xp + image && xp < o + m) || (o < w + lw && w < o + m)) fail(a.env(), "convForward: out overlaps x or w");
  nm::PreparedConvWeights p;
  int64_t lp, lu;
  float* packed = a.f32(10, "prepared.packed", &lp);
  if (lp > 0) {
    p.packed = packed;
    p.packed_width = static_cast<int>(a.integer(11, "prepared.width", 1, 64));
    a.exact("prepared.packed", lp, (g.OC + p.packed_width - 1) / p.packed_width * p.packed_width * CKK);
    if (o < p.packed + lp && p.packed < o + m) fail(a.env(), "convForward: out overlaps prepared.packed");
  }
  float* wino = a.f32(12, "prepared.winograd", &lu);
  if (lu > 0) {
    p.winograd = wino;
    p.winograd_tile = static_cast<int>(a.integer(13, "prepared.tile", 2, 4));
    if (p.winograd_tile == 3) fail(a.env(), "convForward: prepared.tile must be 2 or 4, got 3");
    p.winograd_width = static_cast<int>(a.integer(14, "prepared.winogradWidth", 1, 64));
    if (g.KH != 3 || g.KW != 3) fail(a.env(), "convForward: prepared.winograd given for a " + std::to_string(g.KH) + "x" + std::to_string(g.KW) + " kernel (3x3 only)");
    a.exact("prepared.winograd", lu, nm::winograd_weights_size(p.winograd_tile, g.OC, g.C));
    if (o < p.winograd + lu && p.winograd < o + m) fail(a.env(), "convForward: out overlaps prepared.winograd");
  }
  nm::conv_forward(xp, g, w, e, o, p);
  return info.Env().Undefined();
}

// packConvWeights(w, OC, K): w (OC, K) laid out for convForward's packed path at the kernels' vector
// width now: { packed: Float32Array, width }
Napi::Value PackConvWeights(const Napi::CallbackInfo& info) {
  Args a{info, "packConvWeights"};
  a.count(3);
  int64_t lw;
  const float* w = a.f32(0, "w", &lw);
  const int64_t OC = a.integer(1, "OC", 1), K = a.integer(2, "K", 1);
  a.exact("w", lw, OC * K);
  const int vw = nm::vector_floats();
  const int64_t n = (OC + vw - 1) / vw * vw * K;
  Napi::Float32Array p = Napi::Float32Array::New(info.Env(), static_cast<size_t>(n));
  nm::pack_weights(w, static_cast<int>(OC), static_cast<int>(K), vw, p.Data());
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("packed", p);
  r.Set("width", Napi::Number::New(info.Env(), vw));
  return r;
}

// winogradWeights(w, OC, C, m): w (OC, C, 3, 3) transformed for F(m x m, 3 x 3) by the kernels of the
// vector width now: { weights: Float32Array, tile: m, width }
Napi::Value WinogradWeights(const Napi::CallbackInfo& info) {
  Args a{info, "winogradWeights"};
  a.count(4);
  int64_t lw;
  const float* w = a.f32(0, "w", &lw);
  const int64_t OC = a.integer(1, "OC", 1, 1 << 20), C = a.integer(2, "C", 1, 1 << 20);
  const int m = static_cast<int>(a.integer(3, "m", 2, 4));
  if (m != 2 && m != 4) fail(a.env(), "winogradWeights: m must be 2 or 4, got " + std::to_string(m));
  a.exact("w", lw, OC * C * 9);
  const int64_t n = nm::winograd_weights_size(m, static_cast<int>(OC), static_cast<int>(C));
  Napi::Float32Array u = Napi::Float32Array::New(info.Env(), static_cast<size_t>(n));
  nm::winograd_weights(m, w, static_cast<int>(OC), static_cast<int>(C), u.Data());
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("weights", u);
  r.Set("tile", Napi::Number::New(info.Env(), m));
  r.Set("width", Napi::Number::New(info.Env(), nm::vector_floats()));
  return r;
}

// convWeightGrad(x, xOff, geometry, g, gOff, gw): see the TypeScript interface
Napi::Value ConvWeightGrad(const Napi::CallbackInfo& info) {
  Args a{info, "convWeightGrad"};
  a.count(6);
  const ConvGeometry geo = conv_geometry(a, 2, "output gradient");
  const float* xp = conv_images(a, geo);
  int64_t lg, lw;
  const float* gy = a.f32(3, "g", &lg);
  const int64_t gOff = a.integer(4, "gOff", 0, INT64_MAX / 4);
  float* gw = a.f32(5, "gw", &lw);
  const int64_t gn = geo.N * geo.OC * geo.pixels(), image = geo.N * geo.image();
  a.matrix("g", lg, gOff, 1, gn, gn);
  a.exact("gw", lw, static_cast<int64_t>(geo.OC) * geo.taps());
  // Winograd's transforms, or the direct kernel, or none (false: the caller takes im2col + GEMM)
  const nm::WeightGradChoice c = nm::choose_weight_grad_algorithm(geo, nm::ConvTarget::now());
  if (c.algorithm == nm::WeightGradAlgorithm::Im2colGemm) return Napi::Boolean::New(info.Env(), false);
  const float* gp = gy + gOff;
  if ((gw < xp + image && xp < gw + lw) || (gw < gp + gn && gp < gw + lw)) fail(a.env(), "convWeightGrad: gw overlaps x or g");
  if (c.algorithm == nm::WeightGradAlgorithm::Winograd) nm::conv_winograd_wgrad(c.tile, xp, geo, gp, gw);
  else nm::conv_weight_grad(xp, geo, gp, gw);
  return Napi::Boolean::New(info.Env(), true);
}

Napi::Value Reduce(const Napi::CallbackInfo& info) {
  Args a{info, "reduce"};
  a.count(5);
  const std::string name = a.str(0, "op");
  if (name != "sum" && name != "max") fail(a.env(), "reduce: unknown op '" + name + "'");
  int64_t lx, lo;
  const float* x = a.f32(1, "x", &lx);
  auto shape = a.ints(2, "shape");
  auto os = a.ints(3, "outStrides");
  float* out = a.f32(4, "out", &lo);
  if (os.size() != shape.size()) fail(a.env(), "reduce: outStrides and shape differ in length");
  const int64_t total = product(shape);
  if (total < 0) fail(a.env(), "reduce: shape is larger than 2^31 elements");
  a.exact("x", lx, total);
  if (total > 0 && reach(shape, os) > lo) fail(a.env(), "reduce: outStrides over shape reach beyond out (" + std::to_string(lo) + " elements)");
  if (shape.empty()) a.atLeast("out", lo, 1);
  nm::reduce(name == "sum" ? 0 : 1, x, shape.data(), os.data(), static_cast<int>(shape.size()), out, lo);
  return info.Env().Undefined();
}

// ------------------------------------------------------------------ clustering

struct DistCall {
  const float* X;
  const float* Y;
  float* out;
  int n, m, d;
};

DistCall parse_dist(const Args& a) {
  a.count(6);
  int64_t lx, ly, lo;
  DistCall c;
  c.X = a.f32(0, "X", &lx);
  c.n = static_cast<int>(a.integer(1, "n"));
  c.Y = a.f32(2, "Y", &ly);
  c.m = static_cast<int>(a.integer(3, "m"));
  c.d = static_cast<int>(a.integer(4, "d"));
  c.out = a.f32(5, "out", &lo);
  a.matrix("X", lx, 0, c.n, c.d, std::max(1, c.d));
  a.matrix("Y", ly, 0, c.m, c.d, std::max(1, c.d));
  a.matrix("out", lo, 0, c.n, c.m, std::max(1, c.m));
  return c;
}

Napi::Value PairwiseSqDist(const Napi::CallbackInfo& info) {
  DistCall c = parse_dist(Args{info, "pairwiseSqDist"});
  nm::pairwise_sqdist(c.X, c.n, c.Y, c.m, c.d, c.out);
  return info.Env().Undefined();
}

Napi::Value PairwiseSqDistAsync(const Napi::CallbackInfo& info) {
  DistCall c = parse_dist(Args{info, "pairwiseSqDistAsync"});
  auto* w = new TaskWorker(info.Env(), [c] { nm::pairwise_sqdist(c.X, c.n, c.Y, c.m, c.d, c.out); return 0.0; }, info);
  w->Queue();
  return w->Promise();
}

struct KmeansCall {
  const float* X;
  const float* C;
  int32_t* assign;
  float* newC;
  int32_t* counts;
  int n, d, k;
  double run() const { return nm::kmeans_step(X, n, d, C, k, assign, newC, counts); }
};

KmeansCall parse_kmeans(const Args& a) {
  a.count(8);
  int64_t lx, lc, la, ln, lk;
  KmeansCall c;
  c.X = a.f32(0, "X", &lx);
  c.n = static_cast<int>(a.integer(1, "n", 1));
  c.d = static_cast<int>(a.integer(2, "d", 1));
  c.C = a.f32(3, "centroids", &lc);
  c.k = static_cast<int>(a.integer(4, "k", 1));
  c.assign = a.i32(5, "assign", &la);
  c.newC = a.f32(6, "newCentroids", &ln);
  c.counts = a.i32(7, "counts", &lk);
  if (static_cast<double>(c.n) * c.d > static_cast<double>(kMaxDim) || static_cast<double>(c.k) * c.d > static_cast<double>(kMaxDim)) fail(a.env(), "kmeansStep: sizes too large");
  a.exact("X", lx, static_cast<int64_t>(c.n) * c.d);
  a.exact("centroids", lc, static_cast<int64_t>(c.k) * c.d);
  a.exact("assign", la, c.n);
  a.exact("newCentroids", ln, static_cast<int64_t>(c.k) * c.d);
  a.exact("counts", lk, c.k);
  return c;
}

Napi::Value KmeansStep(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), parse_kmeans(Args{info, "kmeansStep"}).run());
}

Napi::Value KmeansStepAsync(const Napi::CallbackInfo& info) {
  KmeansCall c = parse_kmeans(Args{info, "kmeansStepAsync"});
  auto* w = new TaskWorker(info.Env(), [c] { return c.run(); }, info);
  w->Queue();
  return w->Promise();
}

// ------------------------------------------------------------------ configuration

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), nm::num_threads()); }

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args a{info, "setThreads"};
  a.count(1);
  return Napi::Number::New(info.Env(), nm::set_threads(static_cast<int>(a.integer(0, "n", 1, 1024))));
}

Napi::Value IsaName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), nm::isa_name(nm::gemm_isa())); }

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  Args a{info, "setIsa"};
  a.count(1);
  const std::string s = a.str(0, "isa");
  nm::Isa isa;
  if (s == "avx512") isa = nm::Isa::Avx512;
  else if (s == "avx2") isa = nm::Isa::Avx2;
  else if (s == "generic") isa = nm::Isa::Generic;
  else fail(a.env(), "setIsa: unknown micro-kernel '" + s + "' (avx512, avx2 or generic)");
  return Napi::Boolean::New(info.Env(), nm::set_gemm_isa(isa));
}

// setWinograd(mode): 3x3 stride-1 convolutions by Winograd's F(m x m, 3 x 3) where it measured faster
// ('auto', the default), wherever the geometry allows ('on'), or never ('off'); winograd() reads it
Napi::Value SetWinograd(const Napi::CallbackInfo& info) {
  Args a{info, "setWinograd"};
  a.count(1);
  const std::string s = a.str(0, "mode");
  if (s == "auto") nm::set_winograd_mode(-1);
  else if (s == "on") nm::set_winograd_mode(1);
  else if (s == "off") nm::set_winograd_mode(0);
  else fail(a.env(), "setWinograd: unknown mode '" + s + "' (auto, on or off)");
  return info.Env().Undefined();
}

// winogradTile(geometry): the tile size m (2 or 4) convForward takes for that convolution in the
// current mode, or 0 where it does not take Winograd's
Napi::Value WinogradTile(const Napi::CallbackInfo& info) {
  Args a{info, "winogradTile"};
  a.count(1);
  return Napi::Number::New(info.Env(), nm::winograd_tile(conv_geometry(a, 0, "output"), nm::ConvTarget::now()));
}

// convAlgorithm(geometry, target): the algorithms convForward and convWeightGrad take for this geometry,
// target = { pool?, packed?, isa?, threads?, winograd? } (isa 'avx512', 'avx2' or 'generic'; winograd
// 'auto', 'on' or 'off'; each absent: the one in effect now) -> { forward, tile, width, weightGrad,
// weightGradTile }
Napi::Value ConvAlgorithmOf(const Napi::CallbackInfo& info) {
  Args a{info, "convAlgorithm"};
  a.count(2);
  const ConvGeometry g = conv_geometry(a, 0, "output");
  const Napi::Object o = a.object(1, "target");
  nm::ConvTarget t = nm::ConvTarget::now();
  const Napi::Value isa = o.Get("isa"), wm = o.Get("winograd");
  if (!isa.IsUndefined()) {
    const std::string s = isa.IsString() ? isa.As<Napi::String>().Utf8Value() : "";
    if (s == "avx512") t.isa = nm::Isa::Avx512;
    else if (s == "avx2") t.isa = nm::Isa::Avx2;
    else if (s == "generic") t.isa = nm::Isa::Generic;
    else fail(a.env(), "convAlgorithm: target.isa must be 'avx512', 'avx2' or 'generic'");
  }
  if (!wm.IsUndefined()) {
    const std::string s = wm.IsString() ? wm.As<Napi::String>().Utf8Value() : "";
    if (s == "auto") t.winograd = -1;
    else if (s == "on") t.winograd = 1;
    else if (s == "off") t.winograd = 0;
    else fail(a.env(), "convAlgorithm: target.winograd must be 'auto', 'on' or 'off'");
  }
  t.threads = static_cast<int>(a.field(o, "target", "threads", 1, 1024, t.threads));
  const int pool = static_cast<int>(a.field(o, "target", "pool", 1, 2, 1));
  const nm::ConvChoice c = nm::choose_conv_algorithm(g, pool, a.flag(o, "target", "packed"), t);
  const nm::WeightGradChoice wg = nm::choose_weight_grad_algorithm(g, t);
  Napi::Object r = Napi::Object::New(info.Env());
  r.Set("forward", Napi::String::New(info.Env(), nm::conv_algorithm_name(c.algorithm)));
  r.Set("tile", Napi::Number::New(info.Env(), c.tile));
  r.Set("width", Napi::Number::New(info.Env(), c.width));
  r.Set("weightGrad", Napi::String::New(info.Env(), wg.algorithm == nm::WeightGradAlgorithm::Winograd ? "winograd" : wg.algorithm == nm::WeightGradAlgorithm::Direct ? "direct" : "im2col-gemm"));
  r.Set("weightGradTile", Napi::Number::New(info.Env(), wg.tile));
  return r;
}

Napi::Value WinogradMode(const Napi::CallbackInfo& info) {
  const int m = nm::winograd_mode();
  return Napi::String::New(info.Env(), m < 0 ? "auto" : m > 0 ? "on" : "off");
}

// setMallocReuse(on): glibc's malloc keeps freed large blocks for reuse (on) or gives them back to
// the system (off, glibc's defaults). A training step allocates its activations and gradients anew
// each step; with glibc's defaults each block over the mmap threshold (at most 32 MiB, and VGG-16's
// 128x64x32x32 activations are exactly 32 MiB) is a fresh mapping, unmapped when V8 frees it, and
// costs a page fault per 4 KiB page on first touch (VGG-16 at batch 128: 150,000 faults and 0.5-0.65 s
// of system time a step). On: no mmapped blocks (M_MMAP_MAX 0: all from the heap, best-fit among
// freed blocks) and no trimming of the heap's top below 1 GiB; the process's memory then stays at its
// peak (VGG-16 training: 805 MB against 766 MB). Returns whether the setting took (false off glibc).
Napi::Value SetMallocReuse(const Napi::CallbackInfo& info) {
  Args a{info, "setMallocReuse"};
  a.count(1);
  const bool on = a.boolean(0, "on");
#if defined(__GLIBC__)
  bool ok = mallopt(M_MMAP_MAX, on ? 0 : 65536) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, on ? 1 << 30 : 128 * 1024) == 1 && ok;
  if (!on) {
    ok = mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1 && ok;
    malloc_trim(0);
  }
  return Napi::Boolean::New(info.Env(), ok);
#else
  (void)on;
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// Ctrl-C (SIGINT) and SIGTERM while a long synchronous loop holds the JavaScript thread: the handler
// only records the signal, and the loop polls interruptSignal() between steps to save and stop. A second
// signal more than a second after the first ends the process at once (the usual death by the signal);
// one within a second is the same request arriving twice (a terminal signals the whole process group,
// and a parent process passes its own on).
namespace {
volatile std::sig_atomic_t interrupt_signal = 0;
volatile std::sig_atomic_t interrupt_second = 0;

void on_interrupt(int sig) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (interrupt_signal != 0 && now.tv_sec > interrupt_second + 1) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  if (interrupt_signal == 0) interrupt_second = static_cast<std::sig_atomic_t>(now.tv_sec);
  interrupt_signal = sig;
}
}  // namespace

Napi::Value WatchInterrupts(const Napi::CallbackInfo& info) {
  Args a{info, "watchInterrupts"};
  a.count(0);
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  const bool ok = sigaction(SIGINT, &sa, nullptr) == 0 && sigaction(SIGTERM, &sa, nullptr) == 0;
  return Napi::Boolean::New(info.Env(), ok);
}

Napi::Value InterruptSignal(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(interrupt_signal));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("watchInterrupts", Napi::Function::New(env, WatchInterrupts));
  exports.Set("interruptSignal", Napi::Function::New(env, InterruptSignal));
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("gemmAsync", Napi::Function::New(env, GemmAsync));
  exports.Set("im2col", Napi::Function::New(env, Im2col));
  exports.Set("col2im", Napi::Function::New(env, Col2im));
  exports.Set("maxPool2d", Napi::Function::New(env, MaxPool2d));
  exports.Set("maxPool2dBackward", Napi::Function::New(env, MaxPool2dBackward));
  exports.Set("batchNormForward", Napi::Function::New(env, BatchNormForward));
  exports.Set("batchNormBackward", Napi::Function::New(env, BatchNormBackward));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("biasActivate", Napi::Function::New(env, BiasActivate));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("permute", Napi::Function::New(env, Permute));
  exports.Set("sgdUpdate", Napi::Function::New(env, SgdUpdate));
  exports.Set("roundBf16", Napi::Function::New(env, RoundBf16));
  exports.Set("flipConvWeights", Napi::Function::New(env, FlipConvWeights));
  exports.Set("convEpilogue", Napi::Function::New(env, ConvEpilogue));
  exports.Set("convForward", Napi::Function::New(env, ConvForward));
  exports.Set("convAlgorithm", Napi::Function::New(env, ConvAlgorithmOf));
  exports.Set("packConvWeights", Napi::Function::New(env, PackConvWeights));
  exports.Set("winogradWeights", Napi::Function::New(env, WinogradWeights));
  exports.Set("convWeightGrad", Napi::Function::New(env, ConvWeightGrad));
  exports.Set("reduce", Napi::Function::New(env, Reduce));
  exports.Set("pairwiseSqDist", Napi::Function::New(env, PairwiseSqDist));
  exports.Set("pairwiseSqDistAsync", Napi::Function::New(env, PairwiseSqDistAsync));
  exports.Set("kmeansStep", Napi::Function::New(env, KmeansStep));
  exports.Set("kmeansStepAsync", Napi::Function::New(env, KmeansStepAsync));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("isa", Napi::Function::New(env, IsaName));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("setWinograd", Napi::Function::New(env, SetWinograd));
  exports.Set("winograd", Napi::Function::New(env, WinogradMode));
  exports.Set("winogradTile", Napi::Function::New(env, WinogradTile));
  exports.Set("setMallocReuse", Napi::Function::New(env, SetMallocReuse));
  return exports;
}

}  // namespace

NODE_API_MODULE(neuronmerge, Init)
