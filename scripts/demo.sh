#!/usr/bin/env bash
# The main job: sets up a fresh Debian machine, builds `calm`, trains a tiny adder LM from
# scratch with `calm pretrain`, evaluates it and generates with it. About a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product calm
calm=.build/release/calm
work=runs/demo
mkdir -p "$work"
make_set() {  # seed count
    awk -v seed="$1" -v n="$2" 'BEGIN { srand(seed); for (i = 0; i < n; i++) {
        a = int(rand() * 50); b = int(rand() * 50)
        printf "{\"prompt\": \"%d + %d =\", \"completion\": \" %d\"}\n", a, b, a + b } }'
}
make_set 7 20000 > "$work/train.jsonl"
make_set 8 200 > "$work/eval.jsonl"
$calm pretrain --data "$work/train.jsonl" --eval-data "$work/eval.jsonl" --output "$work/adder.h5" \
    --steps 800 --batch-size 32 --seq-len 24 --layers 2 --hidden 64 --heads 4 --lr 3e-3 --seed 0 \
    --log-every 100 --eval-every 200
$calm eval --model "$work/adder.h5" --data "$work/eval.jsonl"
for prompt in "12 + 30 =" "7 + 8 =" "41 + 9 ="; do
    printf '%s%s\n' "$prompt" "$($calm generate --model "$work/adder.h5" --prompt "$prompt" --max-tokens 4)"
done
