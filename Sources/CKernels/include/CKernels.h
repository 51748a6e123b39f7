#ifndef CALM_CKERNELS_H
#define CALM_CKERNELS_H
#include <stddef.h>
#include <stdint.h>

/* Kernels for frozen weights stored in ggml's block formats. A matrix is `rows` rows of
   `cols` values; each row is its own run of blocks (row_bytes apart), so a row range is a
   plain pointer offset. Every product accumulates in float32. */

/* Block formats, numbered as the Swift `QuantizationFormat` raw values expect. */
enum {
    CK_Q8_0 = 0,  /* 34 bytes per 32 values: f16 d, 32 x int8 q;          value = q * d      */
    CK_Q4_0 = 1,  /* 18 bytes per 32 values: f16 d, 16 bytes of nibbles;   value = (q - 8) * d */
    CK_Q4_1 = 2,  /* 20 bytes per 32 values: f16 d, f16 m, 16 bytes;       value = q * d + m  */
    CK_BF16 = 3,  /* 2 bytes per value: the upper half of a float32                           */
    CK_F32 = 4    /* plain float32 rows (ck_matvec / ck_matvec_threads only): trainable or f32
                     frozen weights use the same threads during decoding as quantized ones   */
};

/* Bytes of one row of `cols` values (cols must be a multiple of the block size). */
size_t ck_row_bytes(int format, int64_t cols);

/* f32 -> blocks with ggml's quantize_row_*_ref rounding (and its fp32 -> bf16 conversion). */
void ck_quantize_row(int format, const float *x, uint8_t *y, int64_t cols);

/* rows x cols values from `w` (rows of row_bytes) into `out` (rows, cols), row-major. */
void ck_dequantize_rows(int format, const uint8_t *w, int64_t rows, int64_t cols, float *out);

/* y[r] = sum_c W[r, c] x[c] (+ bias[r] when bias is not NULL), for r < rows. */
void ck_matvec(int format, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
               const float *bias, float *y);

/* The same product split over `threads` threads (the caller and a pool of spinning workers;
   see pool.c). Each row's value does not depend on the split. */
void ck_matvec_threads(int format, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
                       const float *bias, float *y, int threads);

/* Y (n, rows) = X (n, cols) . W^T (+ bias) for a few activation rows (decoding a batch of
   sequences, short prompts): each weight block is read and widened once for up to eight rows.
   Row k of Y equals ck_matvec_threads of row k of X, bit for bit. */
void ck_matmul_threads(int format, const uint8_t *w, int64_t rows, int64_t cols, const float *x, int64_t n,
                       const float *bias, float *y, int threads);

/* Runs fn(ctx, begin, end) over disjoint ranges covering tasks [0, tasks), split over
   `threads` threads (the caller and the pool's workers), at least `grain` tasks per range.
   Returns when all ranges are done. A second concurrent caller, or a call from inside a task,
   runs every task itself. */
void ck_parallel_for(int64_t tasks, int64_t grain, int threads, void (*fn)(void *ctx, int64_t begin, int64_t end),
                     void *ctx);

/* Multi-head scaled dot-product attention on row-major buffers. Queries (B, T, H, D); keys
   and values (B, S, Hkv, D) with batch entries kv_batch_stride floats apart (a KV cache may
   hold more rows than S); query head h reads key/value head h / (H / Hkv). */
typedef struct {
    int64_t batch, queries, keys, heads, kv_heads, head_dim;
    int64_t query_offset;    /* absolute position of query 0; key j has position j */
    int64_t window;          /* > 0: query at position p sees keys in (p - window, p]; 0: no window */
    int64_t kv_batch_stride; /* floats between batch entries of the keys and of the values */
    int causal;              /* query t sees keys at positions <= query_offset + t */
    int portable;            /* 1: plain C block products even on an AVX2 CPU (tests compare both) */
    float scale;
} ck_attention_shape;

/* out (B, T, H, D) = softmax(scale * Q K^T + mask) V. key_mask (B * S, 0 = hidden) may be NULL.
   When probabilities is not NULL it receives P as (B, H, T, S) for the backward. */
void ck_attention_forward(const ck_attention_shape *s, const float *q, const float *k, const float *v,
                          const uint8_t *key_mask, float *out, float *probabilities, int threads);

/* Adds dQ, dK and dV (each may be NULL) from dO and the forward's probabilities. */
void ck_attention_backward(const ck_attention_shape *s, const float *q, const float *k, const float *v,
                           const float *probabilities, const float *grad_out, float *grad_q, float *grad_k,
                           float *grad_v, int threads);

/* row[j] = e^(row[j] - shift) for j < n; returns their sum. e^x below -87 is exactly 0 (a
   masked score), relative error below 1e-6 elsewhere (CALMTensor's FastMath polynomial). */
float ck_exp_shifted(float *row, int64_t n, float shift);

/* sum_j e^(row[j] - shift), row unchanged. */
float ck_sum_exp_shifted(const float *row, int64_t n, float shift);

/* y[i] = 1 / (1 + e^-x[i]); y may be x. */
void ck_sigmoid(const float *x, float *y, int64_t n);

/* SwiGLU: o = x · sigmoid(x) · u (x the gate projection, u the up projection). */
void ck_swiglu_forward(const float *x, const float *u, float *o, int64_t n);

/* Its gradients from g = dL/do: dx = g · u · s · (1 + x · (1 − s)), du = g · x · s with
   s = sigmoid(x), each written, or added when its accumulate flag is set; either may be NULL
   (not needed), and dx == du (one tensor as both inputs) is allowed with accumulate_du set. */
void ck_swiglu_backward(const float *x, const float *u, const float *g, float *dx, float *du, int64_t n,
                        int accumulate_dx, int accumulate_du);

/* RMSNorm of `rows` rows of width n with per-channel scale w: y = x · inv · w, where
   inv = 1 / sqrt(mean(x²) + eps) is written to inv_rms[row] for the backward. */
void ck_rmsnorm_forward(const float *x, const float *w, int64_t rows, int64_t n, float eps, float *y, float *inv_rms);

/* Its input gradient, added to dx: dx += inv · g · w − x · inv³ / n · Σ_j g·w·x, per row. */
void ck_rmsnorm_backward(const float *x, const float *w, const float *g, const float *inv_rms, int64_t rows, int64_t n,
                         float *dx);

/* IEEE half <-> float, round to nearest even (what F16C's vcvtps2ph with mode 0 does). */
uint16_t ck_float_to_half(float f);
float ck_half_to_float(uint16_t h);

/* Whether ck_dequantize_rows and ck_matvec use the AVX2/FMA/F16C kernels (decided once from
   the CPU). */
int ck_uses_avx2(void);

/* The plain C versions they fall back to, callable directly so tests can compare both. */
void ck_dequantize_rows_portable(int format, const uint8_t *w, int64_t rows, int64_t cols, float *out);
void ck_matvec_portable(int format, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
                        const float *bias, float *y);
#endif
