// IEEE 754 half precision (binary16) as a storage format: float32 values rounded to the nearest
// float16 (ties to even; past the largest, 65,504, an infinity; below half the smallest subnormal, a
// signed zero), and float16 bits read back as float32 exactly. Used where a file stores weights at
// half their size (a checkpoint's float16 tensors); arithmetic stays float32.

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** one float32 value -> the bits of the nearest float16 */
export function toHalfBits(x: number): number {
  F32[0] = x;
  const b = U32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // an infinity, or a quiet NaN
  const e = exp - 112; // the exponent rebiased from 127 to 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // a subnormal float16 (or zero): the 24-bit significand shifted into 10 bits
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let h = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is still right
  return sign | h;
}

/** float16 bits -> the float32 value they stand for (exact) */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** float32 values -> their nearest float16 values' bits */
export function toHalf(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = toHalfBits(x[i]);
  return out;
}

/** float16 bits -> float32 values */
export function fromHalf(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = fromHalfBits(h[i]);
  return out;
}

/** each value rounded to the nearest float16, kept as float32 (what storing and reading back gives) */
export function roundHalf(x: Float32Array): Float32Array {
  return fromHalf(toHalf(x));
}
