#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first (idempotent):
# the wasm32-wasip2 target, a Python venv with the pinned peers, Node packages, Debian's
# chromium and nats-server.
#
# Builds once, with the settings of `test_build_env` (scripts/setup.sh: the release profile
# with debug assertions and overflow checks for our crates, so the first command's
# dependencies are reused), in two package selections. Cargo unifies features per selection,
# and these two keep wasmtime to one build:
# - wsbox-runner and tests/hosts (wsbox.wasm under wasmtime, with the runner's wasmtime
#   features): exactly the first command's dependencies;
# - the library, its examples, the guests natively, wsbox.wasm's crate (wsbox with all its
#   features, as under `--workspace`), tests/wit-check: no wasmtime.
# The suites run side by side as soon as what they need is built: the Rust tests under
# cargo-nextest, Node and pytest against the runner while the rest builds, then pytest's
# suites that need the library's examples (the two Autobahn runs of the library in parallel)
# while the library's tests build.
# Each stage prints `== stage NAME: N s`.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
start=$SECONDS

setup() {
    ensure_wasm_target
    ensure_test_peers
}
stage setup setup
test_build_env

RUNNER=(-p wsbox-runner -p host-tests)
LIBRARY=(--workspace --exclude wsbox-runner --exclude host-tests)
# Builds yield to the suites already running (timing-sensitive tests, Autobahn).
BUILD=(nice -n 10 cargo)

# rust_tests PROFILE ARGS...
if cargo nextest --version >/dev/null 2>&1; then
    rust_tests() { cargo nextest run --cargo-profile "$1" "${@:2}"; }
else
    log "cargo-nextest is not installed; running the Rust tests with cargo test"
    rust_tests() { cargo test --no-fail-fast --profile "$1" "${@:2}"; }
fi

# The wasm32 builds and the suites' own cargo calls (guests for wasm32-wasip2) must not
# go through clippy (see test_build_env).
unlinted() { env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS "$@"; }

node_tests() {
    (cd tests/node && rm -rf gen \
        && npx --no-install jco transpile ../../target/wsbox.wasm --name wsbox -o gen -q \
        && node --test component.test.mjs runner_deflate.test.mjs sdk_types.test.mjs)
}

# pytest in three parts: what needs only the runner and wsbox.wasm (its Autobahn run
# included), then, once the library's examples are built, the echo server's suites and the
# client's Autobahn run side by side (each Autobahn run holds a core: kosoku and the peer
# compress every message of 12.x/13.x). Together: every test in tests/python.
PYTEST=(unlinted .venv/bin/python -m pytest -q -p no:cacheprovider)
ECHO_SERVER_PY=(tests/python/test_echo_server.py tests/python/test_autobahn.py::test_echo_server)
CLIENT_PY=(tests/python/test_autobahn.py::test_client)
python_runner() {
    "${PYTEST[@]}" tests/python --ignore "${ECHO_SERVER_PY[0]}" \
        --deselect "${ECHO_SERVER_PY[1]}" --deselect "${CLIENT_PY[0]}"
}
python_echo_server() { "${PYTEST[@]}" "${ECHO_SERVER_PY[@]}"; }
python_client() { "${PYTEST[@]}" "${CLIENT_PY[@]}"; }

# Background suites: each one's output goes to a file, printed when it is waited for.
logs=$(mktemp -d)
# `kill` with no pids fails, and errexit holds inside the trap: guard it, or a green run
# exits 2 after its last stage.
trap '[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true; rm -rf "$logs"' EXIT
pids=() names=()
background() {
    local name=$1
    shift
    (stage "$name" "$@") >"$logs/${#pids[@]}" 2>&1 &
    pids+=($!)
    names+=("$name")
}
failed=()
wait_all() {
    local i
    for i in "${!pids[@]}"; do
        if ! wait "${pids[$i]}"; then failed+=("${names[$i]}"); fi
        echo "---- ${names[$i]}"
        cat "$logs/$i"
    done
    pids=() names=()
}

stage "build: runner tests" "${BUILD[@]}" test --no-run --quiet --profile release "${RUNNER[@]}" --all-targets
stage "build: wsbox.wasm" scripts/build-wasm.sh
background "rust tests: runner" rust_tests release "${RUNNER[@]}" --all-targets
background "python: runner, wsbox.wasm" python_runner
background "node: wsbox.wasm, runner" node_tests

# The examples first: the two Autobahn runs they serve are the longest suites, and the
# library's test build (niced) fills what CPU they leave.
stage "build: library examples" "${BUILD[@]}" build --quiet --profile release "${LIBRARY[@]}" --examples
background "python: echo_server" python_echo_server
background "python: autobahn client" python_client
stage "build: library tests" "${BUILD[@]}" test --no-run --quiet --profile release "${LIBRARY[@]}" --all-targets
background "rust tests: library" rust_tests release "${LIBRARY[@]}" --all-targets
stage "doc tests: library" cargo test --doc --profile release "${LIBRARY[@]}"

wait_all
if [ ${#failed[@]} -gt 0 ]; then
    echo "test.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "== stage test.sh total: $((SECONDS - start)) s"
