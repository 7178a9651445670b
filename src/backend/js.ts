// The pure TypeScript backend: every kernel of the interface, for float32 and float64. It is the
// reference the other backends are tested against and the fallback where they cannot load.

import { gemmJs } from './js-gemm.js';
import type { Backend, BiasActivation, BinaryOp, ConvGeometry, Epilogue, FloatArray, Kernels, ReduceOp, UnaryOp } from './types.js';

// x (C,H,W) at xOff -> cols (C*KH*KW, OH*OW) at colsOff, row stride ldCols
function im2colOne(
  x: FloatArray, xOff: number, C: number, H: number, W: number,
  KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
  cols: FloatArray, colsOff: number, ldCols: number,
): void {
  for (let c = 0; c < C; c++) {
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        let o = colsOff + ((c * KH + kh) * KW + kw) * ldCols;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * SH - PH + kh;
          if (ih < 0 || ih >= H) {
            cols.fill(0, o, o + OW);
            o += OW;
            continue;
          }
          const rowBase = xOff + (c * H + ih) * W;
          let iw = kw - PW;
          for (let ow = 0; ow < OW; ow++, iw += SW) cols[o++] = iw >= 0 && iw < W ? x[rowBase + iw] : 0;
        }
      }
    }
  }
}

// cols (C*KH*KW, OH*OW) at colsOff, row stride ldCols -> dx (C,H,W) at dxOff, +=
function col2imOne(
  cols: FloatArray, colsOff: number, ldCols: number, C: number, H: number, W: number,
  KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
  dx: FloatArray, dxOff: number,
): void {
  for (let c = 0; c < C; c++) {
    for (let kh = 0; kh < KH; kh++) {
      for (let kw = 0; kw < KW; kw++) {
        let o = colsOff + ((c * KH + kh) * KW + kw) * ldCols;
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * SH - PH + kh;
          if (ih < 0 || ih >= H) {
            o += OW;
            continue;
          }
          const rowBase = dxOff + (c * H + ih) * W;
          let iw = kw - PW;
          for (let ow = 0; ow < OW; ow++, iw += SW, o++) if (iw >= 0 && iw < W) dx[rowBase + iw] += cols[o];
        }
      }
    }
  }
}

// G images (G,C,H,W) -> cols (C*KH*KW, G*OH*OW): image i in columns i*OH*OW..
function im2col(
  x: FloatArray, xOff: number, G: number, C: number, H: number, W: number,
  KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
  cols: FloatArray, colsOff: number, ldCols: number,
): void {
  for (let i = 0; i < G; i++) im2colOne(x, xOff + i * C * H * W, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, cols, colsOff + i * OH * OW, ldCols);
}

function col2im(
  cols: FloatArray, colsOff: number, ldCols: number, G: number, C: number, H: number, W: number,
  KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
  dx: FloatArray, dxOff: number,
): void {
  for (let i = 0; i < G; i++) col2imOne(cols, colsOff + i * OH * OW, ldCols, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, dx, dxOff + i * C * H * W);
}

// x (N,C,H,W) -> out, argmax (N,C,OH,OW)
function maxPool2d(
  x: FloatArray, N: number, C: number, H: number, W: number,
  KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
  out: FloatArray, argmax: Int32Array,
): void {
  let o = 0;
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * SH - PH;
      const hs = Math.max(h0, 0), he = Math.min(h0 + KH, H);
      for (let ow = 0; ow < OW; ow++, o++) {
        const w0 = ow * SW - PW;
        const ws = Math.max(w0, 0), we = Math.min(w0 + KW, W);
        let best = -Infinity;
        let bi = -1;
        for (let h = hs; h < he; h++) {
          for (let w = ws; w < we; w++) {
            const i = base + h * W + w;
            const v = x[i];
            // the first NaN wins and sticks, as NaN must propagate
            if (bi < 0 || v > best || (v !== v && best === best)) {
              best = v;
              bi = i;
            }
          }
        }
        out[o] = best;
        if (argmax.length) argmax[o] = bi;
      }
    }
  }
}

