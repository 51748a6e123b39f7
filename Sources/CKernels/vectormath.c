#include "internal.h"

/* Element-wise exponentials for softmax rows, log-sum-exp and sigmoid-gated activations.
   The AVX2 path evaluates the same polynomial as CALMTensor's FastMath.exp (x = n ln2 + y,
   degree-6 polynomial for e^y, 2^n through the exponent bits) eight lanes at a time; Swift
   code here is compiled for baseline x86-64 and would run it as two SSE halves. */

#if defined(__x86_64__)
CK_AVX2 static inline __m256 exp8(__m256 x) {
    /* min/max return their second operand when either is NaN: x goes second, so a NaN stays a
       NaN (a diverging run's loss must show it) instead of becoming a clamp bound. */
    const __m256 clamped = _mm256_max_ps(_mm256_set1_ps(-87.0f), _mm256_min_ps(_mm256_set1_ps(88.0f), x));
    const __m256 magic = _mm256_set1_ps(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
    const __m256 shifted = _mm256_fmadd_ps(clamped, _mm256_set1_ps(1.4426950408889634f), magic);
    const __m256 n = _mm256_sub_ps(shifted, magic);
    const __m256i nBits = _mm256_sub_epi32(_mm256_castps_si256(shifted), _mm256_set1_epi32(0x4B400000));
    __m256 y = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), clamped); /* Cody-Waite: exact reduction */
    y = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), y);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(1.0f));
    const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(nBits, _mm256_set1_epi32(127)), 23));
    /* Below the clamp the true value underflows: exact zeros (masked scores, -inf). */
    return _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ), _mm256_mul_ps(p, scale));
}

/* The first `left` (< 8) lanes from p, the rest `fill`. */
CK_AVX2 static inline __m256 load_partial(const float *p, int64_t left, float fill) {
    float lanes[8];
    for (int l = 0; l < 8; l++) lanes[l] = l < left ? p[l] : fill;
    return _mm256_loadu_ps(lanes);
}

CK_AVX2 static float exp_shifted_avx2(float *row, int64_t n, float shift, int write) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(row + j), s));
        if (write) _mm256_storeu_ps(row + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    float total = ck_hsum8(sum);
    if (j < n) { /* the tail as one partial vector */
        float lanes[8];
        _mm256_storeu_ps(lanes, exp8(_mm256_sub_ps(load_partial(row + j, n - j, 0.0f), s)));
        for (int64_t l = 0; l < n - j; l++) {
            if (write) row[j + l] = lanes[l];
            total += lanes[l];
        }
    }
    return total;
}

CK_AVX2 static float row_max_avx2(const float *row, int64_t n) {
    __m256 best = _mm256_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) best = _mm256_max_ps(_mm256_loadu_ps(row + j), best); /* a NaN lane keeps best */
    float lanes[8], largest = -INFINITY;
    _mm256_storeu_ps(lanes, best);
    for (int l = 0; l < 8; l++) largest = lanes[l] > largest ? lanes[l] : largest;
    for (; j < n; j++) largest = row[j] > largest ? row[j] : largest;
    return largest;
}

CK_AVX2 static void scale_row_avx2(float *row, int64_t n, float factor) {
    const __m256 f = _mm256_set1_ps(factor);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), f));
    for (; j < n; j++) row[j] *= factor;
}

CK_AVX2 static inline __m256 sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

CK_AVX2 static void sigmoid_avx2(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, sigmoid8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float lanes[8];
        _mm256_storeu_ps(lanes, sigmoid8(load_partial(x + i, n - i, 0.0f)));
        for (int64_t l = 0; l < n - i; l++) y[i + l] = lanes[l];
    }
}
CK_AVX2 static void swiglu_forward_avx2(const float *x, const float *u, float *o, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_mul_ps(xv, sigmoid8(xv)), _mm256_loadu_ps(u + i)));
    }
    if (i < n) {
        float lanes[8];
        const __m256 xv = load_partial(x + i, n - i, 0.0f);
        _mm256_storeu_ps(lanes, _mm256_mul_ps(_mm256_mul_ps(xv, sigmoid8(xv)), load_partial(u + i, n - i, 0.0f)));
        for (int64_t l = 0; l < n - i; l++) o[i + l] = lanes[l];
    }
}

/* Eight lanes of the SwiGLU backward. dx is stored before du is loaded, so the two may be the
   same buffer (act(x) * x: both gradients go to one tensor). */
CK_AVX2 static inline void swiglu_backward8(const float *x, const float *u, const float *g, float *dx, float *du,
                                            int accumulate_dx, int accumulate_du) {
    const __m256 xv = _mm256_loadu_ps(x), uv = _mm256_loadu_ps(u), gv = _mm256_loadu_ps(g), s = sigmoid8(xv);
    const __m256 one = _mm256_set1_ps(1.0f);
    if (dx) { /* g · u · s · (1 + x · (1 − s)) */
        const __m256 d = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(gv, uv), s),
                                       _mm256_fmadd_ps(xv, _mm256_sub_ps(one, s), one));
        _mm256_storeu_ps(dx, accumulate_dx ? _mm256_add_ps(_mm256_loadu_ps(dx), d) : d);
    }
    if (du) { /* g · x · s */
        const __m256 d = _mm256_mul_ps(_mm256_mul_ps(gv, xv), s);
        _mm256_storeu_ps(du, accumulate_du ? _mm256_add_ps(_mm256_loadu_ps(du), d) : d);
    }
}

