// The kernel interface: every hot loop of the engine is one of these functions. Backends (pure
// TypeScript, the native addon, WebGPU) implement some or all of them; the registry picks, per kernel
// and dtype, the highest-priority backend that has it. Ops and models only ever call the registry.
//
// Conventions: all arrays are dense row-major; `off` arguments are element offsets; output arrays are
// written, never reallocated. Shapes are in the one-line comment above each signature.

export type DType = 'float32' | 'float64';
export type FloatArray = Float32Array | Float64Array;

/** the activations biasActivate applies after its add */
export type BiasActivation = 'none' | 'relu' | 'sigmoid' | 'tanh';

export type UnaryOp =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'abs' | 'relu' | 'sigmoid' | 'tanh'
  | 'square' | 'sign'
  | 'powScalar' // x^p0
  | 'clamp' // min(max(x, p0), p1)
  | 'affine'; // x*p0 + p1

export type BinaryOp =
  | 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum'
  | 'reluGrad' // a * (b > 0)            a = upstream gradient, b = input
  | 'sigmoidGrad' // a * b * (1 - b)     b = sigmoid output
  | 'tanhGrad' // a * (1 - b^2)          b = tanh output
  | 'clampGrad' // a * (p0 <= b <= p1)   b = input
  | 'geMask' // a >= b ? 1 : 0
  | 'eqMask'; // a == b ? 1 : 0

export type ReduceOp = 'sum' | 'max';

/** N images of C x H x W through OC kernels of KH x KW at stride SH, SW and zero padding PH, PW:
 *  outputs of OH x OW. One object for every convolution kernel, TypeScript and native alike. */
export interface ConvGeometry {
  N: number; C: number; H: number; W: number; OC: number; KH: number; KW: number;
  SH: number; SW: number; PH: number; PW: number; OH: number; OW: number;
}

/** per output channel c after a convolution's products: y = scale[c] * x + shift[c] (absent or empty:
 *  1 and 0), then max(y, 0) where relu, then where pool is 2 the maximum of each 2x2 window (stride 2,
 *  floor: an odd last row or column is dropped; first of equals, a NaN wins, as maxPool2d) */
export interface Epilogue {
  scale?: FloatArray;
  shift?: FloatArray;
  relu?: boolean;
  pool?: 1 | 2;
}

/** a convolution's weights laid out ahead: packed by packConvWeights for vector width `width`, and
 *  transformed by winogradWeights for F(tile x tile, 3 x 3) at vector width `winogradWidth` */
export interface PreparedConvWeights {
  packed?: FloatArray;
  width?: number;
  winograd?: FloatArray;
  tile?: number;
  winogradWidth?: number;
}

/** what a convolution's choice of algorithm depends on besides its geometry */
export interface ConvTarget {
  /** the epilogue's pooling (default 1) */
  pool?: 1 | 2;
  /** weights packed ahead at the target's vector width (an inference session) */
  packed?: boolean;
  isa?: 'avx512' | 'avx2' | 'generic';
  threads?: number;
  winograd?: 'auto' | 'on' | 'off';
}

/** forward: packed, narrow-copies, direct (width: floats a vector), winograd (tile: m), dot,
 *  narrow-gemm, gemm-per-image, im2col-gemm or implicit-gemm; weightGrad: winograd, direct or
 *  im2col-gemm (the caller's) */
export interface ConvAlgorithmChoice {
  forward: string;
  tile: number;
  width: number;
  weightGrad: string;
  weightGradTile: number;
}

export interface Kernels {
  // C (M,N) = alpha * op(A) * op(B) + beta * C; op(A) (M,K), op(B) (K,N); beta = 0 never reads C.
  gemm(
    transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: FloatArray, aOff: number, lda: number,
    B: FloatArray, bOff: number, ldb: number,
    beta: number, C: FloatArray, cOff: number, ldc: number,
  ): void;

  // G images x (G,C,H,W) at xOff -> cols (C*KH*KW, G*OH*OW) at colsOff with row stride ldCols
  // (>= G*OH*OW): image i fills columns i*OH*OW.. of every row; padding reads as zero
  im2col(
    x: FloatArray, xOff: number, G: number, C: number, H: number, W: number,
    KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
    cols: FloatArray, colsOff: number, ldCols: number,
  ): void;

  // cols (C*KH*KW, G*OH*OW) at colsOff, row stride ldCols -> dx (G,C,H,W) at dxOff, accumulated
  // (+=); the adjoint of im2col
  col2im(
    cols: FloatArray, colsOff: number, ldCols: number, G: number, C: number, H: number, W: number,
    KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
    dx: FloatArray, dxOff: number,
  ): void;

  // x (N,C,H,W) -> out (N,C,OH,OW), argmax (N,C,OH,OW) flat index into x (-1 where the window is all padding)
  maxPool2d(
    x: FloatArray, N: number, C: number, H: number, W: number,
    KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
    out: FloatArray, argmax: Int32Array,
  ): void;

