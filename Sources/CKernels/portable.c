#include "internal.h"

/* Plain C versions for CPUs without AVX2 (and the tests' cross-check of the vector ones).
   Dequantized values are exact functions of the blocks: q * d (and q * d + m, multiplied
   and added separately, never fused), so every path yields the same floats. */
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

static void dequantize_row(int format, const uint8_t *w, int64_t cols, float *out) {
    switch (format) {
    case CK_Q8_0:
        for (int64_t b = 0; b < cols / CK_BLOCK; b++, w += 34, out += CK_BLOCK) {
            const float d = ck_half_to_float(ck_load_u16(w));
            const int8_t *q = (const int8_t *)(w + 2);
            for (int j = 0; j < CK_BLOCK; j++) out[j] = (float)q[j] * d;
        }
        break;
    case CK_Q4_0:
        for (int64_t b = 0; b < cols / CK_BLOCK; b++, w += 18, out += CK_BLOCK) {
            const float d = ck_half_to_float(ck_load_u16(w));
            for (int j = 0; j < CK_BLOCK / 2; j++) {
                out[j] = (float)((w[2 + j] & 0x0F) - 8) * d;
                out[j + CK_BLOCK / 2] = (float)((w[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case CK_Q4_1:
        for (int64_t b = 0; b < cols / CK_BLOCK; b++, w += 20, out += CK_BLOCK) {
            const float d = ck_half_to_float(ck_load_u16(w));
            const float m = ck_half_to_float(ck_load_u16(w + 2));
            for (int j = 0; j < CK_BLOCK / 2; j++) {
                const float p0 = (float)(w[4 + j] & 0x0F) * d;
                const float p1 = (float)(w[4 + j] >> 4) * d;
                out[j] = p0 + m;
                out[j + CK_BLOCK / 2] = p1 + m;
            }
        }
        break;
    case CK_BF16:
        for (int64_t i = 0; i < cols; i++) out[i] = ck_bf16_to_float(ck_load_u16(w + 2 * i));
        break;
    default: break;
    }
}

void ck_dequantize_rows_portable(int format, const uint8_t *w, int64_t rows, int64_t cols, float *out) {
    const size_t rowBytes = ck_row_bytes(format, cols);
    for (int64_t r = 0; r < rows; r++) dequantize_row(format, w + (size_t)r * rowBytes, cols, out + r * cols);
}

/* One row at a time through a block-sized buffer: simple, and still reads the weights once. */
void ck_matvec_portable(int format, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
                        const float *bias, float *y) {
    const size_t rowBytes = ck_row_bytes(format, cols);
    const size_t blockBytes = ck_row_bytes(format, CK_BLOCK);
    float values[CK_BLOCK];
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = w + (size_t)r * rowBytes;
        float sum = 0.0f;
        if (format == CK_F32) {
            const float *values = (const float *)(const void *)row;
            for (int64_t c = 0; c < cols; c++) sum += values[c] * x[c];
        } else if (format == CK_BF16) {
            /* bf16 rows need not be a whole number of blocks. */
            for (int64_t c = 0; c < cols; c++) sum += ck_bf16_to_float(ck_load_u16(row + 2 * c)) * x[c];
        } else {
            for (int64_t b = 0; b < cols / CK_BLOCK; b++) {
                dequantize_row(format, row + (size_t)b * blockBytes, CK_BLOCK, values);
                for (int j = 0; j < CK_BLOCK; j++) sum += values[j] * x[b * CK_BLOCK + j];
            }
        }
        y[r] = bias ? sum + bias[r] : sum;
    }
}
