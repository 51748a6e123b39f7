#!/usr/bin/env bash
# Sets up a fresh Debian machine and runs the whole test suite, then exercises the SwiftPM
# command plugin once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
swift test --skip-build
registry=$(mktemp -d)
trap 'rm -rf "$registry"' EXIT
expert=$(ls checkpoints/experts/kv-[0-9a-f]*.h5 | head -n 1)
swift package --allow-writing-to-package-directory register-expert "$expert" --name plugin-check --domain ci \
    --registry "$registry"
.build/debug/calm experts list --registry "$registry" | grep -q plugin-check
echo "plugin register-expert: ok"