function maxPool2dBackward(gout: FloatArray, argmax: Int32Array, gx: FloatArray): void {
  for (let o = 0; o < gout.length; o++) {
    const i = argmax[o];
    if (i >= 0) gx[i] += gout[o];
  }
}

function avgPool2d(
  x: FloatArray, N: number, C: number, H: number, W: number,
  KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
  out: FloatArray,
): void {
  const inv = 1 / (KH * KW);
  let o = 0;
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * SH - PH;
      const hs = Math.max(h0, 0), he = Math.min(h0 + KH, H);
      for (let ow = 0; ow < OW; ow++, o++) {
        const w0 = ow * SW - PW;
        const ws = Math.max(w0, 0), we = Math.min(w0 + KW, W);
        let s = 0;
        for (let h = hs; h < he; h++) for (let w = ws; w < we; w++) s += x[base + h * W + w];
        out[o] = s * inv;
      }
    }
  }
}

function avgPool2dBackward(
  gout: FloatArray, N: number, C: number, H: number, W: number,
  KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
  gx: FloatArray,
): void {
  const inv = 1 / (KH * KW);
  let o = 0;
  for (let nc = 0; nc < N * C; nc++) {
    const base = nc * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = oh * SH - PH;
      const hs = Math.max(h0, 0), he = Math.min(h0 + KH, H);
      for (let ow = 0; ow < OW; ow++, o++) {
        const w0 = ow * SW - PW;
        const ws = Math.max(w0, 0), we = Math.min(w0 + KW, W);
        const g = gout[o] * inv;
        for (let h = hs; h < he; h++) for (let w = ws; w < we; w++) gx[base + h * W + w] += g;
      }
    }
  }
}

function unary(op: UnaryOp, x: FloatArray, out: FloatArray, p0: number, p1: number): void {
  const n = x.length;
  switch (op) {
    case 'neg': for (let i = 0; i < n; i++) out[i] = -x[i]; break;
    case 'exp': for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]); break;
    case 'log': for (let i = 0; i < n; i++) out[i] = Math.log(x[i]); break;
    case 'sqrt': for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]); break;
    case 'abs': for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]); break;
    case 'relu': for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v > 0 || v !== v ? v : 0; } break; // NaN passes through
    case 'sigmoid':
      for (let i = 0; i < n; i++) {
        const v = x[i];
        if (v >= 0) out[i] = 1 / (1 + Math.exp(-v));
        else { const e = Math.exp(v); out[i] = e / (1 + e); }
      }
      break;
    case 'tanh': for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]); break;
    case 'square': for (let i = 0; i < n; i++) out[i] = x[i] * x[i]; break;
    case 'sign': for (let i = 0; i < n; i++) out[i] = Math.sign(x[i]); break;
    case 'powScalar':
      if (p0 === 2) for (let i = 0; i < n; i++) out[i] = x[i] * x[i];
      else for (let i = 0; i < n; i++) out[i] = Math.pow(x[i], p0);
      break;
    case 'clamp': for (let i = 0; i < n; i++) { const v = x[i]; out[i] = v < p0 ? p0 : v > p1 ? p1 : v; } break;
    case 'affine': for (let i = 0; i < n; i++) out[i] = x[i] * p0 + p1; break;
    default: throw new Error(`unary: unknown op '${op as string}'`);
  }
}

function biasActivate(y: FloatArray, rows: number, cols: number, bias: FloatArray, op: BiasActivation): void {
  if (y.length !== rows * cols) throw new Error(`biasActivate: y has ${y.length} elements, expected rows*cols = ${rows * cols}`);
  if (bias.length !== 0 && bias.length !== cols) throw new Error(`biasActivate: bias has ${bias.length} elements, expected 0 or cols = ${cols}`);
  if (op !== 'none' && op !== 'relu' && op !== 'sigmoid' && op !== 'tanh') throw new Error(`biasActivate: unknown op '${op as string}' (none, relu, sigmoid or tanh)`);
  if (bias.length) for (let r = 0, i = 0; r < rows; r++) for (let c = 0; c < cols; c++, i++) y[i] += bias[c];
  if (op !== 'none') unary(op, y, y, 0, 0);
}

