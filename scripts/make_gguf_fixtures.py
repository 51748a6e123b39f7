#!/usr/bin/env python3
"""Writes the tiny GGUF files and reference values for Tests/CALMGGUFTests into Tests/Fixtures/gguf.

Files (all written with the `gguf` package's GGUFWriter; weights quantized with gguf.quants):

    dequant.gguf          one (2, 256) tensor per ggml type F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
                          Q8_0 (each quantized from random data, plus a `<type>_raw` twin of random
                          block bytes with finite scales) and Q2_K..Q6_K (random block bytes:
                          gguf.quants cannot quantize k-quants), with general.alignment = 64
    dequant.safetensors   gguf.quants.dequantize of every tensor above (float32)
    metadata.gguf         one key of every metadata value type, nested arrays, and a tensor
    <model>.gguf          tiny models, laid out as llama.cpp's convert_hf_to_gguf.py lays them out
                          (q/k rows permuted for llama and mistral, Gemma norms stored as 1 + w,
                          GPT-2 Conv1D weights transposed and an output.weight copy of the
                          embedding, llama3 rope scaling as a rope_freqs.weight tensor):
        llama-q           llama, every legacy type plus Q2_K and Q3_K ffn_down rows, gpt2-style BPE
                          ("llama-bpe") with control and user-defined tokens and a chat template
        qwen2             qwen2 with q/k/v biases, Q4_K..Q6_K ffn_down, BPE ("qwen2"), tied head
        gpt2              gpt2, BPE ("gpt-2")
        llama-spm         llama with a SentencePiece vocabulary (scores, byte tokens, BOS added)
        mistral           architecture "mistral" with a sliding window
        gemma             gemma (scaled embeddings, 1 + w norms, GeGLU), SentencePiece without
                          a prefix space
        llama3            llama with llama3 rope scaling in rope_freqs.weight
    golden.json           per model: the text and token ids the logits were computed on, token ids
                          of a few strings (with and without special tokens), the chat template,
                          and which reference produced the logits
    golden.safetensors    per model: logits (T, V)

Reference logits. Every model is first built in transformers with random weights; each tensor is
quantized as the file stores it, dequantized again with gguf.quants, mapped back to the Hugging
Face layout and loaded into the model, whose logits are the "hf" reference. For the
architectures transformers can load from GGUF itself (llama, qwen2, gpt2), the file is then
loaded with `AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)` and those logits are
stored instead ("transformers-gguf"); the script checks both agree. Mistral (transformers does
not undo the q/k permutation for architecture "mistral"), Gemma (no GGUF support) and llama3
rope scaling (transformers ignores rope_freqs.weight) keep the "hf" reference. Token ids come
from `AutoTokenizer.from_pretrained(dir, gguf_file=...)` where it loads.

Tokenizers are the Hugging Face fixtures' (Tests/Fixtures/hf/*/tokenizer.json, written by
scripts/make_hf_fixtures.py) restated as tokenizer.ggml.* metadata.

Run from the repository root (needs numpy, torch, transformers, gguf, safetensors; never needed
by CI or users):
    python3 scripts/make_gguf_fixtures.py
"""
import json
import math
import os

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as Q, GGUFWriter, TokenType
from gguf.quants import dequantize, quantize
from safetensors.numpy import save_file
from transformers import (AutoModelForCausalLM, AutoTokenizer, GemmaConfig, GemmaForCausalLM, GPT2Config,
                          GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
HF = os.path.join(ROOT, "Tests", "Fixtures", "hf")
OUT = os.path.join(ROOT, "Tests", "Fixtures", "gguf")
TEXT = "Composed 42 facts."
STRINGS = ["Hello world", "The composed model reads 42 facts, über 3 Sprachen.", "  two spaces,\nnew line\tand tab",
           "12345 + 678 = 13023", "naïve café 日本語!", "x"]
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}<|start|>{{ message['role'] }}\n"
                 "{{ message['content'] }}<|end|>\n{% endfor %}")

rng = np.random.default_rng(2024)
torch.manual_seed(2024)

LEGACY = [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]
K_QUANTS = [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]
# Byte offsets of the f16 scale fields in each block: (offsets of d, signed?)
SCALE_FIELDS = {Q.Q4_0: ([0], True), Q.Q4_1: ([0, 2], True), Q.Q5_0: ([0], True), Q.Q5_1: ([0, 2], True),
                Q.Q8_0: ([0], True), Q.Q2_K: ([80, 82], False), Q.Q3_K: ([108], True), Q.Q4_K: ([0, 2], False),
                Q.Q5_K: ([0, 2], False), Q.Q6_K: ([208], True)}
