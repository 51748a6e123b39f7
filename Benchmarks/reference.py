#!/usr/bin/env python3
"""PyTorch + transformers reference for `calm bench` (same shapes, same JSON keys).

Anchor and two augments are LlamaForCausalLM models with random weights. The composition is
added through forward hooks on the anchor's decoder layers: per augment and connection a
projection, multi-head cross-attention with a causal mask, and a per-token sigmoid gate, summed
into the anchor's residual stream. Only those parameters train (AdamW). Decoding uses the
anchor's KV cache while the augments are recomputed over the whole sequence at every step, as
public CALM code effectively does.

    python3 Benchmarks/reference.py --config S --threads 2 --steps 5
Needs torch and transformers; never used by CI or by users.
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    "S": dict(vocab=64, seq=128, batch=16, anchor=(256, 8, 8, 1024), augment=(128, 8, 4, 512),
              connections=[(3, 3), (7, 7)], new_tokens=112),
    "M": dict(vocab=512, seq=256, batch=8, anchor=(512, 12, 8, 2048), augment=(256, 8, 8, 1024),
              connections=[(5, 3), (11, 7)], new_tokens=64),
    # SmolLM2-135M's shape (3 key/value heads, tied embeddings) as anchor and as one augment.
    "SmolLM2": dict(vocab=49152, seq=256, batch=4, anchor=(576, 30, 9, 1536), augment=(576, 30, 9, 1536),
                    kv_heads=3, tied=True, augments=1, bridge_heads=9,
                    connections=[(i, i) for i in range(3, 30, 4)], new_tokens=32),
}


def llama(vocab, seq, width, layers, heads, ffn, kv_heads=None, tied=False):
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=width, intermediate_size=ffn, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads or heads, max_position_embeddings=seq,
                      tie_word_embeddings=tied)
    cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(cfg).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class Bridge(nn.Module):
    """Projection + causal multi-head cross-attention + per-token sigmoid gate."""

    def __init__(self, d_aug, d_anchor, heads):
        super().__init__()
        self.heads = heads
        self.proj = nn.Linear(d_aug, d_anchor)
        self.q = nn.Linear(d_anchor, d_anchor, bias=False)
        self.k = nn.Linear(d_anchor, d_anchor, bias=False)
        self.v = nn.Linear(d_anchor, d_anchor, bias=False)
        self.o = nn.Linear(d_anchor, d_anchor, bias=False)
        self.gate = nn.Linear(d_anchor, 1)

    def forward(self, h, aug):
        b, t, d = h.shape
        s = aug.shape[1]
        a = self.proj(aug)
        q = self.q(h).view(b, t, self.heads, -1).transpose(1, 2)
        k = self.k(a).view(b, s, self.heads, -1).transpose(1, 2)
        v = self.v(a).view(b, s, self.heads, -1).transpose(1, 2)
        # Anchor position t (offset by any cached prefix) sees augment positions <= t.
        offset = s - t
        mask = torch.ones(t, s, dtype=torch.bool).tril(diagonal=offset)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = self.o(y.transpose(1, 2).reshape(b, t, d))
        return torch.sigmoid(self.gate(h)) * y


class Composition(nn.Module):
    def __init__(self, shape):
        super().__init__()
        v, seq = shape["vocab"], shape["seq"]
        extra = dict(kv_heads=shape.get("kv_heads"), tied=shape.get("tied", False))
        self.anchor = llama(v, seq, *shape["anchor"], **extra)
        self.augments = [llama(v, seq, *shape["augment"], **extra) for _ in range(shape.get("augments", 2))]
        self.connections = shape["connections"]
        d_anchor, d_aug = shape["anchor"][0], shape["augment"][0]
        heads = shape.get("bridge_heads", 8)
        self.bridges = nn.ModuleList(nn.ModuleList(Bridge(d_aug, d_anchor, heads) for _ in self.connections)
                                     for _ in self.augments)
        self.aug_states = None
        for j, (anchor_layer, _) in enumerate(self.connections):
            self.anchor.model.layers[anchor_layer].register_forward_hook(self._hook(j))

    def _hook(self, j):
        def hook(module, inputs, output):
            h = output[0] if isinstance(output, tuple) else output
            delta = sum(self.bridges[i][j](h, self.aug_states[i][j]) for i in range(len(self.augments)))
            h = h + delta
            return (h,) + tuple(output[1:]) if isinstance(output, tuple) else h
        return hook

    def augment_states(self, ids):
        states = []
        with torch.no_grad():
            for m in self.augments:
                hs = m.model(input_ids=ids, output_hidden_states=True).hidden_states
                states.append([hs[aug_layer + 1] for _, aug_layer in self.connections])
        return states


def training_flops_per_token(shape):
    """The cost model of `calm bench` (CostReport): 2 FLOPs per multiply-add."""
    seq, span = shape["seq"], max(1, shape["seq"] // 2)

    kv = shape.get("kv_heads")
    augment_count = shape.get("augments", 2)

    def block(width, heads, ffn, span):
        head_dim = width // heads
        projections = width * head_dim * (2 * heads + 2 * (kv or heads))
        return 2 * (projections + 3 * width * ffn + 2 * span * width)

    aw, al, ah, af = shape["anchor"]
    gw, gl, gh, gf = shape["augment"]
    head = 2 * aw * shape["vocab"]
    lowest = min(a for a, _ in shape["connections"])
    deepest = max(g for _, g in shape["connections"])
    bridge = len(shape["connections"]) * augment_count * (2 * (gw * aw + 4 * aw * aw + aw) + 4 * span * aw)
    augments = augment_count * (deepest + 1) * block(gw, gh, gf, span)
    anchor = al * block(aw, ah, af, span) + head
    backward = (al - lowest - 1) * block(aw, ah, af, span) + head + 2 * bridge
    return augments + anchor + bridge + backward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="S", choices=list(SHAPES))
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = SHAPES[args.config]
    comp = Composition(shape)
    opt = torch.optim.AdamW(comp.bridges.parameters(), lr=1e-4)
    ids = torch.randint(0, shape["vocab"], (shape["batch"], shape["seq"]))
    tokens = shape["batch"] * shape["seq"]

    best = float("inf")
    for step in range(args.steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        comp.aug_states = comp.augment_states(ids)  # recomputed every step
        logits = comp.anchor(input_ids=ids).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        if step > 0:
            best = min(best, time.perf_counter() - start)

    # Decoding: anchor KV cache; augments recomputed over the whole sequence each step.
    seq = ids[:1, :16]
    start = time.perf_counter()
    with torch.no_grad():
        comp.aug_states = comp.augment_states(seq)
        out = comp.anchor(input_ids=seq, use_cache=True)
        past = out.past_key_values
        for _ in range(shape["new_tokens"]):
            nxt = out.logits[:, -1:].argmax(-1)
            seq = torch.cat([seq, nxt], dim=1)
            comp.aug_states = comp.augment_states(seq)
            out = comp.anchor(input_ids=nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
    decode = shape["new_tokens"] / (time.perf_counter() - start)

    m, n, k = tokens, shape["anchor"][3], shape["anchor"][0]
    a, b = torch.randn(m, k), torch.randn(k, n)
    sg = float("inf")
    for _ in range(5):
        s0 = time.perf_counter()
        torch.mm(a, b)
        sg = min(sg, time.perf_counter() - s0)
    print(json.dumps({
        "train_tokens_per_s": round(tokens / best, 2),
        "gflops": round(training_flops_per_token(shape) * tokens / best / 1e9, 2),
        "train_cached_tokens_per_s": round(tokens / best, 2),  # no such savings in the reference
        "decode_tokens_per_s": round(decode, 2),
        "sgemm_gflops": round(2 * m * n * k / sg / 1e9, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 2),
        "config": args.config, "threads": args.threads,
    }))


if __name__ == "__main__":
    main()
