#!/usr/bin/env python3
"""Summarise `calm eval --gates FILE` output of the knowledge suite (README, "Real composition").

For each record: the gate of EXPERT at the position that predicts the answer's first word (the
line break after the chat's `assistant`), and, with --other, the largest gate of OTHER over that
position and the answer. Prints accuracy, quartiles and extremes.

    calm eval --teacher-forced --anchor ANCHOR --registry REG --composition COMP.h5 \\
        --data runs/knowledge/atlas-a-eval.jsonl --limit 200 --gates gates.jsonl
    scripts/gate_first_word.py gates.jsonl atlas-a@29:3 --other atlas-b@29:3
"""
import argparse
import json
import statistics
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gates", help="JSONL written by calm eval --gates")
    parser.add_argument("expert", help="gate key of the expert that knows the answers, e.g. atlas@29:3")
    parser.add_argument("--other", help="gate key of another expert in the composition")
    args = parser.parse_args()
    first, other, correct = [], [], 0
    with open(args.gates) as f:
        for n, line in enumerate(f, 1):
            try:
                record = json.loads(line)
                tokens, gates = record["tokens"], record["gates"]
                start = max(k for k in range(len(tokens) - 1) if tokens[k] == "istant") + 1
                first.append(gates[args.expert][start])
                if args.other:
                    other.append(max(gates[args.other][start:]))
            except (ValueError, KeyError) as error:
                sys.exit(f"{args.gates}:{n}: not a gate record of this suite ({error})")
            correct += bool(record.get("correct"))
    if len(first) < 2:
        sys.exit(f"{args.gates}: need at least 2 records, found {len(first)}")
    print(f"records {len(first)}, correct {correct}")
    print(f"{args.expert} at the answer's first word: quartiles "
          + ", ".join(f"{q:.3g}" for q in statistics.quantiles(first, n=4)) + f"; min {min(first):.3g}, max {max(first):.3g}")
    if other:
        print(f"{args.other}, largest over the answer: median {statistics.median(other):.3g}, max {max(other):.3g}")


if __name__ == "__main__":
    main()