# Scale magnitudes that keep weights near the usual 0.02-0.1 (the packed scales multiply them).
SCALE_SIZE = {Q.Q4_0: 0.01, Q.Q4_1: 0.01, Q.Q5_0: 0.005, Q.Q5_1: 0.005, Q.Q8_0: 0.001, Q.Q2_K: 0.005,
              Q.Q3_K: 0.002, Q.Q4_K: 0.001, Q.Q5_K: 0.0005, Q.Q6_K: 0.00005}


def random_blocks(qtype, rows, row_length):
    """Random block bytes with finite f16 scales: every bit pattern of the packed values occurs."""
    block, size = GGML_QUANT_SIZES[qtype]
    n = rows * row_length // block
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    offsets, signed = SCALE_FIELDS[qtype]
    for off in offsets:
        d = rng.uniform(0.3, 1.0, n) * SCALE_SIZE[qtype] * (rng.choice([-1, 1], n) if signed else 1)
        raw[:, off:off + 2] = d.astype(np.float16).view(np.uint8).reshape(n, 2)
    return raw.reshape(rows, row_length // block * size)


def encode(qtype, values):
    """values (rows, row_length) float32 -> what the file stores for `qtype`."""
    if qtype in K_QUANTS:
        return random_blocks(qtype, *values.shape)
    return quantize(values.astype(np.float32), qtype)


def add_tensor(writer, name, stored, qtype):
    if qtype in (Q.F32, Q.F16):
        writer.add_tensor(name, stored)
    else:
        writer.add_tensor(name, stored, raw_dtype=qtype)


# ---------------------------------------------------------------------------------------------
# Dequantization and metadata fixtures


def write_dequant():
    path = os.path.join(OUT, "dequant.gguf")
    writer = GGUFWriter(path, "dequant-test")
    writer.data_alignment = 64
    writer.add_custom_alignment(64)
    refs = {}
    for qtype in LEGACY + K_QUANTS:
        name = qtype.name.lower()
        values = rng.normal(0, 0.05, size=(2, 256)).astype(np.float32)
        if qtype == Q.F16:  # subnormal, signed zero, largest finite, smallest normal
            values[0, :4] = [6e-8, -0.0, 65504.0, 6.1035e-5]
        if qtype == Q.F32:
            values[0, :3] = [-0.0, 1e-40, 3.4e38]
        values[1, :32] = 0  # an all-zero block
        stored = encode(qtype, values)
        add_tensor(writer, name, stored, qtype)
        refs[name] = dequantize(stored, qtype).astype(np.float32).reshape(2, 256)
        if qtype in SCALE_FIELDS and qtype not in K_QUANTS:
            raw = random_blocks(qtype, 2, 256)
            add_tensor(writer, name + "_raw", raw, qtype)
            refs[name + "_raw"] = dequantize(raw, qtype).astype(np.float32).reshape(2, 256)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_file(refs, os.path.join(OUT, "dequant.safetensors"))
    print(f"wrote {path}: {len(refs)} tensors")


def write_metadata():
    path = os.path.join(OUT, "metadata.gguf")
    writer = GGUFWriter(path, "metadata-test")
    writer.add_uint8("test.uint8", 200)
    writer.add_int8("test.int8", -100)
    writer.add_uint16("test.uint16", 60000)
    writer.add_int16("test.int16", -30000)
    writer.add_uint32("test.uint32", 4000000000)
    writer.add_int32("test.int32", -2000000000)
    writer.add_uint64("test.uint64", 2**63 + 5)
    writer.add_int64("test.int64", -(2**62))
    writer.add_float32("test.float32", 1.5)
    writer.add_float64("test.float64", -2.25e-300)
    writer.add_bool("test.bool", True)
    writer.add_string("test.string", "héllo ✓")
    writer.add_array("test.array.int32", [1, -2, 3])
    writer.add_array("test.array.string", ["a", "", "ü"])
    writer.add_array("test.array.nested", [[1, 2], [3]])
    writer.add_array("test.array.float", [0.5, -1.25])
    writer.add_array("test.array.bool", [True, False])
    writer.add_tensor("t", np.arange(6, dtype=np.float32).reshape(2, 3))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {path}")


# ---------------------------------------------------------------------------------------------
# Tokenizers: the Hugging Face fixtures' tokenizers as tokenizer.ggml.* metadata


def hf_tokenizer(name):
    with open(os.path.join(HF, name, "tokenizer.json"), encoding="utf-8") as f:
        return json.load(f)


def token_table(t):
    vocab, added = t["model"]["vocab"], t["added_tokens"]
    n = max(list(vocab.values()) + [a["id"] for a in added]) + 1
    tokens, types = [f"[PAD{i}]" for i in range(n)], [TokenType.UNUSED] * n
    for token, i in vocab.items():
        tokens[i], types[i] = token, TokenType.NORMAL
    for a in added:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = TokenType.CONTROL if a["special"] else TokenType.USER_DEFINED
    return tokens, types


def add_bpe_vocab(writer, name, pre, bos, eos, add_bos, chat_template=None):
    t = hf_tokenizer(name)
    tokens, types = token_table(t)
    merges = [m if isinstance(m, str) else " ".join(m) for m in t["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index(bos))
    writer.add_eos_token_id(tokens.index(eos))
    writer.add_add_bos_token(add_bos)
    if chat_template:
        writer.add_chat_template(chat_template)
    return len(tokens)


def add_spm_vocab(writer, name, add_space_prefix=None):
    """SentencePiece vocabulary: scores fall with the id (merge order), byte and unknown tokens typed."""
    t = hf_tokenizer(name)
    tokens, types = token_table(t)
    scores = []
    for i, token in enumerate(tokens):
        if token.startswith("<0x") and len(token) == 6:
            types[i] = TokenType.BYTE
        if token == "<unk>":
            types[i] = TokenType.UNKNOWN
        scores.append(-float(i) if types[i] == TokenType.NORMAL else 0.0)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    special = {a["content"]: a["id"] for a in t["added_tokens"]}
    bos = special.get("<s>", special.get("<bos>"))
    eos = special.get("</s>", special.get("<eos>"))
    writer.add_bos_token_id(bos)
    writer.add_eos_token_id(eos)
    writer.add_unk_token_id(tokens.index("<unk>"))
    if "<pad>" in special:
        writer.add_pad_token_id(special["<pad>"])
    if add_space_prefix is not None:
        writer.add_add_space_prefix(add_space_prefix)
    return len(tokens)


# ---------------------------------------------------------------------------------------------
# Models


def permute(w, n_head):
    """convert_hf_to_gguf.py's LlamaModel.permute (rows of each head's two rotary halves interleaved)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_layout(cfg, arch):
    """(hf name, gguf name, to_gguf, from_gguf) for Llama-style models."""
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    permuted = arch in ("llama", "mistral")
    shift = 1.0 if arch == "gemma" else 0.0
    ident = (lambda w: w, lambda w: w)
    norm = (lambda w: w + shift, lambda w: w - np.float32(shift))
    out = [("model.embed_tokens.weight", "token_embd.weight", *ident), ("model.norm.weight", "output_norm.weight", *norm)]
    if not cfg.tie_word_embeddings:
        out.append(("lm_head.weight", "output.weight", *ident))
    for i in range(cfg.num_hidden_layers):
        p, g = f"model.layers.{i}.", f"blk.{i}."
        out += [(p + "input_layernorm.weight", g + "attn_norm.weight", *norm),
                (p + "post_attention_layernorm.weight", g + "ffn_norm.weight", *norm)]
        for proj, name, n in [("q", "attn_q", heads), ("k", "attn_k", kv), ("v", "attn_v", None), ("o", "attn_output", None)]:
            for kind in ["weight", "bias"]:
                fwd = (lambda w, n=n: permute(w, n), lambda w, n=n: unpermute(w, n)) if permuted and n else ident
                out.append((p + f"self_attn.{proj}_proj.{kind}", g + f"{name}.{kind}", *fwd))
        for proj in ["gate", "up", "down"]:
            out.append((p + f"mlp.{proj}_proj.weight", g + f"ffn_{proj}.weight", *ident))
    return out


def gpt2_layout(cfg):
    t = (lambda w: w.T.copy(), lambda w: w.T.copy())
    ident = (lambda w: w, lambda w: w)
    out = [("transformer.wte.weight", "token_embd.weight", *ident), ("transformer.wpe.weight", "position_embd.weight", *ident),
           ("transformer.ln_f.weight", "output_norm.weight", *ident), ("transformer.ln_f.bias", "output_norm.bias", *ident)]
    for i in range(cfg.n_layer):
        p, g = f"transformer.h.{i}.", f"blk.{i}."
        for hf, gg in [("ln_1", "attn_norm"), ("ln_2", "ffn_norm")]:
            out += [(p + hf + ".weight", g + gg + ".weight", *ident), (p + hf + ".bias", g + gg + ".bias", *ident)]
        for hf, gg in [("attn.c_attn", "attn_qkv"), ("attn.c_proj", "attn_output"), ("mlp.c_fc", "ffn_up"), ("mlp.c_proj", "ffn_down")]:
            out += [(p + hf + ".weight", g + gg + ".weight", *t), (p + hf + ".bias", g + gg + ".bias", *ident)]
    return out


def perturb(model):
    """Norms start at 1 and biases at 0; move them so their handling matters."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n or ".ln_" in n or n.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))


def write_model(name, arch, model, layout, choose_type, vocab, hparams, tokens_text, extra=None):
    """Writes <name>.gguf from `model` and loads the dequantized weights back into it."""
    path = os.path.join(OUT, f"{name}.gguf")
    writer = GGUFWriter(path, arch)
    writer.add_name(f"calm-{name}-fixture")
    hparams(writer)
    vocab(writer)
    state = model.state_dict()
    types, stored_by_name = {}, {}
    with torch.no_grad():
        for hf, gg, to_gguf, from_gguf in layout:
            if hf not in state:
                continue
            w = to_gguf(state[hf].float().numpy())
            qtype = choose_type(gg, w.shape) if w.ndim == 2 else Q.F32
            stored = encode(qtype, w if w.ndim == 2 else w.reshape(1, -1))
            if w.ndim == 1:
                stored = stored.reshape(-1) if qtype == Q.F32 else stored
            add_tensor(writer, gg, stored, qtype)
            stored_by_name[gg] = (stored, qtype)
            back = from_gguf(dequantize(stored, qtype).astype(np.float32).reshape(w.shape))
            state[hf].copy_(torch.from_numpy(np.ascontiguousarray(back)))
            types[gg] = qtype.name
        if arch == "gpt2":  # the converter also writes the (tied) head, a copy of the embedding
            add_tensor(writer, "output.weight", *stored_by_name["token_embd.weight"])
        for tensor_name, values in (extra or {}).items():
            writer.add_tensor(tensor_name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    model.eval()
    ids = tokens_text
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
    print(f"wrote {path}: {os.path.getsize(path)} bytes, types {sorted(set(types.values()))}")
    return path, logits


def reference(name, path, hf_logits, ids, via_transformers, extra_strings=()):
    record = {"reference": "hf", "input_ids": ids}
    logits = hf_logits
    if via_transformers:
        m = AutoModelForCausalLM.from_pretrained(OUT, gguf_file=os.path.basename(path), dtype=torch.float32)
        m.eval()
        with torch.no_grad():
            gguf_logits = m(input_ids=torch.tensor([ids])).logits[0].float().numpy()
        diff = float(np.abs(gguf_logits - hf_logits).max())
        print(f"  {name}: transformers-gguf vs hf logits max |diff| {diff:.3g}")
        assert diff < 1e-4, f"{name}: transformers' GGUF loading disagrees with the dequantized HF model ({diff})"
        record["reference"], record["gguf_vs_hf_max_diff"] = "transformers-gguf", diff
        logits = gguf_logits
    try:
        tok = AutoTokenizer.from_pretrained(OUT, gguf_file=os.path.basename(path))
        record["strings"] = [{"text": s, "ids": tok(s, add_special_tokens=False).input_ids,
                              "ids_with_specials": tok(s).input_ids} for s in STRINGS + list(extra_strings) + [TEXT]]
        record["text_ids_with_specials"] = tok(TEXT).input_ids
    except Exception as e:  # noqa: BLE001 - some tokenizers transformers cannot build from GGUF
        print(f"  {name}: no transformers GGUF tokenizer ({type(e).__name__}: {str(e)[:100]})")
    return record, logits


def llama_hparams(cfg, arch, vocab_size, extra=None):
    def add(w):
        w.add_vocab_size(vocab_size)
        w.add_context_length(cfg.max_position_embeddings)
        w.add_embedding_length(cfg.hidden_size)
        w.add_block_count(cfg.num_hidden_layers)
        w.add_feed_forward_length(cfg.intermediate_size)
        w.add_head_count(cfg.num_attention_heads)
        w.add_head_count_kv(cfg.num_key_value_heads)
        w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
        w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        if arch == "gemma":
            w.add_key_length(head_dim)
            w.add_value_length(head_dim)
        else:
            w.add_rope_dimension_count(head_dim)
        if extra:
            extra(w)
    return add


def legacy_cycle(names):
    """A type for each 2-D tensor: the legacy types in turn, k-quants where named."""
    order = [Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.F16, Q.BF16, Q.F32]
    counter = [0]

    def choose(gguf_name, shape):
        if gguf_name in names:
            return names[gguf_name]
        qtype = order[counter[0] % len(order)]
        counter[0] += 1
        return qtype
    return choose


def main():
    os.makedirs(OUT, exist_ok=True)
    write_dequant()
    write_metadata()
    golden, logits = {}, {}

    def finish(name, path, hf_logits, ids, via_transformers, template=None, strings=()):
        record, ref = reference(name, path, hf_logits, ids, via_transformers, strings)
        record["text"] = TEXT
        record["chat_template"] = template
        golden[name] = record
        logits[name] = ref.astype(np.float32)

    # llama-q: llama-bpe vocabulary (422 tokens incl. a control and a user-defined added token)
    cfg = LlamaConfig(vocab_size=422, hidden_size=32, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, attn_implementation="eager")
    model = LlamaForCausalLM(cfg)
    perturb(model)
    k = {"blk.0.ffn_down.weight": Q.Q2_K, "blk.1.ffn_down.weight": Q.Q3_K}
    text_ids = [0] + tokenize_with_hf("llama", TEXT)
    path, hf = write_model("llama-q", "llama", model, llama_layout(cfg, "llama"), legacy_cycle(k),
                           lambda w: add_bpe_vocab(w, "llama", "llama-bpe", "<|begin_of_text|>", "<|end_of_text|>", True,
                                                   CHAT_TEMPLATE),
                           llama_hparams(cfg, "llama", 422), text_ids)
    finish("llama-q", path, hf, text_ids, True, CHAT_TEMPLATE,
           ["<|begin_of_text|>Hi<|eot_id|> and <tool>x</tool>", "<|end_of_text|><|end_of_text|>"])

    # qwen2: q/k/v biases, tied head, Q4_K/Q5_K/Q6_K ffn_down
    cfg = Qwen2Config(vocab_size=420, hidden_size=32, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, attn_implementation="eager")
    model = Qwen2ForCausalLM(cfg)
    perturb(model)
    text_ids = tokenize_with_hf("qwen2", TEXT)
    path, hf = write_model("qwen2", "qwen2", model, llama_layout(cfg, "qwen2"),
                           legacy_cycle({"blk.0.ffn_down.weight": Q.Q4_K, "blk.1.ffn_down.weight": Q.Q5_K,
                                         "blk.2.ffn_down.weight": Q.Q6_K}),
                           lambda w: add_bpe_vocab(w, "qwen2", "qwen2", "<|endoftext|>", "<|im_end|>", False),
                           llama_hparams(cfg, "qwen2", 420), text_ids)
    finish("qwen2", path, hf, text_ids, True, strings=["<|im_start|>user\nHi there<|im_end|>\n"])

    # gpt2 (transformers reads context_length as n_ctx and ignores feed_forward_length, so the
    # file keeps GPT-2's 1024 positions and 4x MLP to load there)
    cfg = GPT2Config(vocab_size=420, n_embd=32, n_layer=2, n_head=4, n_positions=1024, n_inner=128,
                     activation_function="gelu_new", resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, attn_implementation="eager")
    model = GPT2LMHeadModel(cfg)
    perturb(model)

    def gpt2_hparams(w):
        w.add_context_length(1024)
        w.add_embedding_length(32)
        w.add_block_count(2)
        w.add_feed_forward_length(128)
        w.add_head_count(4)
        w.add_layer_norm_eps(cfg.layer_norm_epsilon)
    text_ids = tokenize_with_hf("gpt2", TEXT)
    path, hf = write_model("gpt2", "gpt2", model, gpt2_layout(cfg), legacy_cycle({}),
                           lambda w: add_bpe_vocab(w, "gpt2", "gpt-2", "<|endoftext|>", "<|endoftext|>", False),
                           gpt2_hparams, text_ids)
    finish("gpt2", path, hf, text_ids, True, strings=["end<|endoftext|>start"])

    # llama-spm: SentencePiece vocabulary with byte fallback, BOS added by default
    cfg = LlamaConfig(vocab_size=520, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, attn_implementation="eager")
    model = LlamaForCausalLM(cfg)
    perturb(model)
    text_ids = [1] + tokenize_with_hf("llama2", TEXT)
    path, hf = write_model("llama-spm", "llama", model, llama_layout(cfg, "llama"),
                           lambda n, s: Q.Q8_0 if n in ("token_embd.weight", "output.weight") else Q.F16,
                           lambda w: add_spm_vocab(w, "llama2"), llama_hparams(cfg, "llama", 520), text_ids)
    finish("llama-spm", path, hf, text_ids, True, strings=["<s>Hi</s> there", " leading space", "ünïcödé ✓"])

    # mistral: architecture "mistral" (permuted like llama) with a 5-token sliding window
    cfg = MistralConfig(vocab_size=520, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-5,
                        sliding_window=5, tie_word_embeddings=False,
                        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, attn_implementation="eager")
    model = MistralForCausalLM(cfg)
    perturb(model)
    text_ids = [1] + tokenize_with_hf("mistral", TEXT)
    path, hf = write_model("mistral", "mistral", model, llama_layout(cfg, "mistral"), lambda n, s: Q.Q8_0,
                           lambda w: add_spm_vocab(w, "mistral"),
                           llama_hparams(cfg, "mistral", 520, lambda w: w.add_sliding_window(5)), text_ids)
    finish("mistral", path, hf, text_ids, False)

    # gemma: head_dim 16 != hidden / heads, one kv head, norms stored as 1 + w, tied head
    cfg = GemmaConfig(vocab_size=522, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=1, head_dim=16, max_position_embeddings=64, rms_norm_eps=1e-6,
                      hidden_activation="gelu_pytorch_tanh",
                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, attn_implementation="eager")
    model = GemmaForCausalLM(cfg)
    perturb(model)
    text_ids = [2] + tokenize_with_hf("gemma", TEXT)
    path, hf = write_model("gemma", "gemma", model, llama_layout(cfg, "gemma"), lambda n, s: Q.Q8_0,
                           lambda w: add_spm_vocab(w, "gemma", add_space_prefix=False),
                           llama_hparams(cfg, "gemma", 522), text_ids)
    finish("gemma", path, hf, text_ids, False)

    # llama3: llama3 rope scaling, stored as llama.cpp's converter stores it (rope_freqs.weight)
    rope = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    cfg = LlamaConfig(vocab_size=422, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-5,
                      tie_word_embeddings=True, rope_parameters=rope, attn_implementation="eager")
    model = LlamaForCausalLM(cfg)
    perturb(model)
    text_ids = [0] + tokenize_with_hf("llama", TEXT)
    path, hf = write_model("llama3", "llama", model, llama_layout(cfg, "llama"), lambda n, s: Q.Q8_0,
                           lambda w: add_bpe_vocab(w, "llama", "llama-bpe", "<|begin_of_text|>", "<|end_of_text|>", True),
                           llama_hparams(cfg, "llama", 422), text_ids, extra={"rope_freqs.weight": llama3_divisors(rope, 8)})
    finish("llama3", path, hf, text_ids, False)

    with open(os.path.join(OUT, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
    save_file(logits, os.path.join(OUT, "golden.safetensors"))
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"fixtures: {total} bytes in {OUT}")


def llama3_divisors(rope, dim):
    """generate_extra_tensors of convert_hf_to_gguf.py's LlamaModel. (The converter reads the
    original context from the top-level config, where Meta's configs keep it in rope_scaling; here
    it comes from the rope parameters so the file describes the Hugging Face model exactly.)"""
    base, factor = rope["rope_theta"], rope["factor"]
    low, high, old = rope["low_freq_factor"], rope["high_freq_factor"], rope["original_max_position_embeddings"]
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old / high:
            out.append(1)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def tokenize_with_hf(name, text):
    """Ids of `text` from the Hugging Face fixture's own tokenizer.json (no special tokens)."""
    from tokenizers import Tokenizer
    return Tokenizer.from_file(os.path.join(HF, name, "tokenizer.json")).encode(text, add_special_tokens=False).ids


if __name__ == "__main__":
    main()
