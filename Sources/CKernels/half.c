#include "internal.h"

/* Written out rather than using F16C so that quantizing gives the same bits on any CPU. */
uint16_t ck_float_to_half(float f) {
    const uint32_t x = ck_float_bits(f);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t ax = x & 0x7FFFFFFF;
    if (ax > 0x7F800000) {
        /* NaN: keep the top payload bits and make it quiet, as vcvtps2ph does. */
        return sign | 0x7E00 | (uint16_t)((ax >> 13) & 0x3FF);
    }
    if (ax >= 0x477FF000) {
        /* >= 65520 is at or past the midpoint between 65504 (odd mantissa) and 2^16: infinity. */
        return sign | 0x7C00;
    }
    if (ax < 0x38800000) {
        /* Below 2^-14 the half is subnormal: its bits are round(|f| * 2^24), and 1024 carries
           into the smallest normal exactly. Scaling by a power of two is exact here. */
        const float scaled = ck_bits_float(ax) * 16777216.0f;
        return sign | (uint16_t)rintf(scaled);
    }
    /* Normal: rebias the exponent (127 -> 15), keep 10 mantissa bits, round the 13 dropped
       bits to nearest even; a carry moves into the exponent, which is what rounding means. */
    uint32_t h = (ax >> 13) - ((uint32_t)(127 - 15) << 10);
    const uint32_t rest = ax & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h += 1;
    return sign | (uint16_t)h;
}

float ck_half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exponent = (h >> 10) & 0x1F;
    const uint32_t mantissa = h & 0x3FF;
    if (exponent == 0) {
        /* Zero or subnormal: mantissa * 2^-24, exact in float32. */
        const float magnitude = (float)mantissa * 5.9604644775390625e-8f;
        return ck_bits_float(ck_float_bits(magnitude) | sign);
    }
    if (exponent == 31) {
        /* Infinity, or a NaN made quiet, as vcvtph2ps does. */
        return ck_bits_float(sign | 0x7F800000 | (mantissa << 13) | (mantissa ? 0x00400000 : 0));
    }
    return ck_bits_float(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

size_t ck_row_bytes(int format, int64_t cols) {
    switch (format) {
    case CK_Q8_0: return (size_t)(cols / CK_BLOCK) * 34;
    case CK_Q4_0: return (size_t)(cols / CK_BLOCK) * 18;
    case CK_Q4_1: return (size_t)(cols / CK_BLOCK) * 20;
    case CK_BF16: return (size_t)cols * 2;
    case CK_F32: return (size_t)cols * 4;
    default: return 0;
    }
}
