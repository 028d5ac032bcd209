#!/usr/bin/env bash
# Runs the README's first command (`cargo run --release -p wsbox-runner`, on port 0), waits
# for it to serve the embedded default handler's page, then stops it with SIGINT and expects
# exit 0. Used by .ci/run after removing the wasm32-wasip2 target, to prove that the first
# command installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo run --release -p wsbox-runner -- --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
url=""
for _ in $(seq 1 1800); do   # the first build may take many minutes on 2 cores
    url=$(sed -n 's|^wsbox-runner listening on \(http://[^ ]*\)$|\1|p' "$log" | head -n1)
    [ -n "$url" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$log"; echo "first command: exited before serving" >&2; exit 1
    fi
    sleep 1
done
[ -n "$url" ] || { cat "$log"; echo "first command: no address printed" >&2; kill "$pid"; exit 1; }
page=$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$url")
# The runner is a child of `cargo run`; signal it directly so cargo does not hide its status.
runner=$(pgrep -P "$pid" -x wsbox-runner || echo "$pid")
kill -INT "$runner"
wait "$pid" || { cat "$log"; echo "first command: runner did not exit 0 on SIGINT" >&2; exit 1; }
grep -q "WebSocket" <<<"$page" || { echo "first command: unexpected page at $url" >&2; exit 1; }
# The embedded handler is a wasm32-wasip2 component: whatever state the toolchain was in,
# the first command must leave the target installed (wasm-build adds it through rustup).
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2/lib" ]; then
    echo "first command: served, but the wasm32-wasip2 target is not installed" >&2; exit 1
fi
grep "wasm32-wasip2" "$log" || true   # "was missing; added it" when the build script ran
echo "first command: served $url and exited cleanly"
