#!/usr/bin/env bash
# The echo handler in Rust, JavaScript and Python side by side under wsbox-runner (see
# scripts/bench-languages.py for what is measured). Builds the three guests, the runner and
# wsload (in a copy of ../shared/bench at $BENCH, default /tmp/wsbench) first.
#
#   scripts/bench-languages.sh [--secs T]
#   env: NO_BUILD=1 (use target/release/wsbox-runner as it is), BENCH
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
BENCH=${BENCH:-/tmp/wsbench}
[ -n "${NO_BUILD:-}" ] || cargo build --release --quiet -p wsbox-runner
if [ ! -x "$BENCH/target/release/wsload" ]; then
    rm -rf "$BENCH" && cp -r ../shared/bench "$BENCH"
    (cd "$BENCH" && cargo build --release --quiet -p wsload)
fi
ensure_venv
handlers=()
for name in echo echo-js echo-py; do
    handlers+=("$name=$(scripts/build-guest.sh "$name" 2>/dev/null | tail -n1)")
done
ulimit -n "$(ulimit -Hn)"
exec .venv/bin/python scripts/bench-languages.py --wsload "$BENCH/target/release/wsload" "$@" "${handlers[@]}"
