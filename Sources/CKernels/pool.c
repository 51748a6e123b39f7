#include "internal.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define ck_pause() _mm_pause()
#else
#define ck_pause() ((void)0)
#endif

/* A small pool of worker threads for the matrix-vector products of decoding, and for any
   other work cut into independent tasks (ck_parallel_for: attention heads, row kernels).

   One decoded token runs a few hundred products of 10-100 microseconds each, so waking a
   sleeping thread for each (futex round trip, GCD) costs about as much as the product. The
   workers therefore spin for a while after each product, waiting for the next, and only then
   sleep on a condition variable.

   A product is cut into chunks of rows that the caller and the workers claim one at a time.
   The caller never waits for a worker that has not started: on a busy machine (a worker not
   scheduled) it simply claims every chunk itself. Claims carry the job's generation in the same
   atomic word, so a worker that wakes late cannot claim a chunk of a job that has moved on.
   One caller at a time owns the pool; a second concurrent caller (another request, a parallel
   test) runs its product alone. */

#define CK_MAX_THREADS 64
/* About a millisecond of pause instructions before sleeping: longer than the gap between two
   products of a decoded token, short enough not to hold a core long after decoding stops. */
#define CK_SPIN_ROUNDS 8192
/* Spinners give the core away this often, so they cost little when the machine is oversubscribed. */
#define CK_YIELD_EVERY 256

typedef struct {
    int format;
    const uint8_t *w;
    size_t rowBytes;
    int64_t rows, cols, chunkRows;
    const ck_activation *x; /* n activation rows */
    int64_t n;
    const float *bias;
    float *y; /* (n, rows) */
    /* When set, the job is ck_parallel_for's: chunk c runs task_fn over its range of tasks. */
    void (*task_fn)(void *ctx, int64_t begin, int64_t end);
    void *task_ctx;
} matvec_job;

static struct {
    pthread_mutex_t owner;      /* held by the caller whose job is published */
    pthread_mutex_t sleep_lock; /* guards sleepers and the wake-up */
    pthread_cond_t wake;
    /* generation << 32 | next unclaimed chunk */
    atomic_uint_fast64_t claims;
    atomic_int finished; /* chunks of the current job done */
    int chunks;
    int sleepers;
    int workers; /* started so far; never stopped (they sleep when idle) */
    matvec_job job;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, {0}};

/* The claim index of a finished job: above any chunk count. */
#define CK_CLAIMS_CLOSED 0xffffffffu

static void run_chunk(const matvec_job *j, int64_t chunk) {
    const int64_t begin = chunk * j->chunkRows;
    const int64_t end = begin + j->chunkRows < j->rows ? begin + j->chunkRows : j->rows;
    if (end <= begin) return;
    if (j->task_fn) { j->task_fn(j->task_ctx, begin, end); return; }
    ck_matmul_rows(j->format, j->w + (size_t)begin * j->rowBytes, end - begin, j->cols, j->x, j->n,
                   j->bias ? j->bias + begin : NULL, j->y + begin, j->rows);
}

