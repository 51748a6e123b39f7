#!/usr/bin/env bash
# Reproduces every shipped key-value arithmetic model from scratch (about an hour on 2 cores):
# the data sets, the anchor, the experts kv, kv-a and kv-b (registered in checkpoints/experts),
# and the four compositions in checkpoints/compositions. Single-threaded BLAS keeps every run
# bit-for-bit reproducible; two jobs run side by side on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product calm
calm=.build/release/calm
work=runs/kv
data=$work/data
mkdir -p "$work" checkpoints/compositions

# 1. Data: 500 keys per expert, values 1-9, 3 terms, + and -, 20% of keys held in (seed 0).
#    The key maps are the shipped ones: identical maps are left alone, and a generator change
#    that would alter them stops here (add --force to replace them on purpose).
$calm data kv --out "$data" --map-dir checkpoints/kv --experts kv,kv-a,kv-b --seed 0

# The shared recipes (also read by `calm demo --retrain` and scripts/kv_ablations.sh).
recipe() { grep -v -e '^#' -e '^$' "checkpoints/kv/$1.args"; }
mapfile -t shape < <(recipe model)
mapfile -t composition < <(recipe compose)

# 2. Models: 4 blocks, width 128, 4 heads (checkpoints/kv/model.args), one word tokenizer shared by all.
model=(--tokenizer-from "$data/vocab.json" "${shape[@]}" --steps 3000 --batch-size 64
       --lr 3e-3 --warmup 100 --threads 1 --log-every 500 --eval-every 1000 --no-resume-state
       --zero-unseen-embeddings)
# --zero-unseen-embeddings: tokens absent from a model's data (for the anchor every key, for an
# expert the other experts' keys) get the same zero input embedding instead of a random one.
$calm pretrain "${model[@]}" --data "$data/numeric-train.jsonl" --eval-data "$data/numeric-eval.jsonl" \
    --seq-len 16 --seed 1 --output checkpoints/anchor.h5 &
$calm pretrain "${model[@]}" --data "$data/kv-train.jsonl" --eval-data "$data/kv-subst-eval.jsonl" \
    --seq-len 32 --seed 2 --output "$work/kv.h5" &
wait
$calm pretrain "${model[@]}" --data "$data/kv-a-train.jsonl" --eval-data "$data/kv-a-subst-eval.jsonl" \
    --seq-len 32 --seed 3 --output "$work/kv-a.h5" &
$calm pretrain "${model[@]}" --data "$data/kv-b-train.jsonl" --eval-data "$data/kv-b-subst-eval.jsonl" \
    --seq-len 32 --seed 4 --output "$work/kv-b.h5" &
wait
for e in kv kv-a kv-b; do
    $calm experts register "$work/$e.h5" --name "$e" --domain kv-arithmetic --replace \
        --description "key-value substitution over its own 500 keys (checkpoints/kv/$e.json)"
done

# 3. Compositions (checkpoints/kv/compose.args, the recipe `calm demo --retrain` uses): bridges
#    into the anchor's embedding output and blocks 0-2, all from expert block 0 (where
#    `calm probe` reads every value), trained on D_C only.
compose=(--anchor checkpoints/anchor.h5 "${composition[@]}" --threads 1 --log-every 500)
$calm compose "${compose[@]}" --expert kv --data "$data/kv-dc.jsonl" --output checkpoints/compositions/kv-arithmetic.h5 &
$calm compose "${compose[@]}" --expert kv-a --expert kv-b --data "$data/mixed-dc.jsonl" \
    --output checkpoints/compositions/kv-two-experts.h5 &
wait
$calm compose "${compose[@]}" --expert kv-a --data "$data/mixed-dc.jsonl" --output checkpoints/compositions/kv-a-only.h5 &
$calm compose "${compose[@]}" --expert kv-b --data "$data/mixed-dc.jsonl" --output checkpoints/compositions/kv-b-only.h5 &
wait
$calm demo --plot docs/kv-results.svg
