#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first (idempotent):
# the wasm32-wasip2 target, a Python venv with the pinned peers, Node packages, Debian's
# chromium and nats-server.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh

ensure_wasm_target
ensure_venv
ensure_chromium     # host-runner/tests/browser.rs
ensure_nats_server  # host-runner/tests/cluster*.rs

echo "== cargo test (workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc

echo "== wsbox.wasm (scripts/build-wasm.sh)"
scripts/build-wasm.sh

echo "== wsbox.wasm under Node (jco + ws)"
ensure_node_modules tests/node
(cd tests/node && rm -rf gen && npx --no-install jco transpile ../../target/wsbox.wasm --name wsbox -o gen -q \
    && node --test component.test.mjs runner_deflate.test.mjs)

echo "== python peers (pytest)"
.venv/bin/python -m pytest -q tests/python
