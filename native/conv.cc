// im2col / col2im and pooling; batch norm forward and backward (per channel, parallel over channels).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels.h"
#include "threadpool.h"

namespace nm {

void im2col(const float* x, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, float* cols, int64_t ldc) {
  const int rows = C * KH * KW;
  auto row = [&](int r) {
    const int c = r / (KH * KW), kh = (r / KW) % KH, kw = r % KW;
    float* o = cols + static_cast<int64_t>(r) * ldc;
    for (int oh = 0; oh < OH; oh++, o += OW) {
      const int ih = oh * SH - PH + kh;
      if (ih < 0 || ih >= H) {
        std::memset(o, 0, sizeof(float) * OW);
        continue;
      }
      const float* src = x + (static_cast<int64_t>(c) * H + ih) * W;
      if (SW == 1) {
        // the valid run is contiguous: [ow0, ow1) reads src[ow - PW + kw]
        const int ow0 = std::max(0, PW - kw), ow1 = std::min(OW, W + PW - kw);
        for (int ow = 0; ow < std::min(ow0, OW); ow++) o[ow] = 0.f;
        if (ow1 > ow0) std::memcpy(o + ow0, src + ow0 - PW + kw, sizeof(float) * (ow1 - ow0));
        for (int ow = std::max(ow1, 0); ow < OW; ow++) o[ow] = 0.f;
      } else {
        int iw = kw - PW;
        for (int ow = 0; ow < OW; ow++, iw += SW) o[ow] = iw >= 0 && iw < W ? src[iw] : 0.f;
      }
    }
  };
  for (int r = 0; r < rows; r++) row(r);
}

void col2im(const float* cols, int64_t ldc, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, float* dx) {
  for (int c = 0; c < C; c++) {
    for (int kh = 0; kh < KH; kh++) {
      for (int kw = 0; kw < KW; kw++) {
        const float* o = cols + static_cast<int64_t>((c * KH + kh) * KW + kw) * ldc;
        for (int oh = 0; oh < OH; oh++, o += OW) {
          const int ih = oh * SH - PH + kh;
          if (ih < 0 || ih >= H) continue;
          float* dst = dx + (static_cast<int64_t>(c) * H + ih) * W;
          int iw = kw - PW;
          for (int ow = 0; ow < OW; ow++, iw += SW)
            if (iw >= 0 && iw < W) dst[iw] += o[ow];
        }
      }
    }
  }
}

void maxpool2d(const float* x, int N, int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW, int OH, int OW, float* out, int32_t* argmax) {
  const int64_t planes = static_cast<int64_t>(N) * C;
  auto plane = [&](int64_t nc) {
    const int64_t base = nc * H * W;
    int64_t o = nc * OH * OW;
    for (int oh = 0; oh < OH; oh++) {
      const int h0 = oh * SH - PH, hs = std::max(h0, 0), he = std::min(h0 + KH, H);
      for (int ow = 0; ow < OW; ow++, o++) {
        const int w0 = ow * SW - PW, ws = std::max(w0, 0), we = std::min(w0 + KW, W);
        float best = -std::numeric_limits<float>::infinity();
        int64_t bi = -1;
        for (int h = hs; h < he; h++)
          for (int w = ws; w < we; w++) {
            const int64_t i = base + static_cast<int64_t>(h) * W + w;
            const float v = x[i];
            if (bi < 0 || v > best || (v != v && best == best)) {
              best = v;
              bi = i;
            }
          }
        out[o] = best;
        argmax[o] = static_cast<int32_t>(bi);
      }
    }
  };
  const int T = planes * OH * OW > (1 << 16) ? num_threads() : 1;
  parallel_for(T, [&](int t) {
    for (int64_t nc = planes * t / T; nc < planes * (t + 1) / T; nc++) plane(nc);
  }, T);
}

void maxpool2d_backward(const float* gout, const int32_t* argmax, int64_t n, float* gx) {
  for (int64_t o = 0; o < n; o++) {
    const int32_t i = argmax[o];
    if (i >= 0) gx[i] += gout[o];
  }
}

void batchnorm_forward(const float* x, int N, int C, int64_t S, const float* gamma, const float* beta, float* rmean, float* rvar, bool training, float momentum, float eps, float* y, float* mean, float* invstd) {
  const double M = static_cast<double>(N) * S;
  auto channel = [&](int c) {
    double mu, var;
    if (training) {
      double s = 0;
      for (int n = 0; n < N; n++) {
        const float* p = x + (static_cast<int64_t>(n) * C + c) * S;
        float part = 0;
        for (int64_t i = 0; i < S; i++) part += p[i];
        s += part;
      }
      mu = s / M;
      double ss = 0;
      for (int n = 0; n < N; n++) {
        const float* p = x + (static_cast<int64_t>(n) * C + c) * S;
        const float m = static_cast<float>(mu);
        float part = 0;
        for (int64_t i = 0; i < S; i++) {
          const float d = p[i] - m;
          part += d * d;
        }
        ss += part;
      }
      var = ss / M;
      rmean[c] = static_cast<float>((1 - momentum) * rmean[c] + momentum * mu);
      rvar[c] = static_cast<float>((1 - momentum) * rvar[c] + momentum * (M > 1 ? ss / (M - 1) : var));
    } else {
      mu = rmean[c];
      var = rvar[c];
    }
    const float is = static_cast<float>(1.0 / std::sqrt(var + eps));
    mean[c] = static_cast<float>(mu);
    invstd[c] = is;
    const float scale = gamma[c] * is, shift = beta[c] - static_cast<float>(mu) * scale;
    for (int n = 0; n < N; n++) {
      const int64_t base = (static_cast<int64_t>(n) * C + c) * S;
      for (int64_t i = 0; i < S; i++) y[base + i] = x[base + i] * scale + shift;
    }
  };
  const int T = static_cast<double>(N) * C * S > (1 << 15) ? std::min(num_threads(), C) : 1;
  parallel_for(T, [&](int t) {
    for (int c = C * t / T; c < C * (t + 1) / T; c++) channel(c);
  }, T);
}

void batchnorm_backward(const float* x, const float* g, int N, int C, int64_t S, const float* gamma, const float* mean, const float* invstd, bool training, float* gx, float* ggamma, float* gbeta) {
  const double M = static_cast<double>(N) * S;
  auto channel = [&](int c) {
    const float mu = mean[c], is = invstd[c];
    double sg = 0, sgx = 0;
    for (int n = 0; n < N; n++) {
      const int64_t base = (static_cast<int64_t>(n) * C + c) * S;
      float a = 0, b = 0;
      for (int64_t i = 0; i < S; i++) {
        const float gi = g[base + i];
        a += gi;
        b += gi * (x[base + i] - mu);
      }
      sg += a;
      sgx += static_cast<double>(b) * is;
    }
    ggamma[c] = static_cast<float>(sgx);
    gbeta[c] = static_cast<float>(sg);
    const float k = gamma[c] * is;
    const float a = static_cast<float>(sg / M), b = static_cast<float>(sgx / M);
    for (int n = 0; n < N; n++) {
      const int64_t base = (static_cast<int64_t>(n) * C + c) * S;
      if (training)
        for (int64_t i = 0; i < S; i++) gx[base + i] = k * (g[base + i] - a - (x[base + i] - mu) * is * b);
      else
        for (int64_t i = 0; i < S; i++) gx[base + i] = k * g[base + i];
    }
  };
  const int T = static_cast<double>(N) * C * S > (1 << 15) ? std::min(num_threads(), C) : 1;
  parallel_for(T, [&](int t) {
    for (int c = C * t / T; c < C * (t + 1) / T; c++) channel(c);
  }, T);
}

}  // namespace nm
