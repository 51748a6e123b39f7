#include "internal.h"
#include <stdlib.h>

/* Multi-head attention, forward and backward, as one task per (batch row, head) in the pool
   (ck_parallel_for) instead of two small GEMMs per head.

   Each task works on blocks of four query rows. Scores use a transposed copy of the head's keys
   (D, S), so eight keys take one vector load per head dimension and no horizontal sums; causal
   rows stop at their last visible key (half the work of a full (T, S) product). Probabilities
   are only written out when the backward needs them. The backward runs one task per (batch row,
   key/value head) so that the query heads sharing a key/value head accumulate into dK and dV
   without races. */

typedef struct {
    const ck_attention_shape *s;
    const float *q, *k, *v;
    const uint8_t *key_mask;
    const float *probabilities; /* backward input */
    float *out, *probs_out;     /* forward outputs */
    const float *grad_out;
    float *grad_q, *grad_k, *grad_v;
    int portable;
} attention_job;

static inline int64_t visible_keys(const ck_attention_shape *s, int64_t t) {
    if (!s->causal) return s->keys;
    const int64_t v = s->query_offset + t + 1;
    return v < 0 ? 0 : (v > s->keys ? s->keys : v);
}

static inline int64_t hidden_prefix(const ck_attention_shape *s, int64_t t) {
    if (s->window <= 0) return 0;
    const int64_t h = s->query_offset + t + 1 - s->window;
    return h < 0 ? 0 : (h > s->keys ? s->keys : h);
}

/* First query that sees key j (the dK / dV sums over queries start there). */
static inline int64_t first_query(const ck_attention_shape *s, int64_t j) {
    if (!s->causal) return 0;
    const int64_t t = j - s->query_offset;
    return t < 0 ? 0 : t;
}

/* ---- The three block products, portable ---------------------------------------------------
   scores:     c[i][j]  = alpha * sum_p a[i][p] * bt[p][j]              (j < n, rows i < 4)
   accumulate: c[i][x] (+)= alpha * sum_{j in [j0, j1)} w(i, j) * b[j][x]  (x < d), where
               w(i, j) = w[i * wsi + j * wsj] (a row block of P or dS, or of its transpose). */

static void scores_portable(const float *a, int64_t lda, int rows, const float *bt, int64_t ldb, int64_t d,
                            int64_t n, float alpha, float *c, int64_t ldc) {
    for (int i = 0; i < rows; i++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t p = 0; p < d; p++) acc += a[i * lda + p] * bt[p * ldb + j];
            c[i * ldc + j] = alpha * acc;
        }
}

static void accumulate_portable(const float *w, int64_t wsi, int64_t wsj, int rows, int64_t j0, int64_t j1,
                                const float *b, int64_t ldb, int64_t d, float alpha, float *c, int64_t ldc,
                                int add) {
    for (int i = 0; i < rows; i++)
        for (int64_t x = 0; x < d; x++) {
            float acc = 0.0f;
            for (int64_t j = j0; j < j1; j++) acc += w[i * wsi + j * wsj] * b[j * ldb + x];
            c[i * ldc + x] = (add ? c[i * ldc + x] : 0.0f) + alpha * acc;
        }
}

