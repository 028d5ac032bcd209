#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first (idempotent):
# the wasm32-wasip2 target, a Python venv with the pinned peers, Node packages.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh

ensure_wasm_target
ensure_venv

echo "== cargo test (workspace)"
cargo test --workspace --all-targets
cargo test --workspace --doc

echo "== python peers (pytest)"
.venv/bin/python -m pytest -q tests/python
