#!/usr/bin/env bash
# Installs the system libraries CALM links against (Debian/Ubuntu), if they are missing.
# Swift 6 itself must already be on PATH.
set -euo pipefail
# Open MPI is optional for building and running (libmpi is loaded at run time); the tests of
# `mpirun -np 2 calm compose` need it.
packages=(libopenblas-dev libhdf5-dev openmpi-bin libopenmpi-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH: install a Swift 6 toolchain first" >&2; exit 1; }
