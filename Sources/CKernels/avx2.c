#include "internal.h"
#if defined(__x86_64__)

/* AVX2 + FMA + F16C kernels for the block formats (kernels.c chooses them at run time). */

CK_AVX2 static inline __m256 low8(__m128i q) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)); }
CK_AVX2 static inline __m256 high8(__m128i q) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))); }

/* The 32 quants of a Q4_0 block as int8 in [-8, 7]: values 0-15 from the low nibbles, 16-31
   from the high nibbles. */
CK_AVX2 static inline void q4_nibbles(const uint8_t *qs, int subtract8, __m128i *first, __m128i *second) {
    const __m128i raw = _mm_loadu_si128((const __m128i *)qs);
    const __m128i mask = _mm_set1_epi8(0x0F);
    __m128i lo = _mm_and_si128(raw, mask);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), mask);
    if (subtract8) {
        const __m128i eight = _mm_set1_epi8(8);
        lo = _mm_sub_epi8(lo, eight);
        hi = _mm_sub_epi8(hi, eight);
    }
    *first = lo;
    *second = hi;
}

CK_AVX2 static inline __m256 bf16x8(const uint8_t *p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

/* One block of a block format with its quants widened to int16 (two halves of 16 values), its
   scale d and, for Q4_1, its minimum m. */
CK_AVX2 static inline void widen_block(int format, const uint8_t *block, __m256i *w0, __m256i *w1, float *d, float *m) {
    __m128i q0, q1;
    *d = _cvtsh_ss(ck_load_u16(block));
    switch (format) {
    case CK_Q8_0:
        q0 = _mm_loadu_si128((const __m128i *)(block + 2));
        q1 = _mm_loadu_si128((const __m128i *)(block + 18));
        *w0 = _mm256_cvtepi8_epi16(q0);
        *w1 = _mm256_cvtepi8_epi16(q1);
        break;
    case CK_Q4_0:
        q4_nibbles(block + 2, 1, &q0, &q1);
        *w0 = _mm256_cvtepi8_epi16(q0);
        *w1 = _mm256_cvtepi8_epi16(q1);
        break;
    default: /* CK_Q4_1 */
        *m = _cvtsh_ss(ck_load_u16(block + 2));
        q4_nibbles(block + 4, 0, &q0, &q1);
        *w0 = _mm256_cvtepu8_epi16(q0);
        *w1 = _mm256_cvtepu8_epi16(q1);
        break;
    }
}

/* One block's sum of q[j] * x16[j] as 8 int32 lanes (|q| <= 127, |x16| <= 32767: no overflow). */
CK_AVX2 static inline __m256i block_dot_i16(__m256i w0, __m256i w1, const int16_t *x) {
    return _mm256_add_epi32(_mm256_madd_epi16(w0, _mm256_loadu_si256((const __m256i *)x)),
                            _mm256_madd_epi16(w1, _mm256_loadu_si256((const __m256i *)(x + 16))));
}

static inline size_t block_bytes(int format) { return format == CK_Q8_0 ? 34 : (format == CK_Q4_0 ? 18 : 20); }

/* Block formats against int16 activation codes: each block of x is x16 * scale (ck_activation),
   so a block's product is d * scale * (integer dot), with exact integer sums inside the block.
   For Q4_1, sum (q d + m) x = d sum q x + m sum x: the offset needs only the block's float sum
   of x, computed once per product, not once per row. */
CK_AVX2 static float dot_row_blocks(int format, const uint8_t *row, int64_t cols, const ck_activation *a) {
    const int64_t blocks = cols / CK_BLOCK;
    const size_t step = block_bytes(format);
    __m256 acc = _mm256_setzero_ps();
    float offset = 0.0f, m = 0.0f, d;
    __m256i w0, w1;
    for (int64_t b = 0; b < blocks; b++, row += step) {
        widen_block(format, row, &w0, &w1, &d, &m);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * a->scales[b]), _mm256_cvtepi32_ps(block_dot_i16(w0, w1, a->codes + b * CK_BLOCK)), acc);
        if (format == CK_Q4_1) offset = fmaf(m, a->sums[b], offset);
    }
    return ck_hsum8(acc) + offset;
}

