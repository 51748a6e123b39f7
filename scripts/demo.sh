#!/usr/bin/env bash
# The main job: sets up a fresh Debian machine, builds `calm` and runs `calm demo`, which
# evaluates the shipped key-value arithmetic models (anchor, experts, compositions in
# checkpoints/) and prints the paper's Table 1 and the two-expert table beside the paper's
# numbers. Pass --retrain to retrain every composition from D_C first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product calm
.build/release/calm demo --plot runs/demo-kv/results.svg "$@"