/* Claims and runs chunks of generation `generation` until none is left. */
static void claim_chunks(uint_fast64_t generation, const matvec_job *job, int chunks) {
    uint_fast64_t state = atomic_load_explicit(&pool.claims, memory_order_acquire);
    for (;;) {
        if ((state >> 32) != generation || (state & 0xffffffffu) >= (uint_fast64_t)chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.claims, &state, state + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        run_chunk(job, (int64_t)(state & 0xffffffffu));
        atomic_fetch_add_explicit(&pool.finished, 1, memory_order_release);
        state = atomic_load_explicit(&pool.claims, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    uint_fast64_t seen = 0;
    for (;;) {
        uint_fast64_t generation;
        int spins = 0;
        while ((generation = atomic_load_explicit(&pool.claims, memory_order_acquire) >> 32) == seen) {
            if (++spins < CK_SPIN_ROUNDS) {
                if (spins % CK_YIELD_EVERY == 0) sched_yield();
                else ck_pause();
                continue;
            }
            pthread_mutex_lock(&pool.sleep_lock);
            pool.sleepers++;
            while ((atomic_load_explicit(&pool.claims, memory_order_acquire) >> 32) == seen)
                pthread_cond_wait(&pool.wake, &pool.sleep_lock);
            pool.sleepers--;
            pthread_mutex_unlock(&pool.sleep_lock);
            spins = 0;
        }
        seen = generation;
        /* The copy may be of a later job if this worker woke late; claim_chunks then finds the
           generation changed and claims nothing from it. */
        const matvec_job job = pool.job;
        const int chunks = pool.chunks;
        claim_chunks(generation, &job, chunks);
    }
    return NULL;
}

/* Starts workers up to `count`; returns how many run. Called with pool.owner held. */
static int ensure_workers(int count) {
    while (pool.workers < count) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int failed = pthread_create(&thread, &attr, worker_main, NULL);
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.workers++;
    }
    return pool.workers;
}

/* `chunkRows` rows (tasks) per claim. */
static void run_in_pool(const matvec_job *job, int threads, int64_t chunkRows) {
    const int workers = ensure_workers(threads - 1);
    if (workers == 0) { run_chunk(job, 0); return; }
    pool.job = *job;
    pool.job.chunkRows = chunkRows;
    pool.chunks = (int)((job->rows + chunkRows - 1) / chunkRows);
    atomic_store_explicit(&pool.finished, 0, memory_order_relaxed);
    const uint_fast64_t generation = (atomic_load_explicit(&pool.claims, memory_order_relaxed) >> 32) + 1;
    pthread_mutex_lock(&pool.sleep_lock);
    atomic_store_explicit(&pool.claims, generation << 32, memory_order_release);
    if (pool.sleepers) pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.sleep_lock);
    claim_chunks(generation, &pool.job, pool.chunks);
    for (int spins = 1; atomic_load_explicit(&pool.finished, memory_order_acquire) < pool.chunks; spins++) {
        if (spins % CK_YIELD_EVERY == 0) sched_yield();
        else ck_pause();
    }
    /* Close the job: its claim index can no longer look valid. A worker that saw this
       generation late may copy the next job's description while it is being written; with
       the index closed its claim fails instead of running a chunk of that half-written job. */
    atomic_store_explicit(&pool.claims, (generation << 32) | CK_CLAIMS_CLOSED, memory_order_release);
}

/* Fills the per-block sums and int16 codes of x (see ck_activation) into `scratch`, which holds
   cols / 32 sums, cols / 32 scales and cols codes. */
static ck_activation prepare_activation(int format, const float *x, int64_t cols, void *scratch) {
    ck_activation a = {x, NULL, NULL, NULL};
    if (!ck_is_block_format(format)) return a;
    const int64_t blocks = cols / CK_BLOCK;
    float *sums = scratch, *scales = sums + blocks;
    int16_t *codes = (int16_t *)(scales + blocks);
    for (int64_t b = 0; b < blocks; b++) {
        const float *xb = x + b * CK_BLOCK;
        float largest = 0.0f;
        for (int j = 0; j < CK_BLOCK; j++) largest = fmaxf(largest, fabsf(xb[j]));
        sums[b] = ck_block_sum(xb);
        scales[b] = largest / 32767.0f;
        const float inverse = largest > 0.0f ? 32767.0f / largest : 0.0f;
        for (int j = 0; j < CK_BLOCK; j++) {
            float c = nearbyintf(xb[j] * inverse);
            c = c > 32767.0f ? 32767.0f : (c < -32767.0f ? -32767.0f : c);
            codes[b * CK_BLOCK + j] = (int16_t)c;
        }
    }
    a.sums = sums;
    a.scales = scales;
    a.codes = codes;
    return a;
}

void ck_matmul_threads(int format, const uint8_t *w, int64_t rows, int64_t cols, const float *x, int64_t n,
                       const float *bias, float *y, int threads) {
    if (n <= 0) return;
    /* Per activation row: 2 floats per block plus an int16 per value, after the descriptors;
       12 KB on the stack covers one row of 4096 columns or four of 1024. */
    _Alignas(32) uint8_t stackScratch[12288];
    const size_t perRow = ck_is_block_format(format) ? (size_t)(cols / CK_BLOCK) * 2 * sizeof(float) + (size_t)cols * sizeof(int16_t) : 0;
    const size_t rowStride = (perRow + 31) / 32 * 32, headBytes = ((size_t)n * sizeof(ck_activation) + 31) / 32 * 32;
    const size_t scratchBytes = headBytes + (size_t)n * rowStride;
    uint8_t *scratch = scratchBytes <= sizeof stackScratch ? stackScratch : malloc(scratchBytes);
    if (!scratch) { /* out of memory: plain floats, one row at a time */
        for (int64_t k = 0; k < n; k++) ck_matvec_portable(format, w, rows, cols, x + k * cols, bias, y + k * rows);
        return;
    }
    ck_activation *activations = (ck_activation *)(void *)scratch;
    for (int64_t k = 0; k < n; k++)
        activations[k] = prepare_activation(format, x + k * cols, cols, scratch + headBytes + (size_t)k * rowStride);

    const matvec_job job = {format, w, ck_row_bytes(format, cols), rows, cols, rows, activations, n, bias, y, NULL, NULL};
    if (threads > CK_MAX_THREADS) threads = CK_MAX_THREADS;
    /* Below about 64 rows a split costs more than it saves. */
    if (threads > 1 && rows >= 64 && pthread_mutex_trylock(&pool.owner) == 0) {
        /* Four chunks per thread: small enough to balance, large enough that claims are rare. */
        int64_t chunkRows = (rows + 4 * threads - 1) / (4 * threads);
        chunkRows = (chunkRows + 3) / 4 * 4; /* whole cache lines of y per chunk */
        run_in_pool(&job, threads, chunkRows);
        pthread_mutex_unlock(&pool.owner);
    } else {
        run_chunk(&job, 0);
    }
    if (scratch != stackScratch) free(scratch);
}

void ck_parallel_for(int64_t tasks, int64_t grain, int threads, void (*fn)(void *ctx, int64_t begin, int64_t end),
                     void *ctx) {
    if (tasks <= 0) return;
    if (grain < 1) grain = 1;
    if (threads > CK_MAX_THREADS) threads = CK_MAX_THREADS;
    if (threads > 1 && tasks > grain && pthread_mutex_trylock(&pool.owner) == 0) {
        /* Up to four chunks per thread, never below `grain` tasks each. */
        int64_t chunk = (tasks + 4 * threads - 1) / (4 * threads);
        if (chunk < grain) chunk = grain;
        matvec_job job;
        memset(&job, 0, sizeof job);
        job.rows = tasks;
        job.chunkRows = tasks; /* run_in_pool's fallback without workers runs all as chunk 0 */
        job.task_fn = fn;
        job.task_ctx = ctx;
        run_in_pool(&job, threads, chunk);
        pthread_mutex_unlock(&pool.owner);
    } else {
        fn(ctx, 0, tasks);
    }
}
