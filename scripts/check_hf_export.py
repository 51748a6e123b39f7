#!/usr/bin/env python3
"""Checks that `calm export` writes directories transformers loads with the original weights.

For every fixture of scripts/make_hf_fixtures.py: `calm convert` it, `calm export` the result,
load both the original and the exported directory with `from_pretrained`, and compare every
weight, the logits on the golden text and the tokenizer's ids on the multilingual sample.

Run from the repository root after `swift build` (needs torch and transformers; not used by CI):
    python3 scripts/check_hf_export.py [path/to/calm]
"""
import os
import subprocess
import sys
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures", "hf")
CALM = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "debug", "calm")
SAMPLE = open(os.path.join(FIXTURES, "sample.txt"), encoding="utf-8").read()

failures = 0
with tempfile.TemporaryDirectory() as tmp:
    for name in ["llama", "llama2", "tinyllama", "mistral", "qwen2", "gemma", "gpt2"]:
        src = os.path.join(FIXTURES, name)
        h5, out = os.path.join(tmp, name + ".h5"), os.path.join(tmp, name)
        subprocess.run([CALM, "convert", src, h5], check=True, capture_output=True)
        subprocess.run([CALM, "export", h5, out], check=True, capture_output=True)
        original = AutoModelForCausalLM.from_pretrained(src, attn_implementation="eager").eval()
        exported = AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
        a, b = original.state_dict(), exported.state_dict()
        same_keys = sorted(a) == sorted(b)
        max_weight = max((a[k] - b[k]).abs().max().item() for k in a) if same_keys else float("inf")
        tok_a, tok_b = AutoTokenizer.from_pretrained(src), AutoTokenizer.from_pretrained(out)
        ids = tok_a(SAMPLE)["input_ids"]
        same_ids = ids == tok_b(SAMPLE)["input_ids"]
        with torch.no_grad():
            x = torch.tensor([ids[:48]])
            max_logit = (original(x).logits - exported(x).logits).abs().max().item()
        ok = same_keys and max_weight == 0 and max_logit == 0 and same_ids
        failures += not ok
        print(f"{name:10s} {type(exported).__name__:20s} keys equal {same_keys}, max |weight diff| {max_weight:.1e}, "
              f"max |logit diff| {max_logit:.1e}, tokenizer ids equal {same_ids}: {'ok' if ok else 'FAILED'}")
sys.exit(1 if failures else 0)
