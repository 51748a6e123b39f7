#!/usr/bin/env bash
# The paper's §4.4 ablations on KV-Arithmetic (held-out keys), with the same trainable-parameter
# budget as CALM where the paper has one. Run after scripts/train_kv_models.sh (it needs
# checkpoints/anchor.h5, the registered experts and runs/kv/data). About 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
calm=.build/release/calm
data=runs/kv/data
out=runs/kv/ablations
registry=$out/experts
mkdir -p "$out"
# The shared recipes (checkpoints/kv/*.args, also read by train_kv_models.sh and calm demo --retrain).
recipe() { grep -v -e '^#' -e '^$' "checkpoints/kv/$1.args"; }
mapfile -t shape < <(recipe model)
mapfile -t composition < <(recipe compose)
model=(--tokenizer-from "$data/vocab.json" "${shape[@]}" --seq-len 32 --threads 1 --no-resume-state)
compose=(--anchor checkpoints/anchor.h5 "${composition[@]}" --threads 1 --log-every 500 --registry "$registry")

# Augments of the expert's shape without its knowledge: random weights, and "vanilla" (trained
# like the anchor on Numeric-Arithmetic only, never on a key).
$calm pretrain "${model[@]}" --data "$data/numeric-train.jsonl" --steps 0 --seed 5 --output "$out/random.h5"
$calm pretrain "${model[@]}" --data "$data/numeric-train.jsonl" --steps 3000 --batch-size 64 --lr 3e-3 \
    --warmup 100 --seed 6 --log-every 1000 --zero-unseen-embeddings --output "$out/vanilla.h5"
$calm experts register "$out/random.h5" --name kv-random --domain ablation --registry "$registry" --replace
$calm experts register "$out/vanilla.h5" --name kv-vanilla --domain ablation --registry "$registry" --replace

$calm compose "${compose[@]}" --expert kv-random --data "$data/kv-dc.jsonl" --output "$out/calm-random.h5" &
$calm compose "${compose[@]}" --expert kv-vanilla --data "$data/kv-dc.jsonl" --output "$out/calm-vanilla.h5" &
wait
# The anchor fine-tuned on D_C: fully, and with LoRA at CALM's parameter count (rank 28 on every
# projection of the 4 blocks: 11776 x 28 = 329,728 parameters vs CALM's 331,268).
ft=(--init-from checkpoints/anchor.h5 --data "$data/kv-dc.jsonl" --seq-len 16 --steps 3000 --batch-size 64
    --warmup 100 --seed 0 --threads 1 --log-every 1000 --no-resume-state)
$calm pretrain "${ft[@]}" --lr 1e-3 --output "$out/anchor-ft.h5" &
$calm pretrain "${ft[@]}" --lr 3e-3 --lora-rank 28 --weight-decay 0 --output "$out/anchor-lora.h5" &
wait

eval=(--data "$data/kv-arith-eval.jsonl" --workers 2 --threads 1)
for m in anchor-ft anchor-lora; do
    printf '%-28s %s\n' "$m" "$($calm eval --model "$out/$m.h5" "${eval[@]}")"
    printf '%-28s %s\n' "$m (Numeric-Arithmetic)" "$($calm eval --model "$out/$m.h5" --data "$data/numeric-eval.jsonl" --workers 2 --threads 1)"
done
for m in calm-random calm-vanilla; do
    printf '%-28s %s\n' "$m" "$($calm eval --composition "$out/$m.h5" --registry "$registry" "${eval[@]}")"
done