  // gout (N,C,OH,OW), argmax -> gx (N,C,H,W), accumulated (+=)
  maxPool2dBackward(gout: FloatArray, argmax: Int32Array, gx: FloatArray): void;

  // x (N,C,H,W) -> out (N,C,OH,OW); the divisor is KH*KW (padding counts as zeros)
  avgPool2d(
    x: FloatArray, N: number, C: number, H: number, W: number,
    KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
    out: FloatArray,
  ): void;

  // gout (N,C,OH,OW) -> gx (N,C,H,W), accumulated (+=)
  avgPool2dBackward(
    gout: FloatArray, N: number, C: number, H: number, W: number,
    KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, OH: number, OW: number,
    gx: FloatArray,
  ): void;

  // out[i] = op(x[i]; p0, p1), x and out of equal length (may be the same array)
  unary(op: UnaryOp, x: FloatArray, out: FloatArray, p0: number, p1: number): void;

  // y (rows, cols) in place: y[r][c] + bias[c] (no add where bias is empty), then the activation
  // (the elementwise result of unary's relu, sigmoid or tanh; 'none': the add alone). A linear
  // layer's output at inference in one pass
  biasActivate(y: FloatArray, rows: number, cols: number, bias: FloatArray, op: BiasActivation): void;

  // out (outShape) = op(a, b) with NumPy broadcasting: aStrides/bStrides are the element strides of a
  // and b over outShape, 0 along broadcast axes
  binary(
    op: BinaryOp, a: FloatArray, aStrides: number[], b: FloatArray, bStrides: number[],
    out: FloatArray, outShape: number[], p0: number, p1: number,
  ): void;

  // One SGD step over a parameter, in place, as PyTorch defines it: g' = g + wd*p; v = mu*v + g';
  // p -= lr * (nesterov ? g' + mu*v : v), or p -= lr * g' where mu is 0 (v unused, may be empty).
  // Each element's arithmetic in double, rounded at each store to the arrays' type (every backend
  // gives the same bits)
  sgdUpdate(p: FloatArray, g: FloatArray, v: FloatArray, lr: number, mu: number, wd: number, nesterov: boolean): void;

  // out = x rounded to the nearest bfloat16 (ties to even), kept as float32 (the low 16 bits zero);
  // a NaN stays a quiet NaN, an infinity an infinity, a value past the largest bfloat16 becomes an
  // infinity, subnormals round as any value. float64: rounded to float32 first. out may be x
  roundBf16(x: FloatArray, out: FloatArray): void;

  // w (OC, C, kk) -> out (C, OC, kk) with each kernel's kk taps in reverse order: the weights of the
  // convolution that carries a stride-1 convolution's output gradient back to its input
  flipConvWeights(w: FloatArray, OC: number, C: number, kk: number, out: FloatArray): void;

  // x (shape) -> out: reduce over the axes where outStrides is 0 (out has the kept axes, in order)
  reduce(op: ReduceOp, x: FloatArray, shape: number[], outStrides: number[], out: FloatArray): void;

  // x viewed as (outer, dim, inner) -> out (outer, inner): index of the first maximum along dim
  argmax(x: FloatArray, outer: number, dim: number, inner: number, out: Int32Array): void;

  // The weight gradient of a convolution without the im2col matrix: gw (OC, C, KH, KW) = the sum over
  // the images and output pixels of g (N, OC, OH, OW, at gOff) times the input window (x at xOff),
  // written, not accumulated. Returns false, touching nothing, where this backend has no such kernel
  // for the geometry (the TypeScript backend never has; the native one where convAlgorithm's
  // weightGrad is 'im2col-gemm'); the caller then goes through im2col and gemm
  convWeightGrad(x: FloatArray, xOff: number, geometry: ConvGeometry, g: FloatArray, gOff: number, gw: FloatArray): boolean;

  // x (shape) -> out (shape permuted by perm): out[..., i_perm[k], ...] = x[..., i_k, ...]
  permute(x: FloatArray, shape: number[], perm: number[], out: FloatArray): void;

  // The epilogue of a convolution, per channel c of G images of H x W pixels:
  //   y = scale[c] * x + shift[c]  (scale empty: 1; shift empty: 0), then max(y, 0) where relu,
  // then, where pool = 2, the maximum of each 2x2 window (stride 2, floor: an odd last row or column
  // is dropped; first of equals, a NaN wins, as maxPool2d). x is (C, G, H, W) where channelMajor (a
  // GEMM's output for G images side by side), else (G, C, H, W); out is (G, C, H/pool, W/pool) and may
  // be x itself where !channelMajor and pool = 1.
  convEpilogue(
    x: FloatArray, xOff: number, channelMajor: boolean, G: number, C: number, H: number, W: number,
    scale: FloatArray, shift: FloatArray, relu: boolean, pool: number, out: FloatArray, outOff: number,
  ): void;

