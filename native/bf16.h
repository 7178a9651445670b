// bfloat16: the upper 16 bits of a float32 (sign, 8 exponent bits, 7 mantissa bits). The one rounding
// every bfloat16 path takes: round to nearest, ties to even, on the float32's bits; a NaN stays a
// quiet NaN of the same sign (its payload's upper bits kept, the quiet bit set), an infinity stays
// one, a value past the largest bfloat16 becomes an infinity, subnormals are rounded like any other
// value (not flushed). The TypeScript reference is roundBf16 in src/backend/js.ts.
#pragma once
#include <cstdint>
#include <cstring>

namespace nm {

/** the bfloat16 nearest to f (ties to even), as its 16 bits */
inline uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

/** f rounded to the nearest bfloat16, as a float32 (its low 16 bits zero) */
inline float bf16_round(float f) {
  const uint32_t u = static_cast<uint32_t>(bf16_bits(f)) << 16;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

/** out[i] = bf16_round(x[i]) for n elements (out may be x) */
void round_bf16(const float* x, float* out, int64_t n);

}  // namespace nm