function binaryRow(
  op: BinaryOp, a: FloatArray, ao: number, sa: number, b: FloatArray, bo: number, sb: number,
  out: FloatArray, o: number, n: number, p0: number, p1: number,
): void {
  switch (op) {
    case 'add': for (let j = 0; j < n; j++, ao += sa, bo += sb) out[o + j] = a[ao] + b[bo]; break;
    case 'sub': for (let j = 0; j < n; j++, ao += sa, bo += sb) out[o + j] = a[ao] - b[bo]; break;
    case 'mul': for (let j = 0; j < n; j++, ao += sa, bo += sb) out[o + j] = a[ao] * b[bo]; break;
    case 'div': for (let j = 0; j < n; j++, ao += sa, bo += sb) out[o + j] = a[ao] / b[bo]; break;
    case 'pow': for (let j = 0; j < n; j++, ao += sa, bo += sb) out[o + j] = Math.pow(a[ao], b[bo]); break;
    case 'maximum':
      for (let j = 0; j < n; j++, ao += sa, bo += sb) {
        const x = a[ao], y = b[bo];
        out[o + j] = x !== x || y !== y ? NaN : x >= y ? x : y;
      }
      break;
    case 'reluGrad': for (let j = 0; j < n; j++, ao += sa, bo += sb) out[o + j] = b[bo] > 0 ? a[ao] : 0; break;
    case 'sigmoidGrad': for (let j = 0; j < n; j++, ao += sa, bo += sb) { const y = b[bo]; out[o + j] = a[ao] * y * (1 - y); } break;
    case 'tanhGrad': for (let j = 0; j < n; j++, ao += sa, bo += sb) { const y = b[bo]; out[o + j] = a[ao] * (1 - y * y); } break;
    case 'clampGrad': for (let j = 0; j < n; j++, ao += sa, bo += sb) { const x = b[bo]; out[o + j] = x >= p0 && x <= p1 ? a[ao] : 0; } break;
    case 'geMask': for (let j = 0; j < n; j++, ao += sa, bo += sb) out[o + j] = a[ao] >= b[bo] ? 1 : 0; break;
    case 'eqMask': for (let j = 0; j < n; j++, ao += sa, bo += sb) out[o + j] = a[ao] === b[bo] ? 1 : 0; break;
    default: throw new Error(`binary: unknown op '${op as string}'`);
  }
}

// out (shape) = op(a, b): walk out in order, the last axis in a tight loop, the others by counters
function binary(
  op: BinaryOp, a: FloatArray, as: number[], b: FloatArray, bs: number[],
  out: FloatArray, shape: number[], p0: number, p1: number,
): void {
  const nd = shape.length;
  if (nd === 0) {
    binaryRow(op, a, 0, 0, b, 0, 0, out, 0, 1, p0, p1);
    return;
  }
  const last = shape[nd - 1];
  let total = 1;
  for (const d of shape) total *= d;
  if (total === 0) return;
  const rows = total / last;
  const idx = new Array<number>(nd).fill(0);
  let ao = 0, bo = 0, o = 0;
  for (let r = 0; r < rows; r++) {
    binaryRow(op, a, ao, as[nd - 1], b, bo, bs[nd - 1], out, o, last, p0, p1);
    o += last;
    for (let d = nd - 2; d >= 0; d--) {
      ao += as[d];
      bo += bs[d];
      if (++idx[d] < shape[d]) break;
      ao -= as[d] * shape[d];
      bo -= bs[d] * shape[d];
      idx[d] = 0;
    }
  }
}

