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

# A Python venv with the pinned test peers (websockets, pytest, wasmtime).
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

# Debian's headless Chromium, for the browser test.
ensure_chromium() {
    if command -v chromium >/dev/null 2>&1; then
        return
    fi
    log "installing Debian's chromium"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

# Debian's nats-server, for the cluster tests (they start their own on a free port; the
# package's service is not used).
ensure_nats_server() {
    if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
        return
    fi
    log "installing Debian's nats-server"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
}
