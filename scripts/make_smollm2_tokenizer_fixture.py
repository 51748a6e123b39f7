"""Writes Tests/Fixtures/smollm2/tokenizer.json: SmolLM2-135M-Instruct's tokenizer (BPE, 49,152
tokens, chat template) in calm's tokenizer description format, taken from a checkpoint that
`calm convert` made from the GGUF (Benchmarks/smollm2.sh fetches and converts it). Tests build a
tiny random stand-in anchor with it (`calm pretrain --steps 0 --tokenizer-from ...`), so the
real-composition path runs in CI without the real model. Local use only: CI never runs Python.

    python3 scripts/make_smollm2_tokenizer_fixture.py runs/llamacpp/smol-q.h5
"""
import sys
from pathlib import Path

import h5py

source = sys.argv[1] if len(sys.argv) > 1 else "runs/llamacpp/smol-q.h5"
with h5py.File(source, "r") as f:
    text = f.attrs["tokenizer"]
out = Path(__file__).resolve().parent.parent / "Tests/Fixtures/smollm2/tokenizer.json"
out.parent.mkdir(parents=True, exist_ok=True)
out.write_bytes(bytes(text))
print(f"wrote {out} ({out.stat().st_size} bytes)")