function reduce(op: ReduceOp, x: FloatArray, shape: number[], os: number[], out: FloatArray): void {
  out.fill(op === 'sum' ? 0 : -Infinity);
  const nd = shape.length;
  if (nd === 0) {
    out[0] = x[0];
    return;
  }
  const last = shape[nd - 1];
  let total = 1;
  for (const d of shape) total *= d;
  if (total === 0) return;
  const rows = total / last;
  const idx = new Array<number>(nd).fill(0);
  const sl = os[nd - 1];
  let o = 0, xi = 0;
  for (let r = 0; r < rows; r++) {
    if (op === 'sum') {
      if (sl === 0) {
        let s = 0;
        for (let j = 0; j < last; j++) s += x[xi + j];
        out[o] += s;
      } else for (let j = 0, q = o; j < last; j++, q += sl) out[q] += x[xi + j];
    } else {
      for (let j = 0, q = o; j < last; j++, q += sl) {
        const v = x[xi + j], c = out[q];
        if (c === c && !(v <= c)) out[q] = v; // a NaN takes the place and keeps it
      }
    }
    xi += last;
    for (let d = nd - 2; d >= 0; d--) {
      o += os[d];
      if (++idx[d] < shape[d]) break;
      o -= os[d] * shape[d];
      idx[d] = 0;
    }
  }
}

function argmax(x: FloatArray, outer: number, dim: number, inner: number, out: Int32Array): void {
  for (let p = 0; p < outer; p++) {
    for (let q = 0; q < inner; q++) {
      const base = p * dim * inner + q;
      let best = x[base];
      let bi = 0;
      for (let d = 1; d < dim; d++) {
        const v = x[base + d * inner];
        if (v > best || (v !== v && best === best)) {
          best = v;
          bi = d;
        }
      }
      out[p * inner + q] = bi;
    }
  }
}

function convEpilogue(
  x: FloatArray, xOff: number, channelMajor: boolean, G: number, C: number, H: number, W: number,
  scale: FloatArray, shift: FloatArray, relu: boolean, pool: number, out: FloatArray, outOff: number,
): void {
  const L = H * W;
  const OH = pool === 2 ? Math.floor(H / 2) : H, OW = pool === 2 ? Math.floor(W / 2) : W;
  for (let i = 0; i < G; i++) {
    for (let c = 0; c < C; c++) {
      const s = scale.length ? scale[c] : 1, t = shift.length ? shift[c] : 0;
      const src = xOff + (channelMajor ? (c * G + i) * L : (i * C + c) * L);
      const dst = outOff + (i * C + c) * OH * OW;
      const f = (q: number) => {
        const y = s * x[src + q] + t;
        return relu && y < 0 ? 0 : y;
      };
      if (pool !== 2) {
        for (let q = 0; q < L; q++) out[dst + q] = f(q);
        continue;
      }
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const q = 2 * oh * W + 2 * ow;
          let best = f(q);
          for (const v of [f(q + 1), f(q + W), f(q + W + 1)]) if (v > best || (v !== v && best === best)) best = v;
          out[dst + oh * OW + ow] = best;
        }
      }
    }
  }
}

// the reference: im2col of a few images at a time, one GEMM, the epilogue
function convForward(x: FloatArray, xOff: number, geometry: ConvGeometry, w: FloatArray, epilogue: Epilogue, out: FloatArray, outOff: number): void {
  const { N, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW } = geometry;
  const pool = epilogue.pool ?? 1, relu = epilogue.relu ?? false;
  const none = x instanceof Float64Array ? new Float64Array(0) : new Float32Array(0);
  const scale = epilogue.scale ?? none, shift = epilogue.shift ?? none;
  const L = OH * OW, CKK = C * KH * KW;
  const POL = pool === 2 ? Math.floor(OH / 2) * Math.floor(OW / 2) : L;
  const G = Math.max(1, Math.min(N, Math.floor((1 << 20) / Math.max(1, CKK * L))));
  const make = (n: number) => (x instanceof Float64Array ? new Float64Array(n) : new Float32Array(n));
  const cols = make(CKK * G * L), tmp = make(OC * G * L);
  for (let n0 = 0; n0 < N; n0 += G) {
    const g = Math.min(G, N - n0);
    im2col(x, xOff + n0 * C * H * W, g, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW, cols, 0, g * L);
    gemmJs(false, false, OC, g * L, CKK, 1, w, 0, CKK, cols, 0, g * L, 0, tmp, 0, g * L);
    convEpilogue(tmp, 0, true, g, OC, OH, OW, scale, shift, relu, pool, out, outOff + n0 * OC * POL);
  }
}

