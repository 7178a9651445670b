// SGEMM dispatch: picks the micro-kernel by CPUID at run time (so one binary runs with or without
// AVX-512), applies beta, and chooses how the thread pool shares the product.
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "threadpool.h"

namespace nm {

void sgemm_avx512(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, const ConvB*);
void sgemm_avx2(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, const ConvB*);
void sgemm_generic(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, const ConvB*);
void sgemm_avx512_par(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, int, const ConvB*);
void sgemm_avx2_par(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, int, const ConvB*);
void sgemm_generic_par(bool, bool, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t, int, const ConvB*);
void srows_avx512(int, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t);
void srows_avx2(int, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t);
void srows_generic(int, int, int, int, float, const float*, int64_t, const float*, int64_t, float, float*, int64_t);
void snarrow_avx512(int, int, int, int, const float*, int64_t, const float*, int64_t, float*, int64_t);
void snarrow_avx2(int, int, int, int, const float*, int64_t, const float*, int64_t, float*, int64_t);
void snarrow_generic(int, int, int, int, const float*, int64_t, const float*, int64_t, float*, int64_t);
void snarrow_conv_avx512(int, int, int, int, int, int, const float*, const float*, int64_t, int, float*);
void snarrow_conv_avx2(int, int, int, int, int, int, const float*, const float*, int64_t, int, float*);
void snarrow_conv_generic(int, int, int, int, int, int, const float*, const float*, int64_t, int, float*);
void spacked_avx512(int, int, int, int, int, const float*, const float*, int64_t, float*);
void spacked_avx2(int, int, int, int, int, const float*, const float*, int64_t, float*);
void spacked_generic(int, int, int, int, int, const float*, const float*, int64_t, float*);
int spacked_nb_avx512(int);
int spacked_nb_avx2(int);
int spacked_nb_generic(int);
bool have_avx512_kernel();
bool have_avx2_kernel();

namespace {

bool cpu_has(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (isa == Isa::Avx512) return __builtin_cpu_supports("avx512f") && have_avx512_kernel();
  if (isa == Isa::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && have_avx2_kernel();
#else
  if (isa != Isa::Generic) return false;
#endif
  return true;
}

Isa detect() {
  Isa cap = Isa::Avx512;
  if (const char* e = std::getenv("NEURONMERGE_SIMD")) {
    if (!std::strcmp(e, "generic")) cap = Isa::Generic;
    else if (!std::strcmp(e, "avx2")) cap = Isa::Avx2;
  }
  for (Isa i : {Isa::Avx512, Isa::Avx2}) {
    if (static_cast<int>(i) <= static_cast<int>(cap) && cpu_has(i)) return i;
  }
  return Isa::Generic;
}

Isa current = detect();

/** A of at most this many rows with B stored by rows goes to the dot-product kernel (rows_kernel.h) */
constexpr int ROWS_MAX_M = 4;
/** ... and C of at most this many columns (B stored by rows) goes to it transposed */
constexpr int ROWS_T_MAX_N = 16;

// the dot-product kernel of this instruction set (rows_kernel.h): columns [n0, n1) of C
void srows(int M, int n0, int n1, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  switch (current) {
    case Isa::Avx512: srows_avx512(M, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    case Isa::Avx2: srows_avx2(M, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); break;
    default: srows_generic(M, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

void serial(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, const ConvB* cb) {
  switch (current) {
    case Isa::Avx512: sgemm_avx512(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, cb); break;
    case Isa::Avx2: sgemm_avx2(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, cb); break;
    default: sgemm_generic(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, cb);
  }
}

}  // namespace

Isa gemm_isa() { return current; }

int vector_floats() { return current == Isa::Avx512 ? 16 : current == Isa::Avx2 ? 8 : 4; }

int narrow_max_n() { return 4 * vector_floats(); }

namespace {

// fn(i0, i1) over [0, n) split between the threads in whole tiles of `tile` items (one thread under
// 1e6 FLOPs in all, or inside pool work)
template <typename F>
void split_in_tiles(int n, int tile, double flops, const F& fn) {
  const int tiles = (n + tile - 1) / tile;
  const int T = inside_parallel() || flops < 1e6 ? 1 : std::min(num_threads(), tiles);
  if (T <= 1) {
    fn(0, n);
    return;
  }
  parallel_for(T, [&](int t) {
    fn(std::min(n, tiles * t / T * tile), std::min(n, tiles * (t + 1) / T * tile));
  }, T);
}

}  // namespace

void sgemm_narrow(int M, int N, int K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  auto rows = [&](int m0, int m1) {
    switch (current) {
      case Isa::Avx512: snarrow_avx512(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
      case Isa::Avx2: snarrow_avx2(m0, m1, N, K, A, lda, B, ldb, C, ldc); break;
      default: snarrow_generic(m0, m1, N, K, A, lda, B, ldb, C, ldc);
    }
  };
  // rows split in whole row tiles of the kernel at this width (128 rows of 6: 66 and 62, where
  // multiples of 24 gave 48 and 80)
  split_in_tiles(M, narrow_tile_rows(N), 2.0 * M * N * K, rows);
}

int narrow_tile_rows(int N, bool copies) {
  // as narrow_kernel.h: 24 accumulators on AVX-512 (12 elsewhere), at most 12 rows, 8 for one vector;
  // a tile of at most 4 vectors, on the kernel-column copies at most 2 with 8-float vectors
  const int vmax = copies && vector_floats() != 16 ? 2 : 4;
  const int v = std::min(vmax, std::max(1, (N + vector_floats() - 1) / vector_floats()));
  return v == 1 ? 8 : std::min(12, (vector_floats() == 16 ? 24 : 12) / v);
}

void narrow_conv_rows(int m0, int m1, int L, int C, int KH, int KW, const float* A, const float* S, int64_t SP, int OW, float* Cm) {
  if (m1 <= m0) return;
  switch (current) {
    case Isa::Avx512: snarrow_conv_avx512(m0, m1, L, C, KH, KW, A, S, SP, OW, Cm); break;
    case Isa::Avx2: snarrow_conv_avx2(m0, m1, L, C, KH, KW, A, S, SP, OW, Cm); break;
    default: snarrow_conv_generic(m0, m1, L, C, KH, KW, A, S, SP, OW, Cm);
  }
}

void pack_weights(const float* w, int OC, int K, int vw, float* Wp) {
  const int nb = (OC + vw - 1) / vw;
  for (int b = 0; b < nb; b++) {
    float* o = Wp + static_cast<int64_t>(b) * K * vw;
    for (int k = 0; k < K; k++, o += vw)
      for (int l = 0; l < vw; l++) {
        const int c = b * vw + l;
        o[l] = c < OC ? w[static_cast<int64_t>(c) * K + k] : 0.f;
      }
  }
}

void sgemm_packed(int R, int K, int OC, const float* Wp, const float* X, int64_t ldx, float* Ct) {
  if (R <= 0 || OC <= 0) return;
  const int vw = vector_floats(), nb = (OC + vw - 1) / vw;
  const int g = current == Isa::Avx512 ? spacked_nb_avx512(R) : current == Isa::Avx2 ? spacked_nb_avx2(R) : spacked_nb_generic(R);
  auto blocks = [&](int b0, int b1) {
    switch (current) {
      case Isa::Avx512: spacked_avx512(b0, b1, R, K, OC, Wp, X, ldx, Ct); break;
      case Isa::Avx2: spacked_avx2(b0, b1, R, K, OC, Wp, X, ldx, Ct); break;
      default: spacked_generic(b0, b1, R, K, OC, Wp, X, ldx, Ct);
    }
  };
  // the blocks split between threads in groups of the tile's g blocks
  split_in_tiles(nb, g, 2.0 * OC * R * K, blocks);
}

const char* isa_name(Isa isa) { return isa == Isa::Avx512 ? "avx512" : isa == Isa::Avx2 ? "avx2" : "generic"; }

bool use_avx2_loops() { return current != Isa::Generic && have_avx2_kernel(); }

bool set_gemm_isa(Isa isa) {
  if (!cpu_has(isa)) return false;
  current = isa;
  return true;
}

namespace {

// B is either (B, ldb, tb) or, where cb is given, the implicit im2col matrix cb (tb false)
void gemm_core(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads, const ConvB* cb) {
  if (M <= 0 || N <= 0) return;
  auto scale = [&] {
    if (beta == 1.f) return;
    for (int i = 0; i < M; i++) {
      float* row = C + static_cast<int64_t>(i) * ldc;
      if (beta == 0.f) std::memset(row, 0, sizeof(float) * N);
      else for (int j = 0; j < N; j++) row[j] *= beta;
    }
  };
  if (K <= 0 || alpha == 0.f) {
    scale();
    return;
  }
  // the kernels apply beta themselves with the first K block (beta = 0 never reads C)
  int T = threads > 0 ? threads : num_threads();
  const double flops = 2.0 * M * N * K;
  const bool rows_path = !cb && !ta && tb && M <= ROWS_MAX_M && K >= 16;
  // too small to share; the dot-product kernel streams B once and shares from 2e5 FLOPs (B of 100K
  // floats at batch 1): DBN at batch 1, Zen 5, 2 threads, alternating in one process, 102 -> 80-89 us
  // (merged at 0.5: 57 -> 39-47), LeNet-5 66 -> 49-55 us (merged 33 -> 28-29) against 1e6
  if (flops < (rows_path ? 2e5 : 1e6)) T = 1;
  if (inside_parallel()) T = 1;  // called from pool work (k-means blocks, say): stay on this thread
  // a few rows times B stored by rows (a linear layer at batch 1 to 4): dot products straight from B
  if (rows_path) {
    auto rows = [&](int n0, int n1) { srows(M, n0, n1, K, alpha, A, lda, B, ldb, beta, C, ldc); };
    T = std::min(T, std::max(1, N / 64));
    if (T <= 1) rows(0, N);
    else parallel_for(T, [&](int t) { rows(static_cast<int>(static_cast<int64_t>(N) * t / T) & ~3, t == T - 1 ? N : static_cast<int>(static_cast<int64_t>(N) * (t + 1) / T) & ~3); }, T);
    return;
  }
  // few columns of C, many rows, B stored by rows (a classifier of 10 classes at batch 128): C
  // transposed, B's N rows against A's M rows, through the same dot-product kernel, then copied back;
  // the packed GEMM's 16- or 32-column panels would hold 10 (DBN's 2000 -> 10 at batch 128, Zen 5, 2
  // threads: see docs/performance.md)
  if (!cb && !ta && tb && N <= ROWS_T_MAX_N && M > N && K >= 16) {
    thread_local std::vector<float> ctv;
    ctv.resize(static_cast<size_t>(N) * M);
    float* const ct = ctv.data();  // the caller's buffer (the pool's threads have their own ctv)
    auto cols = [&](int m0, int m1) {
      srows(N, m0, m1, K, alpha, B, ldb, A, lda, 0.f, ct, M);
      for (int i = m0; i < m1; i++) {
        float* row = C + static_cast<int64_t>(i) * ldc;
        for (int j = 0; j < N; j++) {
          const float v = ct[static_cast<int64_t>(j) * M + i];
          row[j] = beta == 0.f ? v : v + beta * row[j];
        }
      }
    };
    T = std::min(T, std::max(1, M / 32));
    if (T <= 1) cols(0, M);
    else parallel_for(T, [&](int t) { cols(static_cast<int>(static_cast<int64_t>(M) * t / T) & ~3, t == T - 1 ? M : static_cast<int>(static_cast<int64_t>(M) * (t + 1) / T) & ~3); }, T);
    return;
  }
  if (T <= 1) {
    serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, cb);
    return;
  }
  T = std::min(T, num_threads());
  // a small C with a long K (weight gradients: K = batch x pixels): each thread takes a slice of K
  // into its own C, and the slices are summed
  if (static_cast<int64_t>(M) * N <= (1 << 16) && K >= 2048 * T) {
    scale();
    std::vector<std::vector<float>> part(T, std::vector<float>(static_cast<size_t>(M) * N));
    parallel_for(T, [&](int t) {
      const int k0 = static_cast<int>(static_cast<int64_t>(K) * t / T), k1 = static_cast<int>(static_cast<int64_t>(K) * (t + 1) / T);
      const float* Ap = ta ? A + static_cast<int64_t>(k0) * lda : A + k0;
      const float* Bp = cb ? nullptr : tb ? B + k0 : B + static_cast<int64_t>(k0) * ldb;
      ConvB sub;
      if (cb) {
        sub = *cb;
        sub.p0 += k0;
      }
      serial(ta, tb, M, N, k1 - k0, alpha, Ap, lda, Bp, ldb, 0.f, part[t].data(), N, cb ? &sub : nullptr);
    }, T);
    for (int i = 0; i < M; i++) {
      float* row = C + static_cast<int64_t>(i) * ldc;
      for (int t = 0; t < T; t++) {
        const float* p = part[t].data() + static_cast<int64_t>(i) * N;
        for (int j = 0; j < N; j++) row[j] += p[j];
      }
    }
    return;
  }
  // otherwise the threads share each packed B panel (C of more than 384 rows: they take its row blocks)
  // or each packed A block (they take its column pieces). That replaced independent column slices for
  // C of up to 384 rows (each thread packing all of op(A) itself, no synchronisation): in interleaved
  // runs against OpenBLAS on 2 threads the shared block was level or ahead on every such network
  // shape (fully connected layers at batch 128, the middle convolutions), by up to a third where the
  // machine's other work slowed one core, since the column pieces are claimed, not split in advance
  switch (current) {
    case Isa::Avx512: sgemm_avx512_par(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, T, cb); break;
    case Isa::Avx2: sgemm_avx2_par(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, T, cb); break;
    default: sgemm_generic_par(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, T, cb);
  }
}

}  // namespace

void sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads) {
  gemm_core(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, threads, nullptr);
}

void sgemm_conv(int M, int N, int K, float alpha, const float* A, int64_t lda, const ConvB& cb, float beta, float* C, int64_t ldc, int threads) {
  gemm_core(false, false, M, N, K, alpha, A, lda, nullptr, N, beta, C, ldc, threads, &cb);
}

}  // namespace nm
