#!/usr/bin/env bash
# Data-parallel composition training (issue 12): steps/s of `calm compose` on the S shapes of
# `calm bench` (anchor 256 wide x 8 blocks, 8 heads, FFN 1024; two augments 128 x 8, 4 heads,
# FFN 512; connections 3:3,7:7; batch 16 x 128 tokens; random weights) with 1 process and with
# `mpirun -np 2`, one BLAS thread per rank. Steps/s is the median over the steps after the first
# epoch (which fills the activation cache), from the per-step rate rank 0 logs, so loading, the
# cache and the final save are left out and a step slowed by another process on a shared machine
# does not move it.
# Usage: Benchmarks/mpi.sh [CALM_BINARY]   (default .build/release/calm)
set -euo pipefail
cd "$(dirname "$0")/.."
calm=$(realpath "${1:-.build/release/calm}")
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none)

# 60 characters (+ the tokenizer's specials: a vocabulary of about 64) and random text for D_C.
python3 -c "import string; print((string.ascii_letters + string.digits)[:60])" > "$work/chars.txt"
python3 -c "
import random; random.seed(0); c=open('$work/chars.txt').read().strip()
print(''.join(random.choice(c) for _ in range(${WINDOWS:-64} * 127)))" > "$work/dc.txt"
"$calm" pretrain --data "$work/dc.txt" --tokenizer-from "$work/chars.txt" --steps 0 --seed 1 --seq-len 128 \
    --layers 8 --hidden 256 --heads 8 --ffn 1024 --output "$work/anchor.h5" 2>/dev/null
for e in a:2 b:3; do
    "$calm" pretrain --data "$work/dc.txt" --tokenizer-from "$work/anchor.h5" --steps 0 --seed "${e#*:}" --seq-len 128 \
        --layers 8 --hidden 128 --heads 4 --ffn 512 --output "$work/${e%%:*}.h5" 2>/dev/null
    "$calm" experts register "$work/${e%%:*}.h5" --name "${e%%:*}" --domain bench --registry "$work/experts" >/dev/null 2>&1
done

steps=${STEPS:-25}
compose() {  # compose RANKS CACHE-FLAG: prints the median steps/s after the first epoch
    local ranks=$1 cache=$2
    local args=(compose --anchor "$work/anchor.h5" --expert a --expert b --registry "$work/experts" --data "$work/dc.txt"
                --connections 3:3,7:7 --heads 8 --batch-size 16 --steps "$steps" --lr 1e-4 --warmup 0 --threads 1
                --log-every 1 "$cache" --output "$work/out-$ranks.h5")
    if [ "$ranks" = 1 ]; then "$calm" "${args[@]}" 2>"$work/log-$ranks"; else "${mpirun[@]}" -np "$ranks" "$calm" "${args[@]}" 2>"$work/log-$ranks"; fi >/dev/null
    # "step K/N | loss L | R tok/s | ...": seconds per step = 2048 tokens / R.
    python3 - "$work/log-$ranks" "$(( ${WINDOWS:-64} / 16 ))" <<'PY'
import re, statistics, sys
rates = [float(m.group(2)) for m in (re.match(r"step (\d+)/\d+ \| loss \S+ \| (\S+) tok/s", l) for l in open(sys.argv[1]))
         if m and int(m.group(1)) > int(sys.argv[2])]
print("%.3f" % (statistics.median(rates) / 2048))
PY
}

for cache in --no-activation-cache --activation-cache; do
    for ranks in 1 2; do
        echo "ranks $ranks $cache: $(compose "$ranks" "$cache") steps/s (median of steps $(( ${WINDOWS:-64} / 16 + 1 ))-$steps)"
    done
    grep -h "allreduced per step\|allreduce:" "$work/log-2" | sed 's/^/  2 ranks: /'
done
