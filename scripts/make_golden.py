#!/usr/bin/env python3
"""Writes the golden reference fixtures the Swift tests compare against.

For each architecture, builds a tiny randomly initialised Hugging Face model (float32, eager
attention), runs it on a fixed batch and records the logits, the mean next-token loss and the
loss gradients of a few parameters. Everything is written as a CALM checkpoint (so the Swift
loader reads it unchanged) plus a `/golden` group:

    /golden/input_ids        int64 (B, T)
    /golden/logits           float32 (B, T, V)
    /golden/loss             float32 scalar
    /golden/grads/<name>     float32, gradients in CALM's parameter names and layout

Run from the repository root (needs torch, transformers, h5py; never needed by CI):
    python3 scripts/make_golden.py
"""
import json
import os

import h5py
import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "golden")
VOCAB = 40
# A char tokenizer with 36 ordinary characters + 4 specials fills the 40-token vocabulary.
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789")


def char_tokenizer_json():
    return json.dumps({"characters": CHARS, "specials": ["<pad>", "<bos>", "<eos>", "<unk>"], "type": "char"},
                      sort_keys=True, separators=(",", ":"))


def llama_like(hf_name, cfg, model):
    """CALM names and arrays for a Llama/Qwen2 state dict."""
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    out = {"embed.weight": sd["model.embed_tokens.weight"],
           "final_norm.weight": sd["model.norm.weight"],
           "lm_head.weight": sd["lm_head.weight"]}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        out[f"layers.{i}.attn_norm.weight"] = sd[p + "input_layernorm.weight"]
        out[f"layers.{i}.mlp_norm.weight"] = sd[p + "post_attention_layernorm.weight"]
        for proj in ["q_proj", "k_proj", "v_proj", "o_proj"]:
            for kind in ["weight", "bias"]:
                key = p + f"self_attn.{proj}.{kind}"
                if key in sd:
                    out[f"layers.{i}.attn.{proj}.{kind}"] = sd[key]
        for proj in ["gate_proj", "up_proj", "down_proj"]:
            out[f"layers.{i}.mlp.{proj}.weight"] = sd[p + f"mlp.{proj}.weight"]
    return out


def llama_grad_names(cfg):
    return {"model.embed_tokens.weight": "embed.weight",
            "model.layers.0.self_attn.q_proj.weight": "layers.0.attn.q_proj.weight",
            "model.layers.0.self_attn.k_proj.weight": "layers.0.attn.k_proj.weight",
            f"model.layers.{cfg.num_hidden_layers - 1}.mlp.down_proj.weight": f"layers.{cfg.num_hidden_layers - 1}.mlp.down_proj.weight",
            "model.layers.1.input_layernorm.weight": "layers.1.attn_norm.weight",
            "model.norm.weight": "final_norm.weight",
            "lm_head.weight": "lm_head.weight"}


def gpt2_tensors(cfg, model):
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    c = cfg.n_embd
    out = {"embed.weight": sd["transformer.wte.weight"], "pos_embed.weight": sd["transformer.wpe.weight"],
           "final_norm.weight": sd["transformer.ln_f.weight"], "final_norm.bias": sd["transformer.ln_f.bias"]}
    for i in range(cfg.n_layer):
        p = f"transformer.h.{i}."
        q = f"layers.{i}."
        out[q + "attn_norm.weight"] = sd[p + "ln_1.weight"]
        out[q + "attn_norm.bias"] = sd[p + "ln_1.bias"]
        out[q + "mlp_norm.weight"] = sd[p + "ln_2.weight"]
        out[q + "mlp_norm.bias"] = sd[p + "ln_2.bias"]
        # Conv1D stores (in, out): transpose to (out, in); c_attn packs q, k, v along out.
        w, b = sd[p + "attn.c_attn.weight"].T, sd[p + "attn.c_attn.bias"]
        for j, name in enumerate(["q_proj", "k_proj", "v_proj"]):
            out[q + f"attn.{name}.weight"] = w[j * c:(j + 1) * c]
            out[q + f"attn.{name}.bias"] = b[j * c:(j + 1) * c]
        out[q + "attn.o_proj.weight"] = sd[p + "attn.c_proj.weight"].T
        out[q + "attn.o_proj.bias"] = sd[p + "attn.c_proj.bias"]
        out[q + "mlp.up_proj.weight"] = sd[p + "mlp.c_fc.weight"].T
        out[q + "mlp.up_proj.bias"] = sd[p + "mlp.c_fc.bias"]
        out[q + "mlp.down_proj.weight"] = sd[p + "mlp.c_proj.weight"].T
        out[q + "mlp.down_proj.bias"] = sd[p + "mlp.c_proj.bias"]
    return out