#if defined(__x86_64__)
/* n must be a multiple of 8 (bt is padded with zero columns). */
CK_AVX2 static void scores_avx2(const float *a, int64_t lda, int rows, const float *bt, int64_t ldb, int64_t d,
                                int64_t n, float alpha, float *c, int64_t ldc) {
    const float *a0 = a, *a1 = rows > 1 ? a + lda : a, *a2 = rows > 2 ? a + 2 * lda : a, *a3 = rows > 3 ? a + 3 * lda : a;
    const __m256 scale = _mm256_set1_ps(alpha);
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        for (int64_t p = 0; p < d; p++) {
            const __m256 b0 = _mm256_loadu_ps(bt + p * ldb + j), b1 = _mm256_loadu_ps(bt + p * ldb + j + 8);
            __m256 x = _mm256_broadcast_ss(a0 + p);
            c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(a1 + p);
            c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(a2 + p);
            c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(a3 + p);
            c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        }
        const __m256 out[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
        for (int i = 0; i < rows; i++) {
            _mm256_storeu_ps(c + i * ldc + j, _mm256_mul_ps(scale, out[i][0]));
            _mm256_storeu_ps(c + i * ldc + j + 8, _mm256_mul_ps(scale, out[i][1]));
        }
    }
    for (; j < n; j += 8) {
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (int64_t p = 0; p < d; p++) {
            const __m256 b0 = _mm256_loadu_ps(bt + p * ldb + j);
            c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + p), b0, c0);
            c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + p), b0, c1);
            c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + p), b0, c2);
            c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + p), b0, c3);
        }
        const __m256 out[4] = {c0, c1, c2, c3};
        for (int i = 0; i < rows; i++) _mm256_storeu_ps(c + i * ldc + j, _mm256_mul_ps(scale, out[i]));
    }
}

/* d must be a multiple of 8. */
CK_AVX2 static void accumulate_avx2(const float *w, int64_t wsi, int64_t wsj, int rows, int64_t j0, int64_t j1,
                                    const float *b, int64_t ldb, int64_t d, float alpha, float *c, int64_t ldc,
                                    int add) {
    const float *w0 = w, *w1 = rows > 1 ? w + wsi : w, *w2 = rows > 2 ? w + 2 * wsi : w, *w3 = rows > 3 ? w + 3 * wsi : w;
    const __m256 scale = _mm256_set1_ps(alpha);
    int64_t x = 0;
    for (; x + 16 <= d; x += 16) {
        __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        for (int64_t j = j0; j < j1; j++) {
            const __m256 b0 = _mm256_loadu_ps(b + j * ldb + x), b1 = _mm256_loadu_ps(b + j * ldb + x + 8);
            __m256 f = _mm256_broadcast_ss(w0 + j * wsj);
            c00 = _mm256_fmadd_ps(f, b0, c00); c01 = _mm256_fmadd_ps(f, b1, c01);
            f = _mm256_broadcast_ss(w1 + j * wsj);
            c10 = _mm256_fmadd_ps(f, b0, c10); c11 = _mm256_fmadd_ps(f, b1, c11);
            f = _mm256_broadcast_ss(w2 + j * wsj);
            c20 = _mm256_fmadd_ps(f, b0, c20); c21 = _mm256_fmadd_ps(f, b1, c21);
            f = _mm256_broadcast_ss(w3 + j * wsj);
            c30 = _mm256_fmadd_ps(f, b0, c30); c31 = _mm256_fmadd_ps(f, b1, c31);
        }
        const __m256 out[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
        for (int i = 0; i < rows; i++)
            for (int h = 0; h < 2; h++) {
                float *dst = c + i * ldc + x + 8 * h;
                const __m256 base = add ? _mm256_loadu_ps(dst) : _mm256_setzero_ps();
                _mm256_storeu_ps(dst, _mm256_fmadd_ps(scale, out[i][h], base));
            }
    }
    for (; x < d; x += 8) {
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (int64_t j = j0; j < j1; j++) {
            const __m256 b0 = _mm256_loadu_ps(b + j * ldb + x);
            c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w0 + j * wsj), b0, c0);
            c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(w1 + j * wsj), b0, c1);
            c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(w2 + j * wsj), b0, c2);
            c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(w3 + j * wsj), b0, c3);
        }
        const __m256 out[4] = {c0, c1, c2, c3};
        for (int i = 0; i < rows; i++) {
            float *dst = c + i * ldc + x;
            const __m256 base = add ? _mm256_loadu_ps(dst) : _mm256_setzero_ps();
            _mm256_storeu_ps(dst, _mm256_fmadd_ps(scale, out[i], base));
        }
    }
}

#endif