CK_AVX2 static void swiglu_backward_avx2(const float *x, const float *u, const float *g, float *dx, float *du,
                                         int64_t n, int accumulate_dx, int accumulate_du) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        swiglu_backward8(x + i, u + i, g + i, dx ? dx + i : NULL, du ? du + i : NULL, accumulate_dx, accumulate_du);
    if (i < n) { /* the tail through eight-lane copies */
        const int64_t left = n - i;
        float xs[8] = {0}, us[8] = {0}, gs[8] = {0}, dxs[8] = {0}, dus[8] = {0};
        memcpy(xs, x + i, sizeof(float) * (size_t)left);
        memcpy(us, u + i, sizeof(float) * (size_t)left);
        memcpy(gs, g + i, sizeof(float) * (size_t)left);
        if (dx && accumulate_dx) memcpy(dxs, dx + i, sizeof(float) * (size_t)left);
        if (du && accumulate_du) memcpy(dus, du + i, sizeof(float) * (size_t)left);
        float *dua = du == dx ? dxs : dus; /* keep the aliasing of the full-width path */
        swiglu_backward8(xs, us, gs, dx ? dxs : NULL, du ? dua : NULL, accumulate_dx, accumulate_du);
        if (dx) memcpy(dx + i, dxs, sizeof(float) * (size_t)left);
        if (du && du != dx) memcpy(du + i, dus, sizeof(float) * (size_t)left);
    }
}

CK_AVX2 static void softmax_backward_row_avx2(const float *p, float *d, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(p + j), _mm256_loadu_ps(d + j), acc);
    float dot = ck_hsum8(acc);
    for (int64_t k = j; k < n; k++) dot += p[k] * d[k];
    const __m256 shift = _mm256_set1_ps(dot);
    for (j = 0; j + 8 <= n; j += 8)
        _mm256_storeu_ps(d + j, _mm256_mul_ps(_mm256_loadu_ps(p + j), _mm256_sub_ps(_mm256_loadu_ps(d + j), shift)));
    for (; j < n; j++) d[j] = p[j] * (d[j] - dot);
}
#endif

void ck_swiglu_forward(const float *x, const float *u, float *o, int64_t n) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) { swiglu_forward_avx2(x, u, o, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) o[i] = x[i] / (1.0f + expf(-x[i])) * u[i];
}

void ck_swiglu_backward(const float *x, const float *u, const float *g, float *dx, float *du, int64_t n,
                        int accumulate_dx, int accumulate_du) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) { swiglu_backward_avx2(x, u, g, dx, du, n, accumulate_dx, accumulate_du); return; }
#endif
    for (int64_t i = 0; i < n; i++) {
        const float s = 1.0f / (1.0f + expf(-x[i]));
        if (dx) { const float d = g[i] * u[i] * s * (1.0f + x[i] * (1.0f - s)); dx[i] = accumulate_dx ? dx[i] + d : d; }
        if (du) { const float d = g[i] * x[i] * s; du[i] = accumulate_du ? du[i] + d : d; }
    }
}

void ck_softmax_backward_row(const float *p, float *d, int64_t n) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) { softmax_backward_row_avx2(p, d, n); return; }
#endif
    float dot = 0.0f;
    for (int64_t j = 0; j < n; j++) dot += p[j] * d[j];
    for (int64_t j = 0; j < n; j++) d[j] = p[j] * (d[j] - dot);
}

static float exp_shifted_portable(float *row, int64_t n, float shift, int write) {
    float sum = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        const float e = expf(row[j] - shift);
        if (write) row[j] = e;
        sum += e;
    }
    return sum;
}

float ck_exp_shifted(float *row, int64_t n, float shift) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) return exp_shifted_avx2(row, n, shift, 1);
#endif
    return exp_shifted_portable(row, n, shift, 1);
}

float ck_sum_exp_shifted(const float *row, int64_t n, float shift) {
    /* write = 0: the row is only read */
#if defined(__x86_64__)
    if (ck_uses_avx2()) return exp_shifted_avx2((float *)row, n, shift, 0);
#endif
    return exp_shifted_portable((float *)row, n, shift, 0);
}

void ck_sigmoid(const float *x, float *y, int64_t n) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) { sigmoid_avx2(x, y, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

float ck_row_max(const float *row, int64_t n) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) return row_max_avx2(row, n);
#endif
    float largest = -INFINITY;
    for (int64_t j = 0; j < n; j++) largest = row[j] > largest ? row[j] : largest;
    return largest;
}

void ck_scale_row(float *row, int64_t n, float factor) {
#if defined(__x86_64__)
    if (ck_uses_avx2()) { scale_row_avx2(row, n, factor); return; }
#endif
    for (int64_t j = 0; j < n; j++) row[j] *= factor;
}
