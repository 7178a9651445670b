// The WGSL compute shaders of the WebGPU backend. Every shader keeps to WebGPU's compatibility limits
// (at most 128 invocations per workgroup, 16 KB of workgroup memory; up to 6 storage buffers, within
// what every adapter offers when asked), so the same
// code runs on a software adapter (Mesa's llvmpipe through OpenGL ES) in CI and on an NVIDIA GPU
// through Vulkan. 1-D kernels index with a 2-D grid so that more than 65,535 workgroups can run.

/** the linear index of a thread in a 1-D kernel launched on a 2-D grid of 128-wide workgroups */
const IDX = /* wgsl */ `
fn gidx(wid: vec3u, nwg: vec3u, lid: vec3u) -> u32 { return (wid.y * nwg.x + wid.x) * 128u + lid.x; }`;
const ARGS1 = '@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_id) lid: vec3u';

/**
 * A 1-D kernel: the uniform struct P (its fields), the storage buffers from binding 1 ([name, access,
 * element type (f32 unless given)]), and a body that sees i, the thread's linear index (launched on
 * a 2-D grid of 128-wide workgroups, so more than 65,535 workgroups can run) and does its own bound check.
 */
function kernel1d(fields: string, bindings: [string, 'read' | 'read_write', string?][], body: string, helpers = ''): string {
  return `
struct P { ${fields} }
@group(0) @binding(0) var<uniform> p: P;
${bindings.map(([name, access, type], k) => `@group(0) @binding(${k + 1}) var<storage, ${access}> ${name}: array<${type ?? 'f32'}>;`).join('\n')}
${IDX}
${helpers}
@compute @workgroup_size(128)
fn main(${ARGS1}) {
  let i = gidx(wid, nwg, lid);
${body}
}`;
}

/** a register-blocked SGEMM tiling: a workgroup of (BN/TN) × (BM/TM) threads computes a BM×BN tile of
 * C, TM×TN outputs per thread, over K in steps of BK through workgroup memory */