function permute(x: FloatArray, shape: number[], perm: number[], out: FloatArray): void {
  const nd = shape.length;
  const xs = new Array<number>(nd);
  let s = 1;
  for (let d = nd - 1; d >= 0; d--) {
    xs[d] = s;
    s *= shape[d];
  }
  const total = s;
  if (total === 0) return;
  if (nd === 0) {
    out[0] = x[0];
    return;
  }
  const oshape = perm.map((p) => shape[p]);
  const ostr = perm.map((p) => xs[p]); // x stride of each out axis
  const last = oshape[nd - 1];
  const sl = ostr[nd - 1];
  const rows = total / last;
  const idx = new Array<number>(nd).fill(0);
  let xi = 0, o = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0, q = xi; j < last; j++, q += sl) out[o++] = x[q];
    for (let d = nd - 2; d >= 0; d--) {
      xi += ostr[d];
      if (++idx[d] < oshape[d]) break;
      xi -= ostr[d] * oshape[d];
      idx[d] = 0;
    }
  }
}

function softmax(x: FloatArray, outer: number, dim: number, inner: number, out: FloatArray, log: boolean): void {
  for (let p = 0; p < outer; p++) {
    for (let q = 0; q < inner; q++) {
      const base = p * dim * inner + q;
      let m = -Infinity;
      for (let d = 0; d < dim; d++) {
        const v = x[base + d * inner];
        if (!(v <= m)) m = v;
      }
      let s = 0;
      for (let d = 0; d < dim; d++) s += Math.exp(x[base + d * inner] - m);
      if (log) {
        const ls = m + Math.log(s);
        for (let d = 0; d < dim; d++) out[base + d * inner] = x[base + d * inner] - ls;
      } else {
        const inv = 1 / s;
        for (let d = 0; d < dim; d++) out[base + d * inner] = Math.exp(x[base + d * inner] - m) * inv;
      }
    }
  }
}

function softmaxBackward(y: FloatArray, g: FloatArray, outer: number, dim: number, inner: number, gx: FloatArray, log: boolean): void {
  for (let p = 0; p < outer; p++) {
    for (let q = 0; q < inner; q++) {
      const base = p * dim * inner + q;
      let s = 0;
      if (log) {
        for (let d = 0; d < dim; d++) s += g[base + d * inner];
        for (let d = 0; d < dim; d++) {
          const i = base + d * inner;
          gx[i] = g[i] - Math.exp(y[i]) * s;
        }
      } else {
        for (let d = 0; d < dim; d++) s += g[base + d * inner] * y[base + d * inner];
        for (let d = 0; d < dim; d++) {
          const i = base + d * inner;
          gx[i] = y[i] * (g[i] - s);
        }
      }
    }
  }
}

function crossEntropy(logits: FloatArray, N: number, C: number, targets: Int32Array, probs: FloatArray): number {
  softmax(logits, N, C, 1, probs, false);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    const row = n * C;
    let m = -Infinity;
    for (let c = 0; c < C; c++) if (!(logits[row + c] <= m)) m = logits[row + c];
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(logits[row + c] - m);
    loss += m + Math.log(s) - logits[row + targets[n]];
  }
  return N > 0 ? loss / N : 0;
}

