#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the whole test suite, then exercises each SwiftPM
# command plugin once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
# Suites run one at a time: one full run in about ten aborted with a heap-corruption report
# ("munmap_chunk(): invalid pointer") while suites ran concurrently; serial runs never have.
# The cause is not found yet (see the issue notes); concurrency inside a test is unchanged.
swift test --skip-build --no-parallel
registry=$(mktemp -d)
trap 'rm -rf "$registry"' EXIT
expert=$(ls checkpoints/experts/kv-[0-9a-f]*.h5 | head -n 1)
swift package --allow-writing-to-package-directory register-expert "$expert" --name plugin-check --domain ci \
    --registry "$registry"
.build/debug/calm experts list --registry "$registry" | grep -q plugin-check
echo "plugin register-expert: ok"
swift package --allow-writing-to-package-directory convert-checkpoint Tests/Fixtures/hf/qwen2 "$registry/qwen2.h5" \
    --register plugin-qwen2 --domain ci --registry "$registry"
.build/debug/calm experts list --registry "$registry" | grep -q plugin-qwen2
echo "plugin convert-checkpoint: ok"
# The example package (Examples/MambaExpert): a Mamba expert added from outside, the way a user
# would, with its own calm-mamba tool; a debug build of its own (CALM included) and its tests.
swift build --build-tests --package-path Examples/MambaExpert
swift test --skip-build --no-parallel --package-path Examples/MambaExpert