static void scores(const attention_job *job, const float *a, int64_t lda, int rows, const float *bt, int64_t ldb,
                   int64_t d, int64_t n, float alpha, float *c, int64_t ldc) {
#if defined(__x86_64__)
    if (!job->portable) { scores_avx2(a, lda, rows, bt, ldb, d, n, alpha, c, ldc); return; }
#endif
    scores_portable(a, lda, rows, bt, ldb, d, n, alpha, c, ldc);
}

static void accumulate(const attention_job *job, const float *w, int64_t wsi, int64_t wsj, int rows, int64_t j0,
                       int64_t j1, const float *b, int64_t ldb, int64_t d, float alpha, float *c, int64_t ldc, int add) {
#if defined(__x86_64__)
    if (!job->portable) { accumulate_avx2(w, wsi, wsj, rows, j0, j1, b, ldb, d, alpha, c, ldc, add); return; }
#endif
    accumulate_portable(w, wsi, wsj, rows, j0, j1, b, ldb, d, alpha, c, ldc, add);
}

static inline int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

#if defined(__x86_64__)
/* dst rows 0..7 (stride ldd) = columns 0..7 of src rows 0..7 (stride ld). */
CK_AVX2 static inline void transpose8x8(const float *src, int64_t ld, float *dst, int64_t ldd) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ld);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);     /* a_i0 a_j0 a_i1 a_j1 | a_i4 a_j4 a_i5 a_j5 */
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); /* a_i2 a_j2 a_i3 a_j3 | a_i6 a_j6 a_i7 a_j7 */
    }
    for (int i = 0; i < 8; i += 4) { /* columns c and c + 4 of four rows */
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int c = 0; c < 4; c++) {
        _mm256_storeu_ps(dst + c * ldd, _mm256_permute2f128_ps(u[c], u[c + 4], 0x20));
        _mm256_storeu_ps(dst + (c + 4) * ldd, _mm256_permute2f128_ps(u[c], u[c + 4], 0x31));
    }
}
#endif

/* dst (D, padded) = the S rows of one head (row stride ld) transposed; columns S..padded are 0.
   Whole 8 x 8 tiles go through registers (a column walk touches one cache line per key). */
static void transpose_head(const float *src, int64_t ld, int64_t keys, int64_t d, float *dst, int64_t padded) {
    int64_t tiledKeys = 0, tiledDims = 0;
#if defined(__x86_64__)
    if (ck_uses_avx2()) {
        tiledKeys = keys / 8 * 8;
        tiledDims = d / 8 * 8;
        for (int64_t j = 0; j < tiledKeys; j += 8)
            for (int64_t p = 0; p < tiledDims; p += 8) transpose8x8(src + j * ld + p, ld, dst + p * padded + j, padded);
    }
#endif
    for (int64_t p = 0; p < d; p++) {
        float *row = dst + p * padded;
        for (int64_t j = p < tiledDims ? tiledKeys : 0; j < keys; j++) row[j] = src[j * ld + p];
        for (int64_t j = keys; j < padded; j++) row[j] = 0.0f;
    }
}

/* Turns one row of scaled scores into probabilities: keys before `low` (outside the window),
   masked keys and keys from `visible` on get 0, up to `width`. */
static void softmax_row(const attention_job *job, float *row, int64_t b, int64_t low, int64_t visible, int64_t width) {
    const ck_attention_shape *s = job->s;
    if (low > visible) low = visible;
    for (int64_t j = 0; j < low; j++) row[j] = -INFINITY;
    if (job->key_mask)
        for (int64_t j = low; j < visible; j++)
            if (!job->key_mask[b * s->keys + j]) row[j] = -INFINITY;
    const float largest = ck_row_max(row, visible);
    if (largest == -INFINITY) { /* nothing visible: the row's result is defined as zeros */
        memset(row, 0, sizeof(float) * (size_t)width);
        return;
    }
    ck_scale_row(row, visible, 1.0f / ck_exp_shifted(row, visible, largest));
    if (width > visible) memset(row + visible, 0, sizeof(float) * (size_t)(width - visible));
}

