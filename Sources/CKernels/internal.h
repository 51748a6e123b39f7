#ifndef CALM_CKERNELS_INTERNAL_H
#define CALM_CKERNELS_INTERNAL_H
#include "CKernels.h"
#include <math.h>
#include <string.h>

#define CK_BLOCK 32

#if defined(__x86_64__)
#include <immintrin.h>
/* AVX2 + FMA + F16C kernels carry this target attribute each instead of compiling their files
   with -mavx2, so the portable code around them stays runnable on any x86-64 CPU and the
   callers choose at run time (ck_uses_avx2 checks all three features). */
#define CK_AVX2 __attribute__((target("avx2,fma,f16c")))

/* The sum of a vector's eight lanes. */
CK_AVX2 static inline float ck_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

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

/* The largest of row[0..n) (-inf for n = 0; NaNs are skipped) and row[j] *= factor, for the
   attention kernels' softmax rows (vectormath.c). */
float ck_row_max(const float *row, int64_t n);
void ck_scale_row(float *row, int64_t n, float factor);
/* d = p ⊙ (d − Σ p·d): a softmax row's input gradient from its output gradient d and output p. */
void ck_softmax_backward_row(const float *p, float *d, int64_t n);

/* The AVX2 versions (kernels.c picks them at run time when the CPU has AVX2, FMA and F16C). */
void ck_dequantize_rows_avx2(int format, const uint8_t *w, int64_t rows, int64_t cols, float *out);
/* Whether `format` stores 32-value blocks with scales (multiplied against int16 activation
   codes) rather than plain values per element (bf16, f32). */
static inline int ck_is_block_format(int format) { return format == CK_Q8_0 || format == CK_Q4_0 || format == CK_Q4_1; }

/* The sum of 32 consecutive values, in a fixed order (every path gets the same float). */
static inline float ck_block_sum(const float *x) {
    float s = 0.0f;
    for (int j = 0; j < CK_BLOCK; j++) s += x[j];
    return s;
}

/* One activation vector x as the kernels read it: the floats, their per-block sums (Q4_1's
   offset term) and, for the block formats, int16 codes with one scale per 32-value block
   (x[j] ~ codes[j] * scales[j / 32], scale = max |x| / 32767 of the block: a relative error
   of at most 1.5e-5 of the block's largest value, against 4e-3 for llama.cpp's int8 codes). */
typedef struct {
    const float *x;
    const float *sums;
    const int16_t *codes;
    const float *scales;
} ck_activation;

/* y[k * ldy + r] = W[r] . x_k (+ bias[r]) for weight rows r < rows and the n activations a[k]. */
void ck_matmul_avx2(int format, const uint8_t *w, int64_t rows, int64_t cols, const ck_activation *a, int64_t n,
                    const float *bias, float *y, int64_t ldy);

/* The same through the AVX2 kernel when the CPU has it, else the portable one (which reads
   the activations' floats only). */
void ck_matmul_rows(int format, const uint8_t *w, int64_t rows, int64_t cols, const ck_activation *a, int64_t n,
                    const float *bias, float *y, int64_t ldy);
#endif
