#!/usr/bin/env python3
"""Writes tiny random Mamba models (transformers' MambaForCausalLM) and their golden outputs for
the example's parity tests.

Each directory under Tests/Fixtures/ is a Hugging Face model directory as the Hub holds one
(config.json, model.safetensors) with the tokenizer of the repository's llama fixture
(Tests/Fixtures/hf/llama), so that converted llama model can serve as the anchor of a
composition with these experts. Beside it:

    golden.json          {"input_ids": [[...], [...]]}: a batch of two sequences
    golden.safetensors   logits (B, T, V); hidden.-1 (the embedding output) and hidden.<l>
                         (the output of block l) for every block, each (B, T, C)

Outputs come from transformers' pure-PyTorch path (no CUDA kernels, sequential scan) in float32.
Every weight is perturbed away from its initial value (A_log, D, conv bias and the dt bias
included) so that no term of the computation is trivial.

Run from the example's directory (needs torch, transformers, safetensors; never needed by CI):
    python3 scripts/make_mamba_fixtures.py
"""
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import MambaConfig, MambaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "Fixtures")
TOKENIZER = os.path.join(HERE, "..", "..", "..", "Tests", "Fixtures", "hf", "llama")
VOCAB = 422  # the llama fixture's vocab_size

MODELS = {
    # transformers' defaults: tied head, conv bias, no projection biases, rank "auto".
    "mamba-tied": dict(hidden_size=32, state_size=8, num_hidden_layers=3, expand=2, conv_kernel=4),
    # every optional term switched the other way, an explicit rank and a wider kernel.
    "mamba-untied": dict(hidden_size=24, state_size=4, num_hidden_layers=2, expand=3, conv_kernel=3,
                         use_bias=True, use_conv_bias=False, time_step_rank=5, tie_word_embeddings=False,
                         layer_norm_epsilon=1e-6),
}


def main():
    for name, fields in MODELS.items():
        torch.manual_seed(sum(map(ord, name)))
        config = MambaConfig(vocab_size=VOCAB, pad_token_id=None, bos_token_id=0, eos_token_id=1, **fields)
        model = MambaForCausalLM(config).eval()
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if pname == "lm_head.weight" and config.tie_word_embeddings:
                    continue
                p.add_(0.1 * torch.randn_like(p))
        directory = os.path.join(OUT, name)
        shutil.rmtree(directory, ignore_errors=True)
        model.save_pretrained(directory, safe_serialization=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(TOKENIZER, f), directory)

        generator = torch.Generator().manual_seed(7)
        ids = torch.randint(0, VOCAB, (2, 11), generator=generator)
        with torch.no_grad():
            out = model(ids, output_hidden_states=True, use_cache=False)
            tensors = {"logits": out.logits.contiguous(),
                       "hidden.-1": model.backbone.embeddings(ids).contiguous()}
            for layer in range(config.num_hidden_layers):
                tensors[f"hidden.{layer}"] = out.hidden_states[layer].contiguous()
        save_file(tensors, os.path.join(directory, "golden.safetensors"))
        with open(os.path.join(directory, "golden.json"), "w") as f:
            json.dump({"input_ids": ids.tolist()}, f)
        print(f"wrote {directory}")


if __name__ == "__main__":
    main()
