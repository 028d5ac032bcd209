#!/usr/bin/env bash
# Issue 19's host-memory target, measured: K subscribers that never read (4 KiB receive
# buffers) against one publisher, K = 20 and 1,000, empty (2-byte frames) and 1 MiB
# messages, ws and wss, one shared payload and one payload per subscriber. Prints a
# markdown table: the runner's RSS growth over its idle baseline beside the bound
# K × (--max-backpressure + 64 KiB). Exits 1 if a case grew past it.
#
#   scripts/bench-never-read.sh [--k K]... [--size BYTES]... [--transport ws|wss]... [--mode shared|distinct]...
#   env: NO_BUILD=1 (use target/release/wsbox-runner as it is)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet -p wsbox-runner
handler=$(scripts/build-guest.sh test-handler | tail -n1)
ulimit -n "$(ulimit -Hn)"
exec python3 scripts/bench-never-read.py --handler "$handler" "$@"