static void forward_tasks(void *ctx, int64_t begin, int64_t end) {
    const attention_job *job = ctx;
    const ck_attention_shape *s = job->s;
    const int64_t T = s->queries, S = s->keys, D = s->head_dim, H = s->heads, group = s->heads / s->kv_heads;
    const int64_t qRow = H * D, kvRow = s->kv_heads * D, padded = round8(S);
    float *kt = malloc(sizeof(float) * (size_t)(D * padded + 4 * padded));
    if (!kt) abort(); /* a few hundred KB: failing here means the process is out of memory anyway */
    float *block = kt + D * padded;
    for (int64_t task = begin; task < end; task++) {
        const int64_t b = task / H, h = task % H;
        const float *qh = job->q + b * T * qRow + h * D;
        const float *kh = job->k + b * s->kv_batch_stride + (h / group) * D;
        const float *vh = job->v + b * s->kv_batch_stride + (h / group) * D;
        float *oh = job->out + b * T * qRow + h * D;
        transpose_head(kh, kvRow, S, D, kt, padded);
        for (int64_t t0 = 0; t0 < T; t0 += 4) {
            const int rows = T - t0 < 4 ? (int)(T - t0) : 4;
            const int64_t width = visible_keys(s, t0 + rows - 1); /* the block's widest row */
            const int64_t width8 = round8(width);
            // The rows are computed where the backward reads them when their stride allows
            // (S a multiple of 8), else in the scratch block and copied.
            float *p = job->probs_out ? job->probs_out + ((b * H + h) * T + t0) * S : NULL;
            const int inPlace = p && padded == S;
            float *prob = inPlace ? p : block;
            // prob rows (rows, width8) = scale · Q rows · Kᵀ
            if (width8 > 0) scores(job, qh + t0 * qRow, qRow, rows, kt, padded, D, width8, s->scale, prob, padded);
            for (int i = 0; i < rows; i++)
                softmax_row(job, prob + i * padded, b, hidden_prefix(s, t0 + i), visible_keys(s, t0 + i), width8);
            // O rows (rows, D) = P rows (rows, width) · V (width, D)
            accumulate(job, prob, padded, 1, rows, 0, width, vh, kvRow, D, 1.0f, oh + t0 * qRow, qRow, 0);
            if (p)
                for (int i = 0; i < rows; i++) {
                    const int64_t written = inPlace ? width8 : width;
                    if (!inPlace) memcpy(p + i * S, block + i * padded, sizeof(float) * (size_t)width);
                    if (S > written) memset(p + i * S + written, 0, sizeof(float) * (size_t)(S - written));
                }
        }
    }
    free(kt);
}

