// Winograd's minimal filtering F(m x m, 3 x 3), m = 2 or 4, written plainly: the reference the native
// kernel (native/winograd.cc) is tested against. Each output tile of m x m pixels is A^T [(G g G^T) ⊙
// (B^T d B)] A, summed over input channels, for the (m+2) x (m+2) input window d and the 3 x 3 kernel g;
// (m+2)^2 multiplications a tile where the direct convolution takes 9 m^2.

import type { FloatArray } from './types.js';

type Matrix = number[][];

/** B^T, G and A^T of F(m x m, 3 x 3), interpolation points 0, 1, -1 (m = 2) or 0, ±1, ±2 (m = 4) and
 *  the point at infinity */
export function winogradMatrices(m: 2 | 4): { BT: Matrix; G: Matrix; AT: Matrix } {
  if (m === 2) {
    return {
      BT: [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
      G: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]],
      AT: [[1, 1, 1, 0], [0, 1, -1, -1]],
    };
  }
  return {
    BT: [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
    G: [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]],
    AT: [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
  };
}

function mul(a: Matrix, b: Matrix): Matrix {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}

const transpose = (a: Matrix): Matrix => a[0].map((_, j) => a.map((row) => row[j]));

/**
 * x (N,C,H,W), w (OC,C,3,3) -> (N,OC,OH,OW), stride 1, zero padding PH, PW; OH = H + 2PH - 2 and
 * OW = W + 2PW - 2 (partial tiles at the right and bottom edges are cut). In float64 throughout, so
 * that it agrees with the direct convolution to double rounding.
 */
export function winogradConv3x3(
  x: FloatArray, N: number, C: number, H: number, W: number, PH: number, PW: number,
  w: FloatArray, OC: number, m: 2 | 4,
): Float64Array {
  const OH = H + 2 * PH - 2, OW = W + 2 * PW - 2;
  if (OH < 1 || OW < 1) throw new Error(`winogradConv3x3: a ${H}x${W} input padded by ${PH},${PW} has no 3x3 output`);
  if (x.length !== N * C * H * W) throw new Error(`winogradConv3x3: x has ${x.length} elements, (N,C,H,W) = (${N},${C},${H},${W}) needs ${N * C * H * W}`);
  if (w.length !== OC * C * 9) throw new Error(`winogradConv3x3: w has ${w.length} elements, (OC,C,3,3) = (${OC},${C},3,3) needs ${OC * C * 9}`);
  const { BT, G, AT } = winogradMatrices(m);
  const B = transpose(BT), GT = transpose(G), A = transpose(AT);
  const a = m + 2;
  const U: Matrix[][] = [];  // U[o][c] = G g G^T
  for (let o = 0; o < OC; o++) {
    U.push([]);
    for (let c = 0; c < C; c++) {
      const g = [0, 1, 2].map((r) => [0, 1, 2].map((q) => w[((o * C + c) * 3 + r) * 3 + q]));
      U[o].push(mul(mul(G, g), GT));
    }
  }
  const y = new Float64Array(N * OC * OH * OW);
  for (let n = 0; n < N; n++) {
    for (let th = 0; th < OH; th += m) {
      for (let tw = 0; tw < OW; tw += m) {
        const V: Matrix[] = [];  // V[c] = B^T d B for this tile
        for (let c = 0; c < C; c++) {
          const d: Matrix = [];
          for (let i = 0; i < a; i++) {
            const ih = th - PH + i;
            d.push([]);
            for (let j = 0; j < a; j++) {
              const iw = tw - PW + j;
              d[i].push(ih >= 0 && ih < H && iw >= 0 && iw < W ? x[((n * C + c) * H + ih) * W + iw] : 0);
            }
          }
          V.push(mul(mul(BT, d), B));
        }
        for (let o = 0; o < OC; o++) {
          const M: Matrix = Array.from({ length: a }, () => new Array<number>(a).fill(0));
          for (let c = 0; c < C; c++)
            for (let i = 0; i < a; i++)
              for (let j = 0; j < a; j++) M[i][j] += U[o][c][i][j] * V[c][i][j];
          const Y = mul(mul(AT, M), A);
          for (let i = 0; i < m && th + i < OH; i++)
            for (let j = 0; j < m && tw + j < OW; j++) y[((n * OC + o) * OH + th + i) * OW + tw + j] = Y[i][j];
        }
      }
    }
  }
  return y;
}
