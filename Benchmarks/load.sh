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
cat > "$work/config.json" <<'JSON'
{"architecture": "llama", "vocab_size": 49152, "hidden_size": 576, "num_layers": 30, "num_heads": 9,
 "num_kv_heads": 3, "head_dim": 64, "intermediate_size": 1536, "max_positions": 8192, "norm": "rms",
 "norm_eps": 1e-5, "norm_weight_offset": 0, "positions": "rope", "rope_theta": 100000, "activation": "silu",
 "gated_mlp": true, "qkv_bias": false, "attention_output_bias": false, "mlp_bias": false,
 "tied_embeddings": true, "embedding_scale": 1}
JSON
$calm pretrain --data "$work/data.jsonl" --config "$work/config.json" --steps 0 --output "$work/model.h5" >/dev/null 2>&1
echo "model: $(du -m "$work/model.h5" | cut -f1) MB on disk"
cat "$work/model.h5" > /dev/null  # warm the page cache: this measures loading, not the disk
for _ in $(seq "$runs"); do
    /usr/bin/time -f "load + one token: %e s wall, peak RSS %M KB" "$calm" generate --model "$work/model.h5" --prompt a \
        --max-tokens 1 --threads 2 >/dev/null
done
