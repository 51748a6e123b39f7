#!/usr/bin/env python3
"""Writes tiny Hugging Face model directories and their golden outputs for the conversion tests.

For every supported architecture this builds a randomly initialised transformers model
(float32, eager attention) and a small tokenizer trained with the `tokenizers` library in the
style of that family, then saves them exactly as the Hub does (`config.json`,
`model.safetensors` or shards + `model.safetensors.index.json`, `tokenizer.json`,
`tokenizer_config.json`). Beside each directory it records:

    golden.json   {"text", "input_ids"} and golden.safetensors {"logits" (T, V)}: transformers' output
    tokens.json   {"sample_ids", "sample_ids_with_specials", "decoded"}: the `tokenizers`
                  library's ids for Tests/Fixtures/hf/sample.txt

plus `dtypes.safetensors` (F32, F16 and BF16 tensors) with `dtypes.json` (their values widened
to float32 by PyTorch).

Run from the repository root (needs torch, transformers, tokenizers, safetensors; never needed
by CI or users):
    python3 scripts/make_hf_fixtures.py
"""
import json
import os
import shutil

import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (GemmaConfig, GemmaForCausalLM, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM,
                          MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "hf")
SAMPLE = open(os.path.join(OUT, "sample.txt"), encoding="utf-8").read()
GOLDEN_TEXT = "The composed model reads 42 facts, über 3 Sprachen."

# Training text for the tokenizers: several scripts, code and numbers, so merges of many kinds exist.
CORPUS = """The quick brown fox jumps over the lazy dog. It's what they'd said: we'll see, you're right.
Composition to augment language models: an anchor model and an augmenting expert are joined by
cross-attention, and only the bridges are trained on a small composition set.
def compose(anchor, experts):
    for layer in range(12):
        hidden = anchor.block(layer, hidden) + gate * bridge(experts)
    return hidden  # 2024-05-07: 3.14159 * 2 = 6.28318
Der schnelle braune Fuchs springt über den faulen Hund. Größe, Straße, Übung, Ärger.
Le renard brun rapide saute par-dessus le chien paresseux. À bientôt, garçon, élève.
Быстрая коричневая лиса прыгает через ленивую собаку. Привет, мир!
敏捷的棕色狐狸跳过了懒狗。语言模型的组合。日本語のテキストも少し含まれています。
numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 12345 3.5 -7 +8 42 1999 2000 65536
if (x != y && y >= 0) { return x ** 2; } else { print("hello, world\\n"); }
""".splitlines() * 4

GPT2_SPLIT = None  # GPT-2 uses ByteLevel's built-in regex
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
BYTE_TOKENS = [f"<0x{i:02X}>" for i in range(256)]


def byte_level_tokenizer(split, specials, bos=None, nfc=False, ignore_merges=False):
    """GPT-2 / Llama 3 / Qwen2 style: byte-level BPE over a regex pre-split."""
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if nfc:
        tok.normalizer = normalizers.NFC()
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    if bos is None:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    else:
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                          special_tokens=[(bos, tok.token_to_id(bos))])])
    return tok


def sentencepiece_tokenizer(style, bos="<s>", eos="</s>"):
    """Llama 2 / Mistral / Gemma style: BPE over `▁`-marked text with byte fallback."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    if style == "llama2":  # legacy Llama 2: the normalizer adds the dummy prefix
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    elif style == "mistral":  # newer exports: a Metaspace pre-tokenizer does it
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    elif style == "gemma":  # no dummy prefix; spaces become ▁ and end each piece
        tok.normalizer = normalizers.Replace(" ", "▁")
        tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    specials = ["<pad>", "<unk>", bos, eos] if style == "gemma" else ["<unk>", bos, eos]
    trainer = trainers.BpeTrainer(vocab_size=520, special_tokens=specials + BYTE_TOKENS, show_progress=False,
                                  limit_alphabet=60)
    tok.train_from_iterator(CORPUS, trainer)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
                                    + ([decoders.Strip(" ", 1, 0)] if style != "gemma" else []))
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.token_to_id(bos))])
    # Byte tokens live in the model's vocabulary only, as in the real files.
    data = json.loads(tok.to_str())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in BYTE_TOKENS]
    return Tokenizer.from_str(json.dumps(data))


def add_extra_tokens(tok, special, plain):
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in special])
    tok.add_tokens([AddedToken(t, normalized=True, lstrip=False) for t in plain])


def save_tokenizer(tok, path, bos, eos, pad=None, add_bos=False):
    tok.save(os.path.join(path, "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": eos,
              "add_bos_token": add_bos, "model_max_length": 64}
    if pad is not None:
        config["pad_token"] = pad
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)


def perturb(model):
    """Norms start at 1 (or 0) and biases at 0; move them so their handling matters."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n or ".ln_" in n or n.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))


def finish(name, model, tok, shard=False):
    path = os.path.join(OUT, name)
    model.eval()
    model.save_pretrained(path, safe_serialization=True, max_shard_size="40KB" if shard else "100GB")
    ids = tok.encode(GOLDEN_TEXT).ids
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    save_file({"logits": torch.from_numpy(logits).contiguous()}, os.path.join(path, "golden.safetensors"))
    with open(os.path.join(path, "golden.json"), "w") as f:
        json.dump({"text": GOLDEN_TEXT, "input_ids": ids}, f)
    plain = tok.encode(SAMPLE, add_special_tokens=False).ids
    with open(os.path.join(path, "tokens.json"), "w") as f:
        json.dump({"sample_ids": plain, "sample_ids_with_specials": tok.encode(SAMPLE).ids,
                   "decoded": tok.decode(plain, skip_special_tokens=True)}, f, ensure_ascii=False)
    print(f"wrote {path}: {len(plain)} sample tokens, vocab {tok.get_vocab_size()}")


