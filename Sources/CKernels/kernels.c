#include "internal.h"

/* Decided before main (a constructor), so threads never race to decide it. */
static int avx2_available = 0;

__attribute__((constructor)) static void ck_detect_cpu(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    avx2_available = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
}

int ck_uses_avx2(void) { return avx2_available; }

void ck_dequantize_rows(int format, const uint8_t *w, int64_t rows, int64_t cols, float *out) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) { ck_dequantize_rows_avx2(format, w, rows, cols, out); return; }
#endif
    ck_dequantize_rows_portable(format, w, rows, cols, out);
}

void ck_matmul_rows(int format, const uint8_t *w, int64_t rows, int64_t cols, const ck_activation *a, int64_t n,
                    const float *bias, float *y, int64_t ldy) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) { ck_matmul_avx2(format, w, rows, cols, a, n, bias, y, ldy); return; }
#endif
    for (int64_t k = 0; k < n; k++) ck_matvec_portable(format, w, rows, cols, a[k].x, bias, y + k * ldy);
}

void ck_matvec(int format, const uint8_t *w, int64_t rows, int64_t cols, const float *x, const float *bias, float *y) {
    ck_matmul_threads(format, w, rows, cols, x, 1, bias, y, 1);
}

void ck_matvec_threads(int format, const uint8_t *w, int64_t rows, int64_t cols, const float *x, const float *bias,
                       float *y, int threads) {
    ck_matmul_threads(format, w, rows, cols, x, 1, bias, y, threads);
}