static void backward_tasks(void *ctx, int64_t begin, int64_t end) {
    const attention_job *job = ctx;
    const ck_attention_shape *s = job->s;
    const int64_t T = s->queries, S = s->keys, D = s->head_dim, H = s->heads, group = s->heads / s->kv_heads;
    const int64_t qRow = H * D, kvRow = s->kv_heads * D, padded = round8(S);
    const int needScores = job->grad_q || job->grad_k;
    float *vt = needScores ? malloc(sizeof(float) * (size_t)(D * padded + T * padded)) : NULL;
    if (needScores && !vt) abort();
    float *ds = needScores ? vt + D * padded : NULL;
    for (int64_t task = begin; task < end; task++) {
        const int64_t b = task / s->kv_heads, kvh = task % s->kv_heads;
        const int64_t kvOff = b * s->kv_batch_stride + kvh * D;
        if (needScores) transpose_head(job->v + kvOff, kvRow, S, D, vt, padded);
        for (int64_t h = kvh * group; h < (kvh + 1) * group; h++) {
            const float *p = job->probabilities + (b * H + h) * T * S; /* (T, S) */
            const int64_t qOff = b * T * qRow + h * D;
            const float *dO = job->grad_out + qOff;
            if (job->grad_v)
                // dV rows j (S, D) += Pᵀ (S, T) · dO (T, D), over the queries that see key j
                for (int64_t j0 = 0; j0 < S; j0 += 4) {
                    const int rows = S - j0 < 4 ? (int)(S - j0) : 4;
                    accumulate(job, p + j0, 1, S, rows, first_query(s, j0), T, dO, qRow, D, 1.0f,
                               job->grad_v + kvOff + j0 * kvRow, kvRow, 1);
                }
            if (!needScores) continue;
            for (int64_t t0 = 0; t0 < T; t0 += 4) {
                const int rows = T - t0 < 4 ? (int)(T - t0) : 4;
                const int64_t width8 = round8(visible_keys(s, t0 + rows - 1));
                float *dsRows = ds + t0 * padded;
                // dP rows (rows, width8) = dO rows · Vᵀ
                if (width8 > 0) scores(job, dO + t0 * qRow, qRow, rows, vt, padded, D, width8, 1.0f, dsRows, padded);
                // dScores = P ⊙ (dP − Σ_j dP·P); P is 0 wherever a key is not seen
                for (int i = 0; i < rows; i++) {
                    const int64_t visible = visible_keys(s, t0 + i);
                    const float *pr = p + (t0 + i) * S;
                    float *dr = dsRows + i * padded;
                    ck_softmax_backward_row(pr, dr, visible);
                    for (int64_t j = visible; j < padded; j++) dr[j] = 0.0f;
                }
                if (job->grad_q)
                    // dQ rows (rows, D) += scale · dScores (rows, width) · K (width, D)
                    accumulate(job, dsRows, padded, 1, rows, 0, visible_keys(s, t0 + rows - 1), job->k + kvOff, kvRow,
                               D, s->scale, job->grad_q + qOff + t0 * qRow, qRow, 1);
            }
            if (job->grad_k)
                // dK rows j (S, D) += scale · dScoresᵀ (S, T) · Q (T, D)
                for (int64_t j0 = 0; j0 < S; j0 += 4) {
                    const int rows = S - j0 < 4 ? (int)(S - j0) : 4;
                    accumulate(job, ds + j0, 1, padded, rows, first_query(s, j0), T, job->q + qOff, qRow, D, s->scale,
                               job->grad_k + kvOff + j0 * kvRow, kvRow, 1);
                }
        }
    }
    free(vt);
}

static int use_portable(const ck_attention_shape *s) {
    return s->portable || !ck_uses_avx2() || s->head_dim % 8 != 0;
}

void ck_attention_forward(const ck_attention_shape *s, const float *q, const float *k, const float *v,
                          const uint8_t *key_mask, float *out, float *probabilities, int threads) {
    if (s->queries <= 0 || s->batch <= 0) return;
    attention_job job;
    memset(&job, 0, sizeof job);
    job.s = s; job.q = q; job.k = k; job.v = v; job.key_mask = key_mask;
    job.out = out; job.probs_out = probabilities; job.portable = use_portable(s);
    ck_parallel_for(s->batch * s->heads, 1, threads, forward_tasks, &job);
}

void ck_attention_backward(const ck_attention_shape *s, const float *q, const float *k, const float *v,
                           const float *probabilities, const float *grad_out, float *grad_q, float *grad_k,
                           float *grad_v, int threads) {
    if (s->queries <= 0 || s->keys <= 0 || s->batch <= 0) return;
    attention_job job;
    memset(&job, 0, sizeof job);
    job.s = s; job.q = q; job.k = k; job.v = v; job.probabilities = probabilities; job.grad_out = grad_out;
    job.grad_q = grad_q; job.grad_k = grad_k; job.grad_v = grad_v; job.portable = use_portable(s);
    ck_parallel_for(s->batch * s->kv_heads, 1, threads, backward_tasks, &job);
}