def fresh_dir(name):
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def eager(cfg):
    cfg._attn_implementation = "eager"
    return cfg


def make_llama3(seed=11):
    path = fresh_dir("llama")
    tok = byte_level_tokenizer(LLAMA3_SPLIT, ["<|begin_of_text|>", "<|end_of_text|>"], bos="<|begin_of_text|>",
                               ignore_merges=True)
    add_extra_tokens(tok, ["<|eot_id|>"], ["<tool>"])
    save_tokenizer(tok, path, "<|begin_of_text|>", "<|end_of_text|>")
    torch.manual_seed(seed)
    cfg = eager(LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                            rope_theta=500000.0, tie_word_embeddings=True,
                            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                          "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
                            bos_token_id=tok.token_to_id("<|begin_of_text|>"),
                            eos_token_id=tok.token_to_id("<|end_of_text|>")))
    model = LlamaForCausalLM(cfg).float()
    perturb(model)
    finish("llama", model, tok)


def make_llama2(seed=12, hidden=32, name="llama2", shard=True, tok=None):
    path = fresh_dir(name)
    tok = tok or sentencepiece_tokenizer("llama2")
    save_tokenizer(tok, path, "<s>", "</s>", add_bos=True)
    torch.manual_seed(seed)
    cfg = eager(LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=2 * hidden,
                            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                            max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
                            rope_scaling={"rope_type": "linear", "factor": 2.0}, tie_word_embeddings=False,
                            attention_bias=True, mlp_bias=True))
    model = LlamaForCausalLM(cfg).float()
    perturb(model)
    finish(name, model, tok, shard=shard)
    return tok


def make_mistral(seed=13):
    path = fresh_dir("mistral")
    tok = sentencepiece_tokenizer("mistral")
    save_tokenizer(tok, path, "<s>", "</s>", add_bos=True)
    torch.manual_seed(seed)
    cfg = eager(MistralConfig(vocab_size=tok.get_vocab_size(), hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                              rms_norm_eps=1e-5, rope_theta=10000.0, sliding_window=5, tie_word_embeddings=False))
    model = MistralForCausalLM(cfg).float()
    perturb(model)
    finish("mistral", model, tok)


def make_qwen2(seed=14):
    path = fresh_dir("qwen2")
    tok = byte_level_tokenizer(QWEN2_SPLIT, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], nfc=True)
    save_tokenizer(tok, path, None, "<|endoftext|>", pad="<|endoftext|>")
    torch.manual_seed(seed)
    cfg = eager(Qwen2Config(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6,
                            rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False))
    model = Qwen2ForCausalLM(cfg).float()
    perturb(model)
    finish("qwen2", model, tok)


def make_gemma(seed=15):
    path = fresh_dir("gemma")
    tok = sentencepiece_tokenizer("gemma", bos="<bos>", eos="<eos>")
    add_extra_tokens(tok, ["<start_of_turn>", "<end_of_turn>"], [])
    save_tokenizer(tok, path, "<bos>", "<eos>", pad="<pad>", add_bos=True)
    torch.manual_seed(seed)
    cfg = eager(GemmaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                            num_attention_heads=4, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
                            rms_norm_eps=1e-6, rope_theta=10000.0, hidden_act="gelu_pytorch_tanh",
                            pad_token_id=tok.token_to_id("<pad>"), bos_token_id=tok.token_to_id("<bos>"),
                            eos_token_id=tok.token_to_id("<eos>")))
    model = GemmaForCausalLM(cfg).float()
    perturb(model)
    finish("gemma", model, tok)


def make_gpt2(seed=16):
    path = fresh_dir("gpt2")
    tok = byte_level_tokenizer(GPT2_SPLIT, ["<|endoftext|>"])
    save_tokenizer(tok, path, "<|endoftext|>", "<|endoftext|>")
    torch.manual_seed(seed)
    cfg = eager(GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=32, n_layer=2, n_head=4, n_positions=64,
                           activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0.0, embd_pdrop=0.0,
                           attn_pdrop=0.0, bos_token_id=tok.token_to_id("<|endoftext|>"),
                           eos_token_id=tok.token_to_id("<|endoftext|>")))
    model = GPT2LMHeadModel(cfg).float()
    perturb(model)
    finish("gpt2", model, tok)


def make_dtypes():
    torch.manual_seed(17)
    tensors = {"f32": torch.randn(3, 4), "f16": torch.randn(5).half(), "bf16": torch.randn(2, 3).bfloat16(),
               "bf16_extremes": torch.tensor([0.0, -0.0, 1e-40, 3.0e38, -1.5, 65504.0]).bfloat16(),
               "f16_extremes": torch.tensor([0.0, -0.0, 6e-8, 65504.0, -2.5, 1e-5]).half()}
    save_file(tensors, os.path.join(OUT, "dtypes.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(OUT, "dtypes.json"), "w") as f:
        json.dump({k: {"shape": list(v.shape), "values": [float(x) for x in v.float().flatten()]}
                   for k, v in tensors.items()}, f)


if __name__ == "__main__":
    make_llama3()
    shared = make_llama2()
    make_llama2(seed=18, hidden=48, name="tinyllama", shard=False, tok=shared)  # same tokenizer, wider
    make_mistral()
    make_qwen2()
    make_gemma()
    make_gpt2()
    make_dtypes()