/* The same for `rows` (at most 8) activation rows at once, each block widened once; every
   row's operations are those of dot_row_blocks in the same order, so the results are
   bit-identical to it. Inlined with a constant `rows`, so the loops over rows unroll. */
CK_AVX2 static inline __attribute__((always_inline)) void dot_rows_blocks(int format, const uint8_t *row, int64_t cols,
                                                                          const ck_activation *a, float *out,
                                                                          const int rows) {
    const int64_t blocks = cols / CK_BLOCK;
    const size_t step = block_bytes(format);
    __m256 acc[8];
    float offset[8], m = 0.0f, d;
    for (int k = 0; k < rows; k++) {
        acc[k] = _mm256_setzero_ps();
        offset[k] = 0.0f;
    }
    __m256i w0, w1;
    for (int64_t b = 0; b < blocks; b++, row += step) {
        widen_block(format, row, &w0, &w1, &d, &m);
        for (int k = 0; k < rows; k++) {
            const __m256i p = block_dot_i16(w0, w1, a[k].codes + b * CK_BLOCK);
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * a[k].scales[b]), _mm256_cvtepi32_ps(p), acc[k]);
            if (format == CK_Q4_1) offset[k] = fmaf(m, a[k].sums[b], offset[k]);
        }
    }
    for (int k = 0; k < rows; k++) out[k] = ck_hsum8(acc[k]) + offset[k];
}

/* Eight rows: half the block widening of four per activation row (decode batches of 8-32). */
CK_AVX2 static void dot_rows8_blocks(int format, const uint8_t *row, int64_t cols, const ck_activation *a, float *out) {
    dot_rows_blocks(format, row, cols, a, out, 8);
}

CK_AVX2 static void dot_rows4_blocks(int format, const uint8_t *row, int64_t cols, const ck_activation *a, float *out) {
    dot_rows_blocks(format, row, cols, a, out, 4);
}

CK_AVX2 static float dot_row(int format, const uint8_t *row, int64_t cols, const ck_activation *a) {
    __m256 acc = _mm256_setzero_ps();
    switch (format) {
    case CK_Q8_0:
    case CK_Q4_0:
    case CK_Q4_1:
        return dot_row_blocks(format, row, cols, a);
    case CK_BF16: {
        const float *xf = a->x;
        int64_t c = 0;
        __m256 acc2 = _mm256_setzero_ps();
        for (; c + 16 <= cols; c += 16) {
            acc = _mm256_fmadd_ps(bf16x8(row + 2 * c), _mm256_loadu_ps(xf + c), acc);
            acc2 = _mm256_fmadd_ps(bf16x8(row + 2 * c + 16), _mm256_loadu_ps(xf + c + 8), acc2);
        }
        float sum = ck_hsum8(_mm256_add_ps(acc, acc2));
        for (; c < cols; c++) sum += ck_bf16_to_float(ck_load_u16(row + 2 * c)) * xf[c];
        return sum;
    }
    case CK_F32: {
        const float *w = (const float *)(const void *)row, *xf = a->x;
        __m256 acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
        int64_t c = 0;
        for (; c + 32 <= cols; c += 32) {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(xf + c), acc);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 8), _mm256_loadu_ps(xf + c + 8), acc1);
            acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 16), _mm256_loadu_ps(xf + c + 16), acc2);
            acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + c + 24), _mm256_loadu_ps(xf + c + 24), acc3);
        }
        for (; c + 8 <= cols; c += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(xf + c), acc);
        float sum = ck_hsum8(_mm256_add_ps(_mm256_add_ps(acc, acc1), _mm256_add_ps(acc2, acc3)));
        for (; c < cols; c++) sum += w[c] * xf[c];
        return sum;
    }
    default: return 0.0f;
    }
}

