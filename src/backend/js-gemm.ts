// The pure TypeScript SGEMM/DGEMM, built the BLIS way: op(A) and op(B) are packed into zero-padded
// MR- and NR-wide panels (float64, so the inner loop does no conversions), a 4×4 register-blocked
// micro-kernel runs over a KC-long slice of both, and the loops are blocked for the caches.
// gemmNaive beside it is the test oracle.

import type { FloatArray } from './types.js';

const MR = 4;
const NR = 4;
const KC = 256;
const MC = 128;
const NC = 1024;

const packA = new Float64Array(MC * KC);
const packB = new Float64Array(KC * NC);

// C (M,N) = alpha * op(A) (M,K) * op(B) (K,N) + beta * C
export function gemmNaive(
  transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: FloatArray, aOff: number, lda: number, B: FloatArray, bOff: number, ldb: number,
  beta: number, C: FloatArray, cOff: number, ldc: number,
): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const a = transA ? A[aOff + k * lda + i] : A[aOff + i * lda + k];
        const b = transB ? B[bOff + j * ldb + k] : B[bOff + k * ldb + j];
        s += a * b;
      }
      const c = cOff + i * ldc + j;
      C[c] = beta === 0 ? alpha * s : alpha * s + beta * C[c];
    }
  }
}

function packPanelsA(A: FloatArray, aOff: number, lda: number, transA: boolean, i0: number, mc: number, p0: number, kc: number): void {
  // panels of MR rows; within a panel, element (r, p) at p*MR + r
  let idx = 0;
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = Math.min(MR, mc - ir);
    for (let p = 0; p < kc; p++) {
      const k = p0 + p;
      for (let r = 0; r < MR; r++) {
        if (r < rows) {
          const i = i0 + ir + r;
          packA[idx++] = transA ? A[aOff + k * lda + i] : A[aOff + i * lda + k];
        } else packA[idx++] = 0;
      }
    }
  }
}

function packPanelsB(B: FloatArray, bOff: number, ldb: number, transB: boolean, p0: number, kc: number, j0: number, nc: number): void {
  // panels of NR columns; within a panel, element (p, c) at p*NR + c
  let idx = 0;
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = Math.min(NR, nc - jr);
    for (let p = 0; p < kc; p++) {
      const k = p0 + p;
      if (!transB && cols === NR) {
        const base = bOff + k * ldb + j0 + jr;
        packB[idx] = B[base];
        packB[idx + 1] = B[base + 1];
        packB[idx + 2] = B[base + 2];
        packB[idx + 3] = B[base + 3];
        idx += 4;
        continue;
      }
      for (let c = 0; c < NR; c++) {
        if (c < cols) {
          const j = j0 + jr + c;
          packB[idx++] = transB ? B[bOff + j * ldb + k] : B[bOff + k * ldb + j];
        } else packB[idx++] = 0;
      }
    }
  }
}

function microKernel(
  kc: number, pa: Float64Array, aBase: number, pb: Float64Array, bBase: number,
  C: FloatArray, cBase: number, ldc: number, alpha: number, rows: number, cols: number,
): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  let ap = aBase;
  let bp = bBase;
  for (let p = 0; p < kc; p++) {
    const a0 = pa[ap], a1 = pa[ap + 1], a2 = pa[ap + 2], a3 = pa[ap + 3];
    const b0 = pb[bp], b1 = pb[bp + 1], b2 = pb[bp + 2], b3 = pb[bp + 3];
    c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
    c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
    c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
    c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
    ap += 4;
    bp += 4;
  }
  if (rows === 4 && cols === 4) {
    let c = cBase;
    C[c] += alpha * c00; C[c + 1] += alpha * c01; C[c + 2] += alpha * c02; C[c + 3] += alpha * c03;
    c += ldc;
    C[c] += alpha * c10; C[c + 1] += alpha * c11; C[c + 2] += alpha * c12; C[c + 3] += alpha * c13;
    c += ldc;
    C[c] += alpha * c20; C[c + 1] += alpha * c21; C[c + 2] += alpha * c22; C[c + 3] += alpha * c23;
    c += ldc;
    C[c] += alpha * c30; C[c + 1] += alpha * c31; C[c + 2] += alpha * c32; C[c + 3] += alpha * c33;
    return;
  }
  const acc = [c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33];
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < cols; q++) C[cBase + r * ldc + q] += alpha * acc[r * 4 + q];
  }
}

export function gemmJs(
  transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: FloatArray, aOff: number, lda: number, B: FloatArray, bOff: number, ldb: number,
  beta: number, C: FloatArray, cOff: number, ldc: number,
): void {
  if (beta !== 1) {
    for (let i = 0; i < M; i++) {
      const row = cOff + i * ldc;
      if (beta === 0) C.fill(0, row, row + N);
      else for (let j = 0; j < N; j++) C[row + j] *= beta;
    }
  }
  if (M === 0 || N === 0 || K === 0 || alpha === 0) return;
  // small products: packing costs more than it saves
  if (M * N * K < 4096) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          s += (transA ? A[aOff + k * lda + i] : A[aOff + i * lda + k]) * (transB ? B[bOff + j * ldb + k] : B[bOff + k * ldb + j]);
        }
        C[cOff + i * ldc + j] += alpha * s;
      }
    }
    return;
  }
  for (let jc = 0; jc < N; jc += NC) {
    const nc = Math.min(NC, N - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = Math.min(KC, K - pc);
      packPanelsB(B, bOff, ldb, transB, pc, kc, jc, nc);
      for (let ic = 0; ic < M; ic += MC) {
        const mc = Math.min(MC, M - ic);
        packPanelsA(A, aOff, lda, transA, ic, mc, pc, kc);
        for (let jr = 0; jr < nc; jr += NR) {
          const cols = Math.min(NR, nc - jr);
          const bBase = (jr / NR) * kc * NR;
          for (let ir = 0; ir < mc; ir += MR) {
            const rows = Math.min(MR, mc - ir);
            microKernel(kc, packA, (ir / MR) * kc * MR, packB, bBase, C, cOff + (ic + ir) * ldc + jc + jr, ldc, alpha, rows, cols);
          }
        }
      }
    }
  }
}
