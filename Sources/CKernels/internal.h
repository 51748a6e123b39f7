#ifndef CALM_CKERNELS_INTERNAL_H
#define CALM_CKERNELS_INTERNAL_H
#include "CKernels.h"
#include <math.h>
#include <string.h>

#define CK_BLOCK 32

/* Loads and stores go through memcpy: blocks are 18, 20 or 34 bytes long, so scales and
   quants are rarely aligned. */
static inline uint16_t ck_load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void ck_store_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, sizeof v); }

static inline uint32_t ck_float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float ck_bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float ck_bf16_to_float(uint16_t h) { return ck_bits_float((uint32_t)h << 16); }

/* The AVX2 versions (kernels.c picks them at run time when the CPU has AVX2, FMA and F16C). */
void ck_dequantize_rows_avx2(int format, const uint8_t *w, int64_t rows, int64_t cols, float *out);
void ck_matvec_avx2(int format, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
                    const float *bias, float *y);
#endif
