# Sourced by test.sh: installs what the tests need, idempotently, and says what it does.
# Everything lands inside the checkout (.venv, node_modules) except Debian packages.

log() { printf '[setup] %s\n' "$*" >&2; }

# The wasm32-wasip2 target (rust-toolchain.toml asks rustup for it; this covers a rustup that
# did not honour `targets`).
ensure_wasm_target() {
    if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
        log "adding the wasm32-wasip2 target"
        rustup target add wasm32-wasip2
    fi
}

# A Python venv with the pinned test peers (websockets, pytest, wasmtime, kosoku) and
# componentize-py (Python guests).
ensure_venv() {
    local req=tests/python/requirements.txt stamp=.venv/.requirements
    if [ -x .venv/bin/python ] && cmp -s "$req" "$stamp"; then
        return
    fi
    log "creating .venv from $req"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
}

# Node packages for a directory with a package-lock.json.
ensure_node_modules() {
    local dir=$1
    if [ -d "$dir/node_modules" ] && cmp -s "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.stamp"; then
        return
    fi
    log "installing node packages in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$dir/node_modules/.package-lock.json.stamp"
}

# Debian's packages, with one `apt-get update` for however many are missing.
apt_updated=""
apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    if [ -z "$apt_updated" ]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# Debian's headless Chromium, for the browser test.
ensure_chromium() {
    if command -v chromium >/dev/null 2>&1; then
        return
    fi
    log "installing Debian's chromium"
    apt_install chromium
}

# Debian's nats-server, for the cluster tests (they start their own on a free port; the
# package's service is not used).
ensure_nats_server() {
    if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
        return
    fi
    log "installing Debian's nats-server"
    apt_install nats-server
}

# Everything above that needs no Rust toolchain (.ci/run installs these in the background
# while the first command builds).
ensure_test_peers() {
    ensure_venv
    ensure_node_modules tests/node
    ensure_node_modules sdk/js   # JavaScript guests (scripts/build-guest.sh)
    ensure_chromium     # host-runner/tests/browser.rs
    ensure_nats_server  # host-runner/tests/cluster*.rs
}

# How test.sh builds the tests, shared with .ci/run so that the first command's release build
# is the one the tests use (the dependencies are built once, for both):
# - the release profile, with debug assertions and overflow checks on for the workspace's own
#   crates only (Cargo.toml spells out `false` for the dependencies and the guest profile), so
#   a user's `cargo run --release` binary is not touched: nothing here is in a file cargo reads;
# - with WSBOX_CLIPPY=1 (.ci/run), clippy's lints (`-D warnings`) as the workspace's crates
#   compile, instead of a third, check-only build of wasmtime by `cargo clippy`: clippy-driver
#   as cargo's workspace wrapper is what `cargo clippy` runs too. The nested wasm32 builds
#   (wasm-build, scripts/build-wasm.sh) drop the wrapper, as `cargo clippy` never saw them.
test_build_env() {
    export WSBOX_BIN_DIR=target/release   # where tests/python and tests/node find the binaries
    # Runners started by tests keep their store in memory (tests that need a directory pass
    # --data-dir): many run at once, and a directory is one runner's at a time.
    export WSBOX_DATA_DIR=memory
    export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
    export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
    if [ "${WSBOX_CLIPPY:-}" = 1 ]; then
        RUSTC_WORKSPACE_WRAPPER=$(rustup which clippy-driver)
        export RUSTC_WORKSPACE_WRAPPER
        export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
    fi
}

# Runs "$@" and prints how long it took as `== stage NAME: N s`.
stage() {
    local name=$1 start=$SECONDS
    shift
    "$@"
    echo "== stage $name: $((SECONDS - start)) s"
}
