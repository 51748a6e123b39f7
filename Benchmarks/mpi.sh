#!/usr/bin/env bash
# Data-parallel composition training (issue 12): steps/s of `calm compose` on the S shapes of
# `calm bench` (anchor 256 wide x 8 blocks, 8 heads, FFN 1024; two augments 128 x 8, 4 heads,
# FFN 512; connections 3:3,7:7; batch 16 x 128 tokens; random weights) with 1 process and with
# `mpirun -np 2`, one BLAS thread per rank. Steps/s is taken between a short and a long run so
# that loading, the first epoch's activation cache and the final save cancel out.
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

compose() {  # compose RANKS STEPS CACHE-FLAG -> seconds of wall time
    local ranks=$1 steps=$2 cache=$3 start end
    local args=(compose --anchor "$work/anchor.h5" --expert a --expert b --registry "$work/experts" --data "$work/dc.txt"
                --connections 3:3,7:7 --heads 8 --batch-size 16 --steps "$steps" --lr 1e-4 --warmup 0 --threads 1
                "$cache" --output "$work/out-$ranks.h5")
    start=$(date +%s.%N)
    if [ "$ranks" = 1 ]; then "$calm" "${args[@]}" 2>"$work/log-$ranks"; else "${mpirun[@]}" -np "$ranks" "$calm" "${args[@]}" 2>"$work/log-$ranks"; fi >/dev/null
    end=$(date +%s.%N)
    python3 -c "print($end - $start)"
}

short=${SHORT:-5} long=${LONG:-25}
for cache in --no-activation-cache --activation-cache; do
    for ranks in 1 2; do
        a=$(compose "$ranks" "$short" "$cache"); b=$(compose "$ranks" "$long" "$cache")
        python3 -c "print('ranks %d %-22s %.3f steps/s (%d steps in %.1f s beyond a %d-step run)' % ($ranks, '$cache', ($long - $short) / ($b - $a), $long - $short, $b - $a, $short))"
    done
    grep -h "allreduced per step\|allreduce:" "$work/log-2" | sed 's/^/  2 ranks: /'
done
