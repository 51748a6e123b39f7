#!/usr/bin/env bash
# Runs `calm bench` and the PyTorch + transformers reference one after the other on this
# machine with the same thread count, for S, M and SmolLM2 (CONFIGS="S M" picks), and prints
# both and the ratios.
#   Benchmarks/compare.sh [threads] [steps]
# Needs python3 with torch and transformers (pip install torch transformers); never run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
steps=${2:-3}
swift build -c release --product calm >/dev/null
for config in ${CONFIGS:-S M SmolLM2}; do
    ours=$(.build/release/calm bench --config "$config" --steps "$steps" --threads "$threads" --json)
    ref=$(OMP_NUM_THREADS=$threads python3 Benchmarks/reference.py --config "$config" --steps "$steps" --threads "$threads")
    python3 - "$config" "$ours" "$ref" <<'PY'
import json, sys
config, ours, ref = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"config {config} ({ours['threads']} threads)")
print(f"  {'figure':28} {'calm':>10} {'pytorch':>10} {'ratio':>7}")
for key in ["train_tokens_per_s", "train_cached_tokens_per_s", "decode_tokens_per_s", "gflops", "sgemm_gflops", "peak_rss_mb"]:
    a, b = ours[key], ref[key]
    ratio = a / b if b else float("nan")
    print(f"  {key:28} {a:10.1f} {b:10.1f} {ratio:6.2f}x")
print(f"  cached training vs reference training: {ours['train_cached_tokens_per_s'] / ref['train_tokens_per_s']:.2f}x")
print(f"  training gflops / sgemm gflops: {ours['gflops'] / ours['sgemm_gflops']:.0%}")
print(f"  calm's last recomputed + cached step: {ours['last_steps_page_faults']:.0f} page faults, "
      f"{ours['last_steps_heap_growth_mb']:.1f} MB heap growth")
# Speed of light: the FLOPs a step needs at the machine's sgemm rate, against the targets.
for name, flops, target in [("train (1.2x)", ours["train_mflop_per_token"], 1.2),
                            ("cached (2.0x)", ours["train_cached_mflop_per_token"], 2.0)]:
    need = target * ref["train_tokens_per_s"] * flops / 1e3
    print(f"  {name}: needs {need:.0f} GFLOP/s ({need / ours['sgemm_gflops']:.0%} of sgemm) at {flops:.1f} MFLOP/token")
PY
done