def write(path, model_type, calm_config, tensors, ids, logits, loss, grads):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "calm"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["kind"] = "model"
        f.attrs["model_type"] = model_type
        f.attrs["config"] = json.dumps(calm_config, sort_keys=True)
        f.attrs["tokenizer"] = char_tokenizer_json()
        g = f.create_group("tensors")
        for name, arr in tensors.items():
            g.create_dataset(name, data=np.ascontiguousarray(arr, dtype=np.float32))
        gold = f.create_group("golden")
        gold.create_dataset("input_ids", data=ids.astype(np.int64))
        gold.create_dataset("logits", data=logits.astype(np.float32))
        gold.create_dataset("loss", data=np.float32(loss))
        gg = gold.create_group("grads")
        for name, arr in grads.items():
            gg.create_dataset(name, data=np.ascontiguousarray(arr, dtype=np.float32))
    print("wrote", path, "loss", float(loss))


def run(model, ids):
    model.eval()
    input_ids = torch.tensor(ids)
    out = model(input_ids=input_ids, labels=input_ids)
    out.loss.backward()
    return out.logits.detach().numpy(), out.loss.item()


def make_llama(name, cls, cfg_cls, qkv_bias, seed):
    torch.manual_seed(seed)
    kwargs = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                  rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)
    cfg = cfg_cls(**kwargs)
    cfg._attn_implementation = "eager"
    model = cls(cfg).float()
    with torch.no_grad():  # norms start at 1; perturb them so their gradients matter
        for n, p in model.named_parameters():
            if "norm" in n or n.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, size=(2, 12))
    logits, loss = run(model, ids)
    named = dict(model.named_parameters())
    grads = {calm: named[hf].grad.numpy() for hf, calm in llama_grad_names(cfg).items()}
    calm_config = {"architecture": name, "vocab_size": VOCAB, "hidden_size": 32, "num_layers": 2, "num_heads": 4,
                   "num_kv_heads": 2, "head_dim": 8, "intermediate_size": 64, "max_positions": 64, "norm": "rms",
                   "norm_eps": 1e-5, "positions": "rope", "rope_theta": 10000.0, "activation": "silu",
                   "gated_mlp": True, "qkv_bias": qkv_bias, "attention_output_bias": False, "mlp_bias": False,
                   "tied_embeddings": False}
    write(os.path.join(OUT, f"{name}.h5"), name, calm_config, llama_like(name, cfg, model), ids, logits, loss, grads)


def make_gpt2(seed):
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     activation_function="gelu_new", layer_norm_epsilon=1e-5,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    cfg._attn_implementation = "eager"
    model = GPT2LMHeadModel(cfg).float()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".ln_" in n or n.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, VOCAB, size=(2, 12))
    logits, loss = run(model, ids)
    named = dict(model.named_parameters())
    grads = {"embed.weight": named["transformer.wte.weight"].grad.numpy(),
             "pos_embed.weight": named["transformer.wpe.weight"].grad.numpy(),
             "layers.0.attn.o_proj.weight": named["transformer.h.0.attn.c_proj.weight"].grad.numpy().T,
             "layers.1.mlp.up_proj.weight": named["transformer.h.1.mlp.c_fc.weight"].grad.numpy().T,
             "layers.0.attn_norm.bias": named["transformer.h.0.ln_1.bias"].grad.numpy(),
             "final_norm.weight": named["transformer.ln_f.weight"].grad.numpy()}
    calm_config = {"architecture": "gpt2", "vocab_size": VOCAB, "hidden_size": 32, "num_layers": 2, "num_heads": 4,
                   "num_kv_heads": 4, "head_dim": 8, "intermediate_size": 128, "max_positions": 64, "norm": "layer",
                   "norm_eps": 1e-5, "positions": "learned", "activation": "gelu_tanh", "gated_mlp": False,
                   "qkv_bias": True, "attention_output_bias": True, "mlp_bias": True, "tied_embeddings": True}
    write(os.path.join(OUT, "gpt2.h5"), "gpt2", calm_config, gpt2_tensors(cfg, model), ids, logits, loss, grads)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    make_llama("llama", LlamaForCausalLM, LlamaConfig, False, seed=1)
    make_llama("qwen2", Qwen2ForCausalLM, Qwen2Config, True, seed=2)
    make_gpt2(seed=3)
