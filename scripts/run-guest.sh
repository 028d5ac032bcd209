#!/usr/bin/env bash
# Builds the handler component guests/NAME and serves it with wsbox-runner; the other
# arguments go to the runner (`cargo run --release -p wsbox-runner -- --help` lists them).
#
#   scripts/run-guest.sh chat                       # then open http://127.0.0.1:8080/
#   scripts/run-guest.sh broadcast --listen 127.0.0.1:9001
#
# The component is built by scripts/build-guest.sh (Rust, JavaScript or TypeScript).
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:-}
if [ -z "$name" ] || [ ! -d "guests/$name" ]; then
    echo "usage: $0 NAME [wsbox-runner flags...]" >&2
    echo "NAME is one of: $(cd guests && ls -d */ | tr -d / | tr '\n' ' ')" >&2
    exit 2
fi
shift
wasm=$(scripts/build-guest.sh "$name" | tail -n 1)
exec cargo run --release --package wsbox-runner -- --handler "$wasm" "$@"