export interface GemmTiling {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

/** 64×64 tiles, 8×4 per thread, 128 threads: fits every adapter */
export const GEMM_SMALL: GemmTiling = { BM: 64, BN: 64, BK: 16, TM: 8, TN: 4 };
/** 128×64 tiles, 8×8 per thread, 128 threads */
export const GEMM_TALL: GemmTiling = { BM: 128, BN: 64, BK: 16, TM: 8, TN: 8 };
/** 128×128 tiles, 8×8 per thread, 256 threads: core adapters only */
export const GEMM_LARGE: GemmTiling = { BM: 128, BN: 128, BK: 8, TM: 8, TN: 8 };

/**
 * C = alpha · op(A) · op(B) + beta · C, row-major, op = transpose where ta/tb is 1, for one tiling.
 * Tiles of A and B are stored k-major in workgroup memory; each thread keeps its TM×TN outputs in
 * registers and reads TM values of A and TN of B per k.
 */
export function gemmShader(t: GemmTiling): string {
  const { BM, BN, BK, TM, TN } = t;
  const WX = BN / TN, WY = BM / TM, T = WX * WY;
  if (!Number.isInteger(WX) || !Number.isInteger(WY) || (BM * BK) % T || (BN * BK) % T) throw new Error(`gemm tiling ${JSON.stringify(t)} does not divide evenly`);
  return /* wgsl */ `
struct P { M: u32, N: u32, K: u32, ta: u32, tb: u32, lda: u32, ldb: u32, ldc: u32, alpha: f32, beta: f32, offA: u32, offB: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
var<workgroup> As: array<f32, ${BM * BK}>;
var<workgroup> Bs: array<f32, ${BN * BK}>;
@compute @workgroup_size(${WX}, ${WY})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * ${BM}u;
  let col0 = wg.x * ${BN}u;
  var acc: array<f32, ${TM * TN}>;
  for (var i = 0u; i < ${TM * TN}u; i++) { acc[i] = 0.0; }
  var a: array<f32, ${TM}>;
  var b: array<f32, ${TN}>;
  for (var k0 = 0u; k0 < p.K; k0 += ${BK}u) {
    for (var i = 0u; i < ${(BM * BK) / T}u; i++) {
      let e = li + i * ${T}u;
      var r: u32; var kk: u32;
      if (p.ta == 1u) { r = e % ${BM}u; kk = e / ${BM}u; } else { r = e / ${BK}u; kk = e % ${BK}u; }
      let gr = row0 + r; let gk = k0 + kk;
      var v = 0.0;
      if (gr < p.M && gk < p.K) {
        if (p.ta == 1u) { v = A[p.offA + gk * p.lda + gr]; } else { v = A[p.offA + gr * p.lda + gk]; }
      }
      As[kk * ${BM}u + r] = v;
    }
    for (var i = 0u; i < ${(BN * BK) / T}u; i++) {
      let e = li + i * ${T}u;
      var c: u32; var kk: u32;
      if (p.tb == 1u) { c = e / ${BK}u; kk = e % ${BK}u; } else { c = e % ${BN}u; kk = e / ${BN}u; }
      let gc = col0 + c; let gk = k0 + kk;
      var v = 0.0;
      if (gk < p.K && gc < p.N) {
        if (p.tb == 1u) { v = B[p.offB + gc * p.ldb + gk]; } else { v = B[p.offB + gk * p.ldb + gc]; }
      }
      Bs[kk * ${BN}u + c] = v;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      for (var i = 0u; i < ${TM}u; i++) { a[i] = As[kk * ${BM}u + lid.y * ${TM}u + i]; }
      for (var j = 0u; j < ${TN}u; j++) { b[j] = Bs[kk * ${BN}u + lid.x * ${TN}u + j]; }
      for (var i = 0u; i < ${TM}u; i++) {
        for (var j = 0u; j < ${TN}u; j++) { acc[i * ${TN}u + j] = fma(a[i], b[j], acc[i * ${TN}u + j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < ${TM}u; i++) {
    let r = row0 + lid.y * ${TM}u + i;
    if (r >= p.M) { break; }
    for (var j = 0u; j < ${TN}u; j++) {
      let c = col0 + lid.x * ${TN}u + j;
      if (c < p.N) {
        let o = r * p.ldc + c;
        var v = p.alpha * acc[i * ${TN}u + j];
        if (p.beta != 0.0) { v += p.beta * C[o]; }
        C[o] = v;
      }
    }
  }
}`;
}

/** Y[i] += bias[channel of i] for a (N, C, S) layout */
export const BIAS_ADD = kernel1d('n: u32, C: u32, S: u32, pad: u32', [['bias', 'read'], ['Y', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  Y[i] += bias[(i / p.S) % p.C];`);

/** out[c] = Σ over n, s of X[(n·C + c)·S + s]: one workgroup per channel */
export const CHANNEL_SUM = /* wgsl */ `
struct P { N: u32, C: u32, S: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> red: array<f32, 128>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wg.x;
  let M = p.N * p.S;
  var s = 0.0;
  for (var j = lid.x; j < M; j += 128u) {
    let n = j / p.S; let q = j % p.S;
    s += X[(n * p.C + c) * p.S + q];
  }
  red[lid.x] = s;
  workgroupBarrier();
  for (var w = 64u; w > 0u; w >>= 1u) {
    if (lid.x < w) { red[lid.x] += red[lid.x + w]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { out[c] = red[0]; }
}`;

/**
 * Batch norm statistics in training: per channel the batch mean and biased variance, written as
 * stats[2c] = mean, stats[2c+1] = 1/sqrt(var + eps); the running statistics move by momentum (the
 * running variance with the unbiased estimate), as the CPU kernels do.
 */
export const BN_STATS = /* wgsl */ `
struct P { N: u32, C: u32, S: u32, pad: u32, momentum: f32, eps: f32, p2: f32, p3: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@group(0) @binding(3) var<storage, read_write> running: array<f32>;
var<workgroup> red: array<f32, 128>;
var<workgroup> shared_mean: f32;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wg.x;
  let M = p.N * p.S;
  var s = 0.0;
  for (var j = lid.x; j < M; j += 128u) { s += X[((j / p.S) * p.C + c) * p.S + j % p.S]; }
  red[lid.x] = s;
  workgroupBarrier();
  for (var w = 64u; w > 0u; w >>= 1u) {
    if (lid.x < w) { red[lid.x] += red[lid.x + w]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { shared_mean = red[0] / f32(M); }
  workgroupBarrier();
  let mean = shared_mean;
  var ss = 0.0;
  for (var j = lid.x; j < M; j += 128u) {
    let d = X[((j / p.S) * p.C + c) * p.S + j % p.S] - mean;
    ss += d * d;
  }
  red[lid.x] = ss;
  workgroupBarrier();
  for (var w = 64u; w > 0u; w >>= 1u) {
    if (lid.x < w) { red[lid.x] += red[lid.x + w]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let sq = red[0];
    let v = sq / f32(M);
    stats[2u * c] = mean;
    stats[2u * c + 1u] = 1.0 / sqrt(v + p.eps);
    running[c] = (1.0 - p.momentum) * running[c] + p.momentum * mean;
    var unb = v;
    if (M > 1u) { unb = sq / f32(M - 1u); }
    running[p.C + c] = (1.0 - p.momentum) * running[p.C + c] + p.momentum * unb;
  }
}`;

/** eval-mode statistics from the running ones: stats[2c] = mean, stats[2c+1] = 1/sqrt(var + eps) */
export const BN_EVAL_STATS = /* wgsl */ `
struct P { C: u32, eps: f32, p2: u32, p3: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> running: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;
@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let c = g.x;
  if (c >= p.C) { return; }
  stats[2u * c] = running[c];
  stats[2u * c + 1u] = 1.0 / sqrt(running[p.C + c] + p.eps);
}`;

/** y = (x − mean) · invstd · gamma + beta; affine = [gamma (C), beta (C)] */
export const BN_APPLY = kernel1d('n: u32, C: u32, S: u32, pad: u32', [['X', 'read'], ['stats', 'read'], ['affine', 'read'], ['Y', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  let c = (i / p.S) % p.C;
  Y[i] = (X[i] - stats[2u * c]) * stats[2u * c + 1u] * affine[c] + affine[p.C + c];`);

/** per channel: dgamma = Σ dy · x̂, dbeta = Σ dy (written as grad[c], grad[C + c]) */
export const BN_BACK_REDUCE = /* wgsl */ `
struct P { N: u32, C: u32, S: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read> G: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;
var<workgroup> r1: array<f32, 128>;
var<workgroup> r2: array<f32, 128>;
@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let c = wg.x;
  let M = p.N * p.S;
  let mean = stats[2u * c]; let is = stats[2u * c + 1u];
  var sg = 0.0; var sgx = 0.0;
  for (var j = lid.x; j < M; j += 128u) {
    let o = ((j / p.S) * p.C + c) * p.S + j % p.S;
    let g = G[o];
    sg += g;
    sgx += g * (X[o] - mean) * is;
  }
  r1[lid.x] = sg; r2[lid.x] = sgx;
  workgroupBarrier();
  for (var w = 64u; w > 0u; w >>= 1u) {
    if (lid.x < w) { r1[lid.x] += r1[lid.x + w]; r2[lid.x] += r2[lid.x + w]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) { grad[c] = r2[0]; grad[p.C + c] = r1[0]; }
}`;

/** dx = gamma · invstd · (dy − Σdy/M − x̂ · Σ(dy·x̂)/M); affine = [gamma, beta], gaffine = [Σdy·x̂, Σdy] */
export const BN_BACK_APPLY = kernel1d('n: u32, C: u32, S: u32, M: u32', [['X', 'read'], ['G', 'read'], ['stats', 'read'], ['affine', 'read'], ['gaffine', 'read'], ['DX', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  let c = (i / p.S) % p.C;
  let mean = stats[2u * c]; let is = stats[2u * c + 1u];
  let a = gaffine[p.C + c] / f32(p.M);
  let b = gaffine[c] / f32(p.M);
  DX[i] = affine[c] * is * (G[i] - a - (X[i] - mean) * is * b);`);

/** out[b, a, s] = in[a, b, s] for an (A, B, S) array */
export const SWAP01 = kernel1d('A: u32, B: u32, S: u32, n: u32', [['X', 'read'], ['Y', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  let s = i % p.S; let ab = i / p.S;
  let a = ab % p.A; let b = ab / p.A;
  Y[i] = X[(a * p.B + b) * p.S + s];`);

const CONV_P = 'N: u32, C: u32, H: u32, W: u32, OH: u32, OW: u32, k: u32, stride: u32, pad: u32, n: u32, p1: u32, p2: u32';

/** cols[(c·k + ky)·k + kx, (n·OH + oy)·OW + ox] = x[n, c, oy·s − p + ky, ox·s − p + kx] (0 outside) */
export const IM2COL = kernel1d(CONV_P, [['X', 'read'], ['cols', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  let NP = p.N * p.OH * p.OW;
  let col = i % NP; let row = i / NP;
  let ox = col % p.OW; let oy = (col / p.OW) % p.OH; let n = col / (p.OW * p.OH);
  let kx = row % p.k; let ky = (row / p.k) % p.k; let c = row / (p.k * p.k);
  let y = i32(oy * p.stride + ky) - i32(p.pad);
  let x = i32(ox * p.stride + kx) - i32(p.pad);
  var v = 0.0;
  if (y >= 0 && y < i32(p.H) && x >= 0 && x < i32(p.W)) { v = X[((n * p.C + c) * p.H + u32(y)) * p.W + u32(x)]; }
  cols[i] = v;`);

/** dx[n, c, y, x] = Σ of the cols gradients that read it (a gather: no atomics) */
export const COL2IM = kernel1d(CONV_P, [['cols', 'read'], ['DX', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  let x = i % p.W; let y = (i / p.W) % p.H; let c = (i / (p.W * p.H)) % p.C; let n = i / (p.W * p.H * p.C);
  let NP = p.N * p.OH * p.OW;
  var s = 0.0;
  for (var ky = 0u; ky < p.k; ky++) {
    let ty = i32(y + p.pad) - i32(ky);
    if (ty < 0 || ty % i32(p.stride) != 0) { continue; }
    let oy = u32(ty) / p.stride;
    if (oy >= p.OH) { continue; }
    for (var kx = 0u; kx < p.k; kx++) {
      let tx = i32(x + p.pad) - i32(kx);
      if (tx < 0 || tx % i32(p.stride) != 0) { continue; }
      let ox = u32(tx) / p.stride;
      if (ox >= p.OW) { continue; }
      s += cols[((c * p.k + ky) * p.k + kx) * NP + (n * p.OH + oy) * p.OW + ox];
    }
  }
  DX[i] = s;`);

const POOL_P = 'NC: u32, H: u32, W: u32, OH: u32, OW: u32, k: u32, n: u32, pad: u32';

/** max pooling with window = stride = k, no padding; arg[o] = the input index of the maximum */
export const MAXPOOL = kernel1d(POOL_P, [['X', 'read'], ['Y', 'read_write'], ['arg', 'read_write', 'u32']], /* wgsl */ `
  if (i >= p.n) { return; }
  let ox = i % p.OW; let oy = (i / p.OW) % p.OH; let nc = i / (p.OW * p.OH);
  var best = -3.4e38; var bi = 0u;
  for (var ky = 0u; ky < p.k; ky++) {
    for (var kx = 0u; kx < p.k; kx++) {
      let j = (nc * p.H + oy * p.k + ky) * p.W + ox * p.k + kx;
      let v = X[j];
      if (v > best || (ky == 0u && kx == 0u)) { best = v; bi = j; }
    }
  }
  Y[i] = best;
  arg[i] = bi;`);

/** dx[j] = dy[o] where j is the maximum of window o, else 0 (windows do not overlap) */
export const MAXPOOL_BACK = kernel1d(POOL_P, [['G', 'read'], ['arg', 'read', 'u32'], ['DX', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  let x = i % p.W; let y = (i / p.W) % p.H; let nc = i / (p.W * p.H);
  let oy = y / p.k; let ox = x / p.k;
  var v = 0.0;
  if (oy < p.OH && ox < p.OW) {
    let o = (nc * p.OH + oy) * p.OW + ox;
    if (arg[o] == i) { v = G[o]; }
  }
  DX[i] = v;`);

/**
 * Softmax cross-entropy, one thread per row: out[2r] = the row's loss, out[2r+1] = 1 where the
 * arg-max is the target; dlogits = (softmax − onehot) / N.
 */
export const XENT = /* wgsl */ `
struct P { N: u32, C: u32, p1: u32, p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> L: array<f32>;
@group(0) @binding(2) var<storage, read> T: array<u32>;
@group(0) @binding(3) var<storage, read_write> D: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let r = g.x;
  if (r >= p.N) { return; }
  let b = r * p.C;
  var m = L[b]; var am = 0u;
  for (var c = 1u; c < p.C; c++) { if (L[b + c] > m) { m = L[b + c]; am = c; } }
  var s = 0.0;
  for (var c = 0u; c < p.C; c++) { s += exp(L[b + c] - m); }
  let t = T[r];
  out[2u * r] = log(s) - (L[b + t] - m);
  out[2u * r + 1u] = select(0.0, 1.0, am == t);
  for (var c = 0u; c < p.C; c++) {
    D[b + c] = (exp(L[b + c] - m) / s - select(0.0, 1.0, c == t)) / f32(p.N);
  }
}`;

/** SGD with momentum and weight decay, as the CPU optimizer: g += wd·w; v = mu·v + g; w −= lr·v */
export const SGD = kernel1d('n: u32, lr: f32, mu: f32, wd: f32', [['G', 'read'], ['Wt', 'read_write'], ['V', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  let g = G[i] + p.wd * Wt[i];
  let v = p.mu * V[i] + g;
  V[i] = v;
  Wt[i] -= p.lr * v;`);

// ---- the general kernels of the interface (src/backend/types.ts), on GPU buffers ----

/** the WGSL expression of a unary op on `a` (parameters p.p0, p.p1), as the TypeScript kernels */
export const UNARY_BODY: Record<string, string> = {
  neg: 'v = -a;',
  exp: 'v = exp(a);',
  log: 'v = log(a);',
  sqrt: 'v = sqrt(a);',
  abs: 'v = abs(a);',
  relu: 'v = select(0.0, a, a > 0.0 || a != a);',
  sigmoid: 'if (a >= 0.0) { v = 1.0 / (1.0 + exp(-a)); } else { let e = exp(a); v = e / (1.0 + e); }',
  tanh: 'v = tanh(clamp(a, -15.0, 15.0));',
  square: 'v = a * a;',
  sign: 'v = sign(a);',
  powScalar: 'if (p.p0 == 2.0) { v = a * a; } else { v = pow(a, p.p0); }',
  clamp: 'v = select(select(a, p.p1, a > p.p1), p.p0, a < p.p0);',
  affine: 'v = a * p.p0 + p.p1;',
};

export function unaryShader(op: string): string {
  const body = UNARY_BODY[op];
  if (!body) throw new Error(`WebGPU unary: unknown op '${op}'`);
  return kernel1d('n: u32, p0: f32, p1: f32, pad: u32', [['X', 'read'], ['Y', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  let a = X[i];
  var v: f32;
  ${body}
  Y[i] = v;`);
}

export const BINARY_BODY: Record<string, string> = {
  add: 'v = a + b;',
  sub: 'v = a - b;',
  mul: 'v = a * b;',
  div: 'v = a / b;',
  pow: 'v = pow(a, b);',
  maximum: 'if (a != a || b != b) { v = a + b; } else { v = select(b, a, a >= b); }',
  reluGrad: 'v = select(0.0, a, b > 0.0);',
  sigmoidGrad: 'v = a * b * (1.0 - b);',
  tanhGrad: 'v = a * (1.0 - b * b);',
  clampGrad: 'v = select(0.0, a, b >= p.p0 && b <= p.p1);',
  geMask: 'v = select(0.0, 1.0, a >= b);',
  eqMask: 'v = select(0.0, 1.0, a == b);',
};

const ND = `fn at(v: array<vec4u, 2>, d: u32) -> u32 { return v[d / 4u][d % 4u]; }`;

/** out (shape) = op(a, b) with broadcasting through strides (0 on broadcast axes), up to 8 axes */
export function binaryShader(op: string): string {
  const body = BINARY_BODY[op];
  if (!body) throw new Error(`WebGPU binary: unknown op '${op}'`);
  return kernel1d('n: u32, nd: u32, p0: f32, p1: f32, shape: array<vec4u, 2>, sa: array<vec4u, 2>, sb: array<vec4u, 2>', [['A', 'read'], ['B', 'read'], ['Y', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  var r = i; var ia = 0u; var ib = 0u;
  for (var d = i32(p.nd) - 1; d >= 0; d--) {
    let s = at(p.shape, u32(d));
    let c = r % s;
    r = r / s;
    ia += c * at(p.sa, u32(d));
    ib += c * at(p.sb, u32(d));
  }
  let a = A[ia];
  let b = B[ib];
  var v: f32;
  ${body}
  Y[i] = v;`, ND);
}

/** out[o] = sum or max over the reduced axes (red = 1) of x (shape, row-major), one thread per output */
export const REDUCE = kernel1d('n: u32, nd: u32, R: u32, isMax: u32, shape: array<vec4u, 2>, red: array<vec4u, 2>', [['X', 'read'], ['Y', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  // the input offset of the kept coordinates (i is row-major over the kept axes)
  var base = 0u; var rem = i; var stride = 1u;
  for (var d = i32(p.nd) - 1; d >= 0; d--) {
    let s = at(p.shape, u32(d));
    if (at(p.red, u32(d)) == 0u) { base += (rem % s) * stride; rem = rem / s; }
    stride *= s;
  }
  var acc = 0.0;
  var first = true;
  for (var r = 0u; r < p.R; r++) {
    var off = base; var q = r; var st = 1u;
    for (var d = i32(p.nd) - 1; d >= 0; d--) {
      let s = at(p.shape, u32(d));
      if (at(p.red, u32(d)) == 1u) { off += (q % s) * st; q = q / s; }
      st *= s;
    }
    let v = X[off];
    if (p.isMax == 1u) {
      if (first || (acc == acc && !(v <= acc))) { acc = v; }
      first = false;
    } else { acc += v; }
  }
  Y[i] = acc;`, ND);

/** out[b, perm...] = x permuted: one thread per output element, up to 8 axes */
export const PERMUTE = kernel1d('n: u32, nd: u32, p2: u32, p3: u32, oshape: array<vec4u, 2>, xstride: array<vec4u, 2>', [['X', 'read'], ['Y', 'read_write']], /* wgsl */ `
  if (i >= p.n) { return; }
  var r = i; var ix = 0u;
  for (var d = i32(p.nd) - 1; d >= 0; d--) {
    let s = at(p.oshape, u32(d));
    ix += (r % s) * at(p.xstride, u32(d));
    r = r / s;
  }
  Y[i] = X[ix];`, ND);

const ROWS = 'outer: u32, dim: u32, inner: u32, log: u32';

/** out (outer, inner) = index of the first maximum along dim (a NaN wins), as f32 */
export const ARGMAX = kernel1d(ROWS, [['X', 'read'], ['Y', 'read_write']], /* wgsl */ `
  if (i >= p.outer * p.inner) { return; }
  let base = (i / p.inner) * p.dim * p.inner + i % p.inner;
  var best = X[base]; var bi = 0u;
  for (var d = 1u; d < p.dim; d++) {
    let v = X[base + d * p.inner];
    if (v > best || (v != v && best == best)) { best = v; bi = d; }
  }
  Y[i] = f32(bi);`);

/** softmax (or log-softmax) along dim of (outer, dim, inner) */
export const SOFTMAX = kernel1d(ROWS, [['X', 'read'], ['Y', 'read_write']], /* wgsl */ `
  if (i >= p.outer * p.inner) { return; }
  let base = (i / p.inner) * p.dim * p.inner + i % p.inner;
  var m = X[base];
  for (var d = 1u; d < p.dim; d++) { m = max(m, X[base + d * p.inner]); }
  var s = 0.0;
  for (var d = 0u; d < p.dim; d++) { s += exp(X[base + d * p.inner] - m); }
  let ls = log(s);
  for (var d = 0u; d < p.dim; d++) {
    let z = X[base + d * p.inner] - m;
    if (p.log == 1u) { Y[base + d * p.inner] = z - ls; } else { Y[base + d * p.inner] = exp(z) / s; }
  }`);

/** the input gradient of softmax (gx = y (g − Σ g y)) or log-softmax (gx = g − exp(y) Σ g) */
export const SOFTMAX_BACK = kernel1d(ROWS, [['Yv', 'read'], ['G', 'read'], ['DX', 'read_write']], /* wgsl */ `
  if (i >= p.outer * p.inner) { return; }
  let base = (i / p.inner) * p.dim * p.inner + i % p.inner;
  var s = 0.0;
  for (var d = 0u; d < p.dim; d++) {
    let k = base + d * p.inner;
    if (p.log == 1u) { s += G[k]; } else { s += G[k] * Yv[k]; }
  }
  for (var d = 0u; d < p.dim; d++) {
    let k = base + d * p.inner;
    if (p.log == 1u) { DX[k] = G[k] - exp(Yv[k]) * s; } else { DX[k] = Yv[k] * (G[k] - s); }
  }`);
