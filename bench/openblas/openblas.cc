// Benchmark-only harness: OpenBLAS's cblas_sgemm behind the same argument order as neuronmerge's
// native gemm, so one benchmark can time both in the same process. Built by bench/gemm.ts on demand,
// never by npm install; needs libopenblas-dev.
#include <cblas.h>
#include <napi.h>

namespace {

Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  if (info.Length() != 16) throw Napi::TypeError::New(info.Env(), "sgemm: 16 arguments");
  const bool ta = info[0].As<Napi::Boolean>(), tb = info[1].As<Napi::Boolean>();
  const int M = info[2].As<Napi::Number>(), N = info[3].As<Napi::Number>(), K = info[4].As<Napi::Number>();
  const float alpha = info[5].As<Napi::Number>().FloatValue();
  auto A = info[6].As<Napi::Float32Array>();
  const int aOff = info[7].As<Napi::Number>(), lda = info[8].As<Napi::Number>();
  auto B = info[9].As<Napi::Float32Array>();
  const int bOff = info[10].As<Napi::Number>(), ldb = info[11].As<Napi::Number>();
  const float beta = info[12].As<Napi::Number>().FloatValue();
  auto C = info[13].As<Napi::Float32Array>();
  const int cOff = info[14].As<Napi::Number>(), ldc = info[15].As<Napi::Number>();
  // the benchmark passes well-formed arguments; check the extents anyway
  auto need = [&](size_t len, long off, long rows, long cols, long ld) {
    if (rows > 0 && cols > 0 && static_cast<size_t>(off + (rows - 1) * ld + cols) > len) throw Napi::RangeError::New(info.Env(), "sgemm: array too small");
  };
  need(A.ElementLength(), aOff, ta ? K : M, ta ? M : K, lda);
  need(B.ElementLength(), bOff, tb ? N : K, tb ? K : N, ldb);
  need(C.ElementLength(), cOff, M, N, ldc);
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A.Data() + aOff, lda, B.Data() + bOff, ldb, beta,
              C.Data() + cOff, ldc);
  return info.Env().Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  openblas_set_num_threads(info[0].As<Napi::Number>());
  return info.Env().Undefined();
}

Napi::Value Config(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), std::string(openblas_get_config()) + " core=" + openblas_get_corename());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Sgemm));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("config", Napi::Function::New(env, Config));
  return exports;
}

}  // namespace

NODE_API_MODULE(openblas_harness, Init)
