#include "internal.h"

/* RMSNorm rows. The sums of squares and the backward's row dot product are reductions, which
   compilers keep scalar without fast-math (one add in flight at a time); here they run as
   eight-lane FMA accumulations. `w` is the effective per-channel scale (weight plus any offset). */

static void rmsnorm_forward_portable(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *y,
                                     float *inv_rms) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float ss = 0.0f;
        for (int64_t j = 0; j < n; j++) ss += xr[j] * xr[j];
        const float inv = 1.0f / sqrtf(ss / (float)n + eps);
        inv_rms[r] = inv;
        for (int64_t j = 0; j < n; j++) y[r * n + j] = xr[j] * inv * w[j];
    }
}

static void rmsnorm_backward_portable(const float *x, const float *w, const float *g, const float *inv_rms,
                                      int64_t rows, int64_t n, float *dx) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n, *gr = g + r * n;
        const float inv = inv_rms[r];
        float dot = 0.0f;
        for (int64_t j = 0; j < n; j++) dot += gr[j] * w[j] * xr[j];
        const float k = dot * inv * inv * inv / (float)n;
        for (int64_t j = 0; j < n; j++) dx[r * n + j] += inv * gr[j] * w[j] - k * xr[j];
    }
}

#if defined(__x86_64__)
CK_AVX2 static void rmsnorm_forward_avx2(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *y,
                                         float *inv_rms) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) {
            const __m256 u = _mm256_loadu_ps(xr + j), v = _mm256_loadu_ps(xr + j + 8);
            a0 = _mm256_fmadd_ps(u, u, a0);
            a1 = _mm256_fmadd_ps(v, v, a1);
        }
        for (; j + 8 <= n; j += 8) { const __m256 u = _mm256_loadu_ps(xr + j); a0 = _mm256_fmadd_ps(u, u, a0); }
        float ss = ck_hsum8(_mm256_add_ps(a0, a1));
        for (; j < n; j++) ss += xr[j] * xr[j];
        const float inv = 1.0f / sqrtf(ss / (float)n + eps);
        inv_rms[r] = inv;
        const __m256 s = _mm256_set1_ps(inv);
        for (j = 0; j + 8 <= n; j += 8)
            _mm256_storeu_ps(yr + j, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xr + j), s), _mm256_loadu_ps(w + j)));
        for (; j < n; j++) yr[j] = xr[j] * inv * w[j];
    }
}

CK_AVX2 static void rmsnorm_backward_avx2(const float *x, const float *w, const float *g, const float *inv_rms,
                                          int64_t rows, int64_t n, float *dx) {
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * n, *gr = g + r * n;
        float *dr = dx + r * n;
        const float inv = inv_rms[r];
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) {
            a0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(gr + j), _mm256_loadu_ps(w + j)), _mm256_loadu_ps(xr + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(gr + j + 8), _mm256_loadu_ps(w + j + 8)),
                                 _mm256_loadu_ps(xr + j + 8), a1);
        }
        for (; j + 8 <= n; j += 8)
            a0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(gr + j), _mm256_loadu_ps(w + j)), _mm256_loadu_ps(xr + j), a0);
        float dot = ck_hsum8(_mm256_add_ps(a0, a1));
        for (; j < n; j++) dot += gr[j] * w[j] * xr[j];
        const float k = dot * inv * inv * inv / (float)n;
        const __m256 vi = _mm256_set1_ps(inv), vk = _mm256_set1_ps(k);
        for (j = 0; j + 8 <= n; j += 8) {
            const __m256 gw = _mm256_mul_ps(_mm256_mul_ps(vi, _mm256_loadu_ps(gr + j)), _mm256_loadu_ps(w + j));
            const __m256 delta = _mm256_fnmadd_ps(vk, _mm256_loadu_ps(xr + j), gw);
            _mm256_storeu_ps(dr + j, _mm256_add_ps(_mm256_loadu_ps(dr + j), delta));
        }
        for (; j < n; j++) dr[j] += inv * gr[j] * w[j] - k * xr[j];
    }
}
#endif

void ck_rmsnorm_forward(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *y, float *inv_rms) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) { rmsnorm_forward_avx2(x, w, rows, n, eps, y, inv_rms); return; }
#endif
    rmsnorm_forward_portable(x, w, rows, n, eps, y, inv_rms);
}

void ck_rmsnorm_backward(const float *x, const float *w, const float *g, const float *inv_rms, int64_t rows, int64_t n,
                         float *dx) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) { rmsnorm_backward_avx2(x, w, g, inv_rms, rows, n, dx); return; }
#endif
    rmsnorm_backward_portable(x, w, g, inv_rms, rows, n, dx);
}
