#!/usr/bin/env bash
# Quantized frozen weights on a 135M-parameter Llama (the shape of Benchmarks/load.sh): for
# float32 and each format, load time, decoding speed (128 new tokens after a one-token prompt),
# a 512-token prefill, and peak RSS, at 2 threads with a warm page cache.
# Usage: Benchmarks/quant.sh [runs] [formats...]   (default: 3 runs; bf16 q8_0 q4_0 q4_1 q8_0-emb q4_0-emb;
# "-emb": `calm quantize --embeddings`, the tied embedding / output head quantized too)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
formats=${*:-bf16 q8_0 q4_0 q4_1 q8_0-emb q4_0-emb}
swift build -c release --product calm >/dev/null
calm=.build/release/calm
work=${CALM_BENCH_DIR:-$(mktemp -d)}
echo '{"prompt": "a", "completion": "b"}' > "$work/data.jsonl"
[ -f "$work/f32.h5" ] || $calm pretrain --data "$work/data.jsonl" --config Benchmarks/smollm2-135m.json --steps 0 --output "$work/f32.h5" >/dev/null 2>&1
for f in $formats; do
    if [ ! -f "$work/$f.h5" ]; then
        if [[ $f == *-emb ]]; then
            $calm quantize "$work/f32.h5" "$work/$f.h5" --type "${f%-emb}" --embeddings >/dev/null
        else
            $calm quantize "$work/f32.h5" "$work/$f.h5" --type "$f" >/dev/null
        fi
    fi
done
prompt512="$(printf 'a %.0s' $(seq 255))a"  # <bos> + 511 tokens ("a", " ", ...)
printf '%-9s %6s %7s %13s %16s %12s\n' type "MB" "load s" "decode tok/s" "prefill s" "peak RSS MB"
for f in f32 $formats; do
    model="$work/$f.h5"
    cat "$model" > /dev/null  # warm the page cache: this measures loading, not the disk
    for _ in $(seq "$runs"); do
        decode=$( { /usr/bin/time -f "rss %M" "$calm" generate --model "$model" --prompt a --max-tokens 128 --ignore-eos \
            --threads 2 --stats >/dev/null; } 2>&1 )
        prefill=$("$calm" generate --model "$model" --prompt "$prompt512" --max-tokens 1 --threads 2 --stats 2>&1 >/dev/null)
        load=$(sed -n 's/^load \([0-9.]*\) s.*/\1/p' <<<"$decode")
        rate=$(sed -n 's/.*(\([0-9.]*\) tokens\/s).*/\1/p' <<<"$decode")
        rss=$(sed -n 's/^rss \([0-9]*\)/\1/p' <<<"$decode")
        pre=$(sed -n 's/.*prompt \([0-9]*\) tokens in \([0-9.]*\) s.*/\2 (\1 tok)/p' <<<"$prefill")
        printf '%-9s %6s %7s %13s %16s %12s\n' "$f" "$(du -m "$model" | cut -f1)" "$load" "$rate" "$pre" "$((rss / 1024))"
    done
done
