#!/usr/bin/env bash
# Issue 19's host-memory target, measured: K subscribers that never read (4 KiB receive
# buffers) against one publisher, K = 20 and 1,000, empty (2-byte frames) and 1 MiB
# messages, ws and wss, one shared payload and one payload per subscriber. Prints a
# markdown table: the runner's RSS growth over its idle baseline beside the bound
# K × (--max-backpressure + 64 KiB). Exits 1 if a case grew past it.
#
# The kernel would hide most of the queue: a socket's send buffer grows to
# net.ipv4.tcp_wmem's maximum (4 MB) whatever the peer's receive buffer, so a runner that
# holds nothing looks the same as one that holds everything. As root the script therefore runs
# in a network namespace of its own (`unshare -n`, loopback only) whose tcp_wmem is capped at
# 16 KiB; otherwise it says so and measures with the kernel's buffers.
#
#   scripts/bench-never-read.sh [--k K]... [--size BYTES]... [--transport ws|wss]... [--mode shared|distinct]...
#   env: NO_BUILD=1 (use target/release/wsbox-runner as it is)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet -p wsbox-runner
handler=$(scripts/build-guest.sh test-handler | tail -n1)
ulimit -n "$(ulimit -Hn)"
if [ -z "${WSBOX_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
    export WSBOX_NETNS=1
    exec unshare -n bash -c 'ip link set lo up && sysctl -qw net.ipv4.tcp_wmem="4096 16384 16384" \
        && echo "(own network namespace: loopback, tcp_wmem max 16 KiB)" && exec "$0" "$@"' "$0" "$@"
fi
[ -n "${WSBOX_NETNS:-}" ] || echo "(not root: the kernel's send buffers, up to 4 MB a socket, hide part of each queue)"
exec python3 scripts/bench-never-read.py --handler "$handler" "$@"
