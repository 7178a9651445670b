// Gradient check by central finite differences, in float64 (after ggml's test-backend-ops GRAD mode).
// The output is projected on a fixed random tensor R, L = sum(fn(x) * R), so one backward checks the
// whole Jacobian. Elements where the one-sided differences disagree (a kink: relu at 0, max at a
// tie, clamp at a bound) are skipped and counted, not compared.

import { mul, sum } from './ops.js';
import { Rng } from './rng.js';
import { shapeStr, Tensor } from './tensor.js';
import { noGrad } from './autograd.js';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** seed of the projection R */
  seed?: number;
  /** relative disagreement of the one-sided differences above which an element counts as a kink */
  kinkTol?: number;
}

export interface GradcheckResult {
  ok: boolean;
  checked: number;
  skipped: number;
  maxAbsErr: number;
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
}

export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): GradcheckResult {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-4;
  const kinkTol = opts.kinkTol ?? 1e-3;
  inputs.forEach((x, i) => {
    if (x.dtype !== 'float64') throw new Error(`gradcheck: input ${i} ${shapeStr(x.shape)} is ${x.dtype}; finite differences need float64`);
    x.grad = null;
  });
  const out0 = fn(...inputs);
  if (out0.dtype !== 'float64') throw new Error(`gradcheck: output is ${out0.dtype}; finite differences need float64`);
  const rng = new Rng(opts.seed ?? 12345);
  const R = new Tensor(new Float64Array(out0.size).map(() => rng.uniform(-1, 1)), out0.shape);
  const loss = (): number => noGrad(() => sum(mul(fn(...inputs), R)).item());
  if (out0.requiresGrad) sum(mul(out0, R)).backward();
  const L0 = loss();
  let checked = 0, skipped = 0, maxAbsErr = 0;
  let ok = true;
  let worst: GradcheckResult['worst'] = null;
  let worstScore = -1;
  inputs.forEach((x, i) => {
    if (!x.requiresGrad) return;
    const d = x.data;
    for (let j = 0; j < d.length; j++) {
      const v = d[j];
      d[j] = v + eps;
      const Lp = loss();
      d[j] = v - eps;
      const Lm = loss();
      d[j] = v;
      const right = (Lp - L0) / eps, left = (L0 - Lm) / eps;
      if (Math.abs(right - left) > kinkTol * Math.max(1, Math.abs(right), Math.abs(left))) {
        skipped++;
        continue;
      }
      const numeric = (Lp - Lm) / (2 * eps);
      const analytic = x.grad ? x.grad.data[j] : 0;
      const err = Math.abs(analytic - numeric);
      checked++;
      maxAbsErr = Math.max(maxAbsErr, err);
      const score = err / (atol + rtol * Math.abs(numeric));
      if (!(score <= 1)) ok = false;
      if (score > worstScore || Number.isNaN(score)) {
        worstScore = Number.isNaN(score) ? Infinity : score;
        worst = { input: i, index: j, analytic, numeric };
      }
    }
  });
  return { ok, checked, skipped, maxAbsErr, worst };
}
