#!/usr/bin/env bash
# Load time of a 135M-parameter Llama checkpoint (SmolLM2-135M's shape: 30 blocks, width 576,
# 9 heads, 3 KV heads, FFN 1536, vocabulary 49152), measured as the wall time of a one-token
# `calm generate`, plus peak RSS. Usage: Benchmarks/load.sh [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
swift build -c release --product calm >/dev/null
calm=.build/release/calm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo '{"prompt": "a", "completion": "b"}' > "$work/data.jsonl"
$calm pretrain --data "$work/data.jsonl" --config Benchmarks/smollm2-135m.json --steps 0 --output "$work/model.h5" >/dev/null 2>&1
echo "model: $(du -m "$work/model.h5" | cut -f1) MB on disk"
cat "$work/model.h5" > /dev/null  # warm the page cache: this measures loading, not the disk
for _ in $(seq "$runs"); do
    /usr/bin/time -f "load + one token: %e s wall, peak RSS %M KB" "$calm" generate --model "$work/model.h5" --prompt a \
        --max-tokens 1 --threads 2 >/dev/null
done
