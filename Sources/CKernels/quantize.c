#include "internal.h"
#include <float.h>

/* The rounding must be ggml's quantize_row_*_ref, bit for bit, so that a GGUF file quantized
   by llama.cpp and the same weights quantized here hold the same blocks. That reference is C
   evaluated as written: each product is rounded before the following addition. Forbid the
   compiler from fusing them into FMAs, which would round once and occasionally differ. */
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

/* Q8_0: d = max|x| / 127, q = round-half-away(x / d) with the reciprocal of the unrounded d. */
static void quantize_q8_0(const float *x, uint8_t *y, int64_t cols) {
    for (int64_t b = 0; b < cols / CK_BLOCK; b++, x += CK_BLOCK, y += 34) {
        float amax = 0.0f;
        for (int j = 0; j < CK_BLOCK; j++) {
            const float a = fabsf(x[j]);
            amax = amax > a ? amax : a;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        ck_store_u16(y, ck_float_to_half(d));
        int8_t *q = (int8_t *)(y + 2);
        for (int j = 0; j < CK_BLOCK; j++) {
            const float scaled = x[j] * id;
            q[j] = (int8_t)roundf(scaled);
        }
    }
}

/* Q4_0: the signed value of largest magnitude (the first one on ties) maps to -8, so
   d = max / -8; q = min(15, trunc(x / d + 8.5)). Byte j holds value j (low nibble) and
   value j + 16 (high nibble). */
static void quantize_q4_0(const float *x, uint8_t *y, int64_t cols) {
    for (int64_t b = 0; b < cols / CK_BLOCK; b++, x += CK_BLOCK, y += 18) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < CK_BLOCK; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        ck_store_u16(y, ck_float_to_half(d));
        for (int j = 0; j < CK_BLOCK / 2; j++) {
            const float x0 = x[j] * id;
            const float x1 = x[j + CK_BLOCK / 2] * id;
            const int q0 = (int8_t)(x0 + 8.5f);
            const int q1 = (int8_t)(x1 + 8.5f);
            y[2 + j] = (uint8_t)((q0 < 15 ? q0 : 15) | ((q1 < 15 ? q1 : 15) << 4));
        }
    }
}

/* Q4_1: d = (max - min) / 15, m = min; q = min(15, trunc((x - min) / d + 0.5)), with the
   float32 min (not its half) inside the rounding, as the reference does. */
static void quantize_q4_1(const float *x, uint8_t *y, int64_t cols) {
    for (int64_t b = 0; b < cols / CK_BLOCK; b++, x += CK_BLOCK, y += 20) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < CK_BLOCK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        ck_store_u16(y, ck_float_to_half(d));
        ck_store_u16(y + 2, ck_float_to_half(min));
        for (int j = 0; j < CK_BLOCK / 2; j++) {
            const float x0 = (x[j] - min) * id;
            const float x1 = (x[j + CK_BLOCK / 2] - min) * id;
            const int q0 = (int8_t)(x0 + 0.5f);
            const int q1 = (int8_t)(x1 + 0.5f);
            y[4 + j] = (uint8_t)((q0 < 15 ? q0 : 15) | ((q1 < 15 ? q1 : 15) << 4));
        }
    }
}

/* bf16: round to nearest even on the upper 16 bits; NaN stays NaN (quiet bit forced), as
   ggml_compute_fp32_to_bf16 does (current ggml keeps subnormals). */
static void quantize_bf16(const float *x, uint8_t *y, int64_t cols) {
    for (int64_t i = 0; i < cols; i++) {
        const uint32_t u = ck_float_bits(x[i]);
        uint16_t h;
        if ((u & 0x7FFFFFFF) > 0x7F800000) {
            h = (uint16_t)((u >> 16) | 64);
        } else {
            h = (uint16_t)((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
        }
        ck_store_u16(y + 2 * i, h);
    }
}

void ck_quantize_row(int format, const float *x, uint8_t *y, int64_t cols) {
    switch (format) {
    case CK_Q8_0: quantize_q8_0(x, y, cols); break;
    case CK_Q4_0: quantize_q4_0(x, y, cols); break;
    case CK_Q4_1: quantize_q4_1(x, y, cols); break;
    case CK_BF16: quantize_bf16(x, y, cols); break;
    default: break;
    }
}
