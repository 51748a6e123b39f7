#!/usr/bin/env bash
# Times the attention kernels (Sources/CKernels/attention.c) alone, outside any model: forward
# without and with stored probabilities, and the backward, in GFLOP/s of causal useful work, at
# M's anchor shape (batch 8, 256 tokens, 8 heads of 64) and S's (16 x 128, 8 heads of 32). Then
# the forward's phases (transpose, scores, softmax, P·V) from an instrumented copy of the file
# (rdtsc around each phase, one thread). Needs clang and python3; never run by CI.
#   Benchmarks/attention.sh [threads]
# ATTENTION_C=file times another version of attention.c against the same other kernels, e.g.
#   git show c5dcf0b^:Sources/CKernels/attention.c > /tmp/before.c; ATTENTION_C=/tmp/before.c Benchmarks/attention.sh
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=Sources/CKernels
cat > "$work/harness.c" <<'C'
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef PHASES
extern unsigned long long phase_cycles[4];
#endif
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    const int threads = atoi(argv[1]);
    const int64_t B = atoi(argv[2]), T = atoi(argv[3]), H = atoi(argv[4]), D = atoi(argv[5]);
    ck_attention_shape s = {B, T, T, H, H, D, 0, 0, T * H * D, 1, 0, 1.0f / 8};
    const size_t n = (size_t)(B * T * H * D);
    float *q = malloc(4 * n), *k = malloc(4 * n), *v = malloc(4 * n), *o = malloc(4 * n), *g = malloc(4 * n);
    float *p = malloc(4 * (size_t)(B * H * T * T)), *dq = calloc(n, 4), *dk = calloc(n, 4), *dv = calloc(n, 4);
    for (size_t i = 0; i < n; i++) { q[i] = (i % 13) * 0.05f; k[i] = (i % 7) * 0.05f; v[i] = (i % 5) * 0.1f; g[i] = (i % 3) * 0.1f; }
    const double forward = 2.0 * 2 * B * H * (T * (T + 1) / 2.0) * D; /* Q·Kᵀ and P·V over visible keys */
    const char *names[3] = {"forward, no P", "forward, P stored", "backward (dQ, dK, dV)"};
    for (int mode = 0; mode < 3; mode++) {
        double best = 1e9;
        for (int rep = 0; rep < 10; rep++) {
            const double t0 = now();
            if (mode == 0) ck_attention_forward(&s, q, k, v, NULL, o, NULL, threads);
            else if (mode == 1) ck_attention_forward(&s, q, k, v, NULL, o, p, threads);
            else ck_attention_backward(&s, q, k, v, p, g, dq, dk, dv, threads);
            const double elapsed = now() - t0;
            if (elapsed < best) best = elapsed;
        }
        printf("  %-24s %7.2f ms %7.1f GFLOP/s\n", names[mode], best * 1e3, (mode == 2 ? 2 : 1) * forward / best / 1e9);
    }
#ifdef PHASES
    unsigned long long total = 0;
    for (int i = 0; i < 4; i++) total += phase_cycles[i];
    printf("  forward cycles: transpose %.0f%%, scores %.0f%%, softmax %.0f%%, P·V %.0f%%\n", 100.0 * phase_cycles[0] / total,
           100.0 * phase_cycles[1] / total, 100.0 * phase_cycles[2] / total, 100.0 * phase_cycles[3] / total);
#endif
    return 0;
}
C
cp "$src"/*.c "$src"/internal.h "$src"/include/CKernels.h "$work"/
cp "${ATTENTION_C:-$src/attention.c}" "$work/attention.c"
clang -O3 -I"$work" -o "$work/attention" "$work"/*.c -lm -lpthread
# The instrumented copy: cycle counters around the forward's four phases.
python3 - "$work/attention.c" <<'PY'
import sys
path = sys.argv[1]
s = open(path).read()
def wrap(line, phase):
    global s
    assert line in s, line
    s = s.replace(line, "{ unsigned long long c0 = __rdtsc(); " + line.strip() + f" phase_cycles[{phase}] += __rdtsc() - c0; }}", 1)
s = s.replace("#include <stdlib.h>", "#include <stdlib.h>\n#include <x86intrin.h>\nunsigned long long phase_cycles[4];", 1)
wrap("transpose_head(kh, kvRow, S, D, kt, padded);", 0)
wrap("if (width8 > 0) scores(job, qh + t0 * qRow, qRow, rows, kt, padded, D, width8, s->scale, prob, padded);", 1)
s = s.replace("""            for (int i = 0; i < rows; i++)
                softmax_row(job, prob + i * padded, b, hidden_prefix(s, t0 + i), visible_keys(s, t0 + i), width8);""",
"""            { unsigned long long c0 = __rdtsc();
            for (int i = 0; i < rows; i++)
                softmax_row(job, prob + i * padded, b, hidden_prefix(s, t0 + i), visible_keys(s, t0 + i), width8);
            phase_cycles[2] += __rdtsc() - c0; }""", 1)
wrap("accumulate(job, prob, padded, 1, rows, 0, width, vh, kvRow, D, 1.0f, oh + t0 * qRow, qRow, 0);", 3)
open(path, "w").write(s)
PY
clang -O3 -DPHASES -I"$work" -o "$work/phases" "$work"/*.c -lm -lpthread
for shape in "M 8 256 8 64" "S 16 128 8 32"; do
    set -- $shape
    echo "$1 anchor attention (batch $2, $3 tokens, $4 heads of $5), $threads threads:"
    "$work/attention" "$threads" "$2" "$3" "$4" "$5"
    echo "  one thread, instrumented:"
    "$work/phases" 1 "$2" "$3" "$4" "$5" | tail -n 1
done