function batchNormForward(
  x: FloatArray, N: number, C: number, S: number, gamma: FloatArray, beta: FloatArray,
  runningMean: FloatArray, runningVar: FloatArray, training: boolean, momentum: number, eps: number,
  y: FloatArray, mean: FloatArray, invstd: FloatArray, relu: boolean,
): void {
  const M = N * S;
  for (let c = 0; c < C; c++) {
    let mu: number, v: number;
    if (training) {
      let s = 0;
      for (let n = 0; n < N; n++) {
        const base = (n * C + c) * S;
        for (let i = 0; i < S; i++) s += x[base + i];
      }
      mu = s / M;
      let ss = 0;
      for (let n = 0; n < N; n++) {
        const base = (n * C + c) * S;
        for (let i = 0; i < S; i++) {
          const d = x[base + i] - mu;
          ss += d * d;
        }
      }
      v = ss / M;
      runningMean[c] = (1 - momentum) * runningMean[c] + momentum * mu;
      runningVar[c] = (1 - momentum) * runningVar[c] + momentum * (M > 1 ? (ss / (M - 1)) : v);
    } else {
      mu = runningMean[c];
      v = runningVar[c];
    }
    const is = 1 / Math.sqrt(v + eps);
    mean[c] = mu;
    invstd[c] = is;
    const scale = gamma[c] * is;
    const shift = beta[c] - mu * scale;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      if (relu) {
        for (let i = 0; i < S; i++) {
          // the sign decides before the store rounds (rounding keeps it), so float32 and float64
          // outputs are both relu of the plain forward's
          const v = x[base + i] * scale + shift;
          y[base + i] = v > 0 || v !== v ? v : 0;
        }
      } else {
        for (let i = 0; i < S; i++) y[base + i] = x[base + i] * scale + shift;
      }
    }
  }
}

function batchNormBackward(
  x: FloatArray, g: FloatArray, N: number, C: number, S: number, gamma: FloatArray,
  mean: FloatArray, invstd: FloatArray, training: boolean, gx: FloatArray, ggamma: FloatArray, gbeta: FloatArray,
  y: FloatArray,
): void {
  const M = N * S;
  // with a fused ReLU, the gradient counts only where its output y is positive
  const masked = y.length > 0;
  const ge = (i: number) => (masked && !(y[i] > 0) ? 0 : g[i]);
  for (let c = 0; c < C; c++) {
    const mu = mean[c], is = invstd[c];
    let sg = 0, sgx = 0;
    for (let n = 0; n < N; n++) {
      const base = (n * C + c) * S;
      for (let i = 0; i < S; i++) {
        const gi = ge(base + i);
        sg += gi;
        sgx += gi * (x[base + i] - mu) * is;
      }
    }
    ggamma[c] = sgx;
    gbeta[c] = sg;
    const k = gamma[c] * is;
    if (training) {
      const a = sg / M, b = sgx / M;
      for (let n = 0; n < N; n++) {
        const base = (n * C + c) * S;
        for (let i = 0; i < S; i++) {
          const xh = (x[base + i] - mu) * is;
          gx[base + i] = k * (ge(base + i) - a - xh * b);
        }
      }
    } else {
      for (let n = 0; n < N; n++) {
        const base = (n * C + c) * S;
        for (let i = 0; i < S; i++) gx[base + i] = k * ge(base + i);
      }
    }
  }
}

// X (n,d), Y (m,d) -> out (n,m), computed directly (exact for duplicates)
function pairwiseSqDist(X: FloatArray, n: number, Y: FloatArray, m: number, d: number, out: FloatArray): void {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let q = 0; q < d; q++) {
        const t = X[i * d + q] - Y[j * d + q];
        s += t * t;
      }
      out[i * m + j] = s;
    }
  }
}

