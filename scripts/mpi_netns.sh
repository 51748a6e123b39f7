#!/usr/bin/env bash
# Runs `mpirun -np 2 CALM ARGS...` across two network namespaces joined by a veth pair, one rank
# in each, so Open MPI's TCP transport carries everything between them as it would between two
# hosts. The pair has private addresses (10.231.0.1 and .2, a /30) that lead nowhere else, and
# both namespaces are removed afterwards. Needs root and iproute2; exits 77 (skipped) with a
# message when namespaces cannot be created.
# Usage: scripts/mpi_netns.sh CALM_BINARY ARGS...
set -euo pipefail
calm=$1; shift
tag="calm$$"
first="$tag-a" second="$tag-b"
agent=$(mktemp)
cleanup() {
    ip netns del "$first" 2>/dev/null || true
    ip netns del "$second" 2>/dev/null || true
    rm -f "$agent"
}
trap cleanup EXIT
if ! ip netns add "$first" 2>/dev/null || ! ip netns add "$second" 2>/dev/null; then
    echo "skipped: network namespaces cannot be created here (needs root and iproute2)" >&2
    exit 77
fi
ip link add "$tag-x" type veth peer name "$tag-y"
ip link set "$tag-x" netns "$first"
ip link set "$tag-y" netns "$second"
ip -n "$first" addr add 10.231.0.1/30 dev "$tag-x"
ip -n "$second" addr add 10.231.0.2/30 dev "$tag-y"
for ns in "$first" "$second"; do ip -n "$ns" link set lo up; done
ip -n "$first" link set "$tag-x" up
ip -n "$second" link set "$tag-y" up

# mpirun starts its daemon on the "remote host" through this agent instead of ssh: the host
# name is the second namespace's address, and the command runs inside that namespace.
cat > "$agent" <<AGENT
#!/bin/sh
host=\$1; shift
case "\$host" in 10.231.0.2) ns=$second ;; *) ns=$first ;; esac
exec ip netns exec "\$ns" sh -c "\$*"
AGENT
chmod +x "$agent"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ip netns exec "$first" mpirun --host 10.231.0.1:1,10.231.0.2:1 -np 2 --bind-to none \
    --mca plm_rsh_agent "$agent" --mca btl tcp,self --mca btl_tcp_if_include 10.231.0.0/30 \
    --mca oob_tcp_if_include 10.231.0.0/30 --mca oob_tcp_keepalive_time 10 --mca oob_tcp_keepalive_intvl 5 \
    --mca oob_tcp_keepalive_probes 3 "$calm" "$@"