CK_AVX2 void ck_matmul_avx2(int format, const uint8_t *w, int64_t rows, int64_t cols, const ck_activation *a, int64_t n,
                            const float *bias, float *y, int64_t ldy) {
    const size_t rowBytes = ck_row_bytes(format, cols);
    const int blocks = ck_is_block_format(format);
    float some[8];
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = w + (size_t)r * rowBytes;
        const float b = bias ? bias[r] : 0.0f;
        int64_t k = 0;
        if (blocks) {
            for (; k + 8 <= n; k += 8) {
                dot_rows8_blocks(format, row, cols, a + k, some);
                for (int i = 0; i < 8; i++) y[(k + i) * ldy + r] = bias ? some[i] + b : some[i];
            }
            for (; k + 4 <= n; k += 4) {
                dot_rows4_blocks(format, row, cols, a + k, some);
                for (int i = 0; i < 4; i++) y[(k + i) * ldy + r] = bias ? some[i] + b : some[i];
            }
        }
        for (; k < n; k++) {
            const float sum = dot_row(format, row, cols, a + k);
            y[k * ldy + r] = bias ? sum + b : sum;
        }
    }
}

/* Same values as the portable dequantizer: q * d exactly, and for Q4_1 a separate multiply
   and add (no FMA), so both paths give identical floats. */
CK_AVX2 static void store_block(__m128i q0, __m128i q1, __m256 d, const __m256 *m, float *out) {
    __m256 v[4] = {_mm256_mul_ps(low8(q0), d), _mm256_mul_ps(high8(q0), d), _mm256_mul_ps(low8(q1), d),
                   _mm256_mul_ps(high8(q1), d)};
    for (int i = 0; i < 4; i++) _mm256_storeu_ps(out + 8 * i, m ? _mm256_add_ps(v[i], *m) : v[i]);
}

CK_AVX2 void ck_dequantize_rows_avx2(int format, const uint8_t *w, int64_t rows, int64_t cols, float *out) {
    const int64_t blocks = cols / CK_BLOCK;
    const size_t rowBytes = ck_row_bytes(format, cols);
    __m128i q0, q1;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = w + (size_t)r * rowBytes;
        float *o = out + r * cols;
        switch (format) {
        case CK_Q8_0:
            for (int64_t b = 0; b < blocks; b++, row += 34, o += CK_BLOCK) {
                q0 = _mm_loadu_si128((const __m128i *)(row + 2));
                q1 = _mm_loadu_si128((const __m128i *)(row + 18));
                store_block(q0, q1, _mm256_set1_ps(_cvtsh_ss(ck_load_u16(row))), NULL, o);
            }
            break;
        case CK_Q4_0:
            for (int64_t b = 0; b < blocks; b++, row += 18, o += CK_BLOCK) {
                q4_nibbles(row + 2, 1, &q0, &q1);
                store_block(q0, q1, _mm256_set1_ps(_cvtsh_ss(ck_load_u16(row))), NULL, o);
            }
            break;
        case CK_Q4_1:
            for (int64_t b = 0; b < blocks; b++, row += 20, o += CK_BLOCK) {
                const __m256 m = _mm256_set1_ps(_cvtsh_ss(ck_load_u16(row + 2)));
                q4_nibbles(row + 4, 0, &q0, &q1);
                store_block(q0, q1, _mm256_set1_ps(_cvtsh_ss(ck_load_u16(row))), &m, o);
            }
            break;
        case CK_BF16: {
            int64_t c = 0;
            for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(o + c, bf16x8(row + 2 * c));
            for (; c < cols; c++) o[c] = ck_bf16_to_float(ck_load_u16(row + 2 * c));
            break;
        }
        default: break;
        }
    }
}
#endif