function kmeansStep(
  X: FloatArray, n: number, d: number, centroids: FloatArray, k: number,
  assign: Int32Array, newCentroids: FloatArray, counts: Int32Array,
): number {
  const sums = new Float64Array(k * d);
  counts.fill(0);
  let inertia = 0;
  for (let i = 0; i < n; i++) {
    let best = 0, bd = Infinity;
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let q = 0; q < d; q++) {
        const t = X[i * d + q] - centroids[c * d + q];
        s += t * t;
      }
      if (s < bd) {
        bd = s;
        best = c;
      }
    }
    assign[i] = best;
    counts[best]++;
    inertia += bd;
    for (let q = 0; q < d; q++) sums[best * d + q] += X[i * d + q];
  }
  for (let c = 0; c < k; c++) {
    for (let q = 0; q < d; q++) newCentroids[c * d + q] = counts[c] > 0 ? sums[c * d + q] / counts[c] : centroids[c * d + q];
  }
  return inertia;
}

function flipConvWeights(w: FloatArray, OC: number, C: number, kk: number, out: FloatArray): void {
  if (w.length !== OC * C * kk || out.length !== w.length) throw new Error(`flipConvWeights: w has ${w.length} and out ${out.length} elements, OC * C * kk is ${OC * C * kk}`);
  const rowStride = C * kk;
  // in the destination's order (twice as fast as the source's on 512x512x3x3)
  let dst = 0;
  for (let c = 0; c < C; c++)
    for (let o = 0, src = c * kk + kk - 1; o < OC; o++, src += rowStride, dst += kk)
      for (let q = 0; q < kk; q++) out[dst + q] = w[src - q];
}

function sgdUpdate(p: FloatArray, g: FloatArray, v: FloatArray, lr: number, mu: number, wd: number, nesterov: boolean): void {
  if (g.length !== p.length) throw new Error(`sgdUpdate: g has ${g.length} elements, p has ${p.length}`);
  if (mu === 0) {
    for (let j = 0; j < p.length; j++) p[j] -= lr * (g[j] + wd * p[j]);
    return;
  }
  if (v.length !== p.length) throw new Error(`sgdUpdate: v has ${v.length} elements, p has ${p.length}`);
  for (let j = 0; j < p.length; j++) {
    const gj = g[j] + wd * p[j];
    const vj = mu * v[j] + gj;
    v[j] = vj;
    p[j] -= lr * (nesterov ? gj + mu * vj : vj);
  }
}

// the bfloat16 rounding on a float32's bits (native/bf16.h does the same): round to nearest, ties to
// even; a NaN keeps its sign and upper payload with the quiet bit set
const BITS = new Uint32Array(1), FLOAT = new Float32Array(BITS.buffer);
export function bf16Round(v: number): number {
  FLOAT[0] = v;
  let u = BITS[0];
  if ((u & 0x7fffffff) > 0x7f800000) u = (u | 0x00400000) & 0xffff0000;
  else u = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
  BITS[0] = u >>> 0;
  return FLOAT[0];
}

function roundBf16(x: FloatArray, out: FloatArray): void {
  if (out.length !== x.length) throw new Error(`roundBf16: out has ${out.length} elements, x has ${x.length}`);
  for (let i = 0; i < x.length; i++) out[i] = bf16Round(x[i]);
}

// no direct weight gradient here: conv2d's backward goes through im2col and gemm
function convWeightGrad(): boolean {
  return false;
}

export const jsKernels: Kernels = {
  gemm: gemmJs,
  im2col,
  col2im,
  maxPool2d,
  maxPool2dBackward,
  avgPool2d,
  avgPool2dBackward,
  unary,
  biasActivate,
  binary,
  reduce,
  argmax,
  permute,
  sgdUpdate,
  roundBf16,
  flipConvWeights,
  convEpilogue,
  convForward,
  packConvWeights: () => null,
  winogradTile: () => 0,
  convAlgorithm: () => ({ forward: 'im2col-gemm', tile: 0, width: 0, weightGrad: 'im2col-gemm', weightGradTile: 0 }),
  winogradWeights: () => null,
  convWeightGrad,
  softmax,
  softmaxBackward,
  crossEntropy,
  batchNormForward,
  batchNormBackward,
  pairwiseSqDist,
  kmeansStep,
};

export const jsBackend: Backend = {
  name: 'js',
  priority: 0,
  dtypes: ['float32', 'float64'],
  kernels: jsKernels,
};
