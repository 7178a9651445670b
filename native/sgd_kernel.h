// One SGD step over elements [s, e) in place, arithmetic in double as the TypeScript loop (sgdUpdate):
// the same bits on every build. Included with NM_SGD_NAME and compiled per instruction set: the
// baseline build's 2-double vectors took 1.19 ms for VGG-16's largest layer (2.4M parameters) where
// 8-double ones take 0.38 (Zen 5, 2 threads). No contraction into fused multiply-adds, which round
// once where the loop rounds twice.
#include <cstdint>

namespace nm {

#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
void NM_SGD_NAME(float* p, const float* g, float* v, int64_t s, int64_t e, double lr, double mu, double wd, bool nesterov) {
  if (mu == 0) {
    for (int64_t j = s; j < e; j++) p[j] = static_cast<float>(p[j] - lr * (g[j] + wd * p[j]));
    return;
  }
  if (nesterov) {
    for (int64_t j = s; j < e; j++) {
      const double gj = g[j] + wd * p[j];
      const double vj = mu * v[j] + gj;
      v[j] = static_cast<float>(vj);
      p[j] = static_cast<float>(p[j] - lr * (gj + mu * vj));
    }
  } else {
    for (int64_t j = s; j < e; j++) {
      const double gj = g[j] + wd * p[j];
      const double vj = mu * v[j] + gj;
      v[j] = static_cast<float>(vj);
      p[j] = static_cast<float>(p[j] - lr * vj);
    }
  }
}
#pragma GCC pop_options

}  // namespace nm

#undef NM_SGD_NAME
