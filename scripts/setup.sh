#!/usr/bin/env bash
# Installs the system libraries CALM links against (Debian/Ubuntu), if they are missing.
# Swift 6 itself must already be on PATH.
set -euo pipefail
# --with-mpi adds Open MPI, which building and running never need (libmpi is loaded at run time
# under mpirun) but the tests of `mpirun -np 2 calm compose` do.
packages=(libopenblas-dev libhdf5-dev)
if [ "${1:-}" = "--with-mpi" ]; then packages+=(openmpi-bin libopenmpi-dev); fi
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