  // The forward convolution of the geometry's N images x (N,C,H,W) from xOff with w (OC, C*KH*KW),
  // then the epilogue per output channel: out (N, OC, OH/pool, OW/pool) from outOff. prepared: the
  // same weights laid out ahead by packConvWeights and winogradWeights (an inference session's
  // copies), each read where the call takes that path and its width is the kernels' now
  convForward(
    x: FloatArray, xOff: number, geometry: ConvGeometry, w: FloatArray, epilogue: Epilogue,
    out: FloatArray, outOff: number, prepared?: PreparedConvWeights,
  ): void;

  // the tile m (2 or 4) of Winograd's F(m x m, 3 x 3) that convForward takes for this geometry now,
  // 0 where it does not take Winograd (the TypeScript backend never does)
  winogradTile(geometry: ConvGeometry): number;

  // the algorithms convForward and convWeightGrad take for this geometry on a target (each of its
  // fields absent: the one in effect now); the TypeScript backend always takes im2col and a GEMM
  convAlgorithm(geometry: ConvGeometry, target: ConvTarget): ConvAlgorithmChoice;

  // w (OC, C, 3, 3) transformed once for convForward's Winograd path with tile m, by the kernels of
  // the vector width now: { weights, tile, width }, or null (TypeScript)
  winogradWeights(w: FloatArray, OC: number, C: number, m: number): { weights: FloatArray; tile: number; width: number } | null;

  // w (OC, K) laid out once for convForward's reads at few pixels (native: blocks of one vector of
  // output channels, each tap's channels side by side): { packed, width }, or null where this backend
  // reads weights only as they lie (TypeScript)
  packConvWeights(w: FloatArray, OC: number, K: number): { packed: FloatArray; width: number } | null;

  // x viewed as (outer, dim, inner) -> out of the same shape: softmax (or log-softmax) along dim
  softmax(x: FloatArray, outer: number, dim: number, inner: number, out: FloatArray, log: boolean): void;

  // y = softmax output (or log-softmax output when log), g = upstream gradient -> gx, all (outer, dim, inner)
  softmaxBackward(y: FloatArray, g: FloatArray, outer: number, dim: number, inner: number, gx: FloatArray, log: boolean): void;

  // logits (N,C), targets (N) -> returns mean loss; probs (N,C) receives the softmax (for backward)
  crossEntropy(logits: FloatArray, N: number, C: number, targets: Int32Array, probs: FloatArray): number;

  // x (N,C,S) -> y (N,C,S). training: batch statistics over (N,S), written to mean/invstd (C), and the
  // running statistics updated with `momentum` (unbiased variance); eval: running statistics used.
  // relu: then y = max(y, 0) (a ReLU fused in; a NaN passes through, as relu)
  batchNormForward(
    x: FloatArray, N: number, C: number, S: number, gamma: FloatArray, beta: FloatArray,
    runningMean: FloatArray, runningVar: FloatArray, training: boolean, momentum: number, eps: number,
    y: FloatArray, mean: FloatArray, invstd: FloatArray, relu: boolean,
  ): void;

  // g (N,C,S) -> gx (N,C,S), ggamma (C), gbeta (C) (all written, not accumulated); mean/invstd as the
  // forward wrote them. training: the statistics depend on x; eval: they are constants. y: the output of a
  // forward with relu (g then counts only where y > 0), or empty (no ReLU). beta (optional, with y):
  // the forward's beta, from which a backend may tell where y > 0 from x instead of reading y (native:
  // the forward's own arithmetic, the same mask)
  batchNormBackward(
    x: FloatArray, g: FloatArray, N: number, C: number, S: number, gamma: FloatArray,
    mean: FloatArray, invstd: FloatArray, training: boolean, gx: FloatArray, ggamma: FloatArray, gbeta: FloatArray,
    y: FloatArray, beta?: FloatArray,
  ): void;

  // X (n,d), Y (m,d) -> out (n,m): squared Euclidean distances between rows
  pairwiseSqDist(X: FloatArray, n: number, Y: FloatArray, m: number, d: number, out: FloatArray): void;

  // one Lloyd step: X (n,d), centroids (k,d) -> assign (n) nearest centroid, newCentroids (k,d) the
  // members' means (empty clusters keep their centroid), counts (k); returns the inertia
  kmeansStep(
    X: FloatArray, n: number, d: number, centroids: FloatArray, k: number,
    assign: Int32Array, newCentroids: FloatArray, counts: Int32Array,
  ): number;
}

export type KernelName = keyof Kernels;

export interface Backend {
  name: string;
  /** higher runs first */
  priority: number;
  /** dtypes the backend's kernels accept */
  dtypes: DType[];
  kernels: Partial<Kernels>;
}
