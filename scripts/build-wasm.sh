#!/usr/bin/env bash
# Builds wsbox.wasm (the `core` world of wit/) for wasm32-wasip2 and copies it to
# target/wsbox.wasm. Uses the target directory of wasm-build (target/wasm), so this and the
# build script of tests/hosts share one build.
set -euo pipefail
cd "$(dirname "$0")/.."
# Flags and wrappers meant for native builds (test.sh's clippy) must not reach this one.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
cargo build --quiet --package wsbox-component --target wasm32-wasip2 --profile guest \
    --target-dir target/wasm
cp target/wasm/wasm32-wasip2/guest/wsbox_component.wasm target/wsbox.wasm
echo "target/wsbox.wasm: $(wc -c < target/wsbox.wasm) bytes"
