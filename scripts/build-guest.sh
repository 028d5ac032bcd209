#!/usr/bin/env bash
# Builds the handler component guests/NAME, whatever its language, and prints the
# component's path as its last line:
#
#   scripts/build-guest.sh chat        # Rust: guests/chat/Cargo.toml
#   scripts/build-guest.sh echo-js     # JavaScript or TypeScript: guests/echo-js/handler.(js|ts)
#   scripts/build-guest.sh echo-py     # Python: guests/echo-py/handler.py
#
# Told apart by what the folder holds. Rust guests are built as wasm-build builds the
# embedded ones (wasm32-wasip2, the `guest` profile, target directory target/wasm);
# JavaScript and TypeScript ones with sdk/js (esbuild, then componentize-js, both pinned in
# sdk/js/package-lock.json and installed with `npm ci` on first use) and Python ones with
# sdk/python (componentize-py, pinned in tests/python/requirements.txt, in .venv) into
# target/guests/NAME.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:-}
dir=guests/$name
usage() {
    echo "usage: $0 NAME" >&2
    echo "NAME is one of: $(cd guests && ls -d */ | tr -d / | tr '\n' ' ')" >&2
    exit 2
}
[ -n "$name" ] && [ -d "$dir" ] || usage
source scripts/setup.sh

if [ -f "$dir/Cargo.toml" ]; then
    # The package's name is the first `name =` of its manifest (the [package] table comes
    # first); cargo names the component after the library, the package's name with `_`.
    package=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$dir/Cargo.toml" | head -n 1)
    ensure_wasm_target
    # Flags meant for native builds (test.sh's clippy) must not reach this one.
    env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS cargo build --quiet --package "$package" \
        --target wasm32-wasip2 --profile guest --target-dir target/wasm
    realpath "target/wasm/wasm32-wasip2/guest/${package//-/_}.wasm"
elif [ -f "$dir/handler.js" ] || [ -f "$dir/handler.ts" ]; then
    source=$dir/handler.js
    [ -f "$source" ] || source=$dir/handler.ts
    ensure_node_modules sdk/js
    mkdir -p target/guests
    node sdk/js/build.mjs "$source" -o "target/guests/$name.wasm"
elif [ -f "$dir/handler.py" ]; then
    ensure_venv
    mkdir -p target/guests
    # sdk/python/wsbox_app.py is the component's entry; it imports the guest's handler.py.
    # `guests` is on the path too, for files a handler reads while it is built (its module's
    # top level runs then; the component has no filesystem): chat-py's page.
    # Built aside and renamed into place: a runner (or a second build) never reads half.
    partial="target/guests/$name.wasm.$$.partial"
    .venv/bin/componentize-py -d wit -w app componentize wsbox_app -p sdk/python -p "$dir" \
        -p guests -o "$partial" >&2
    mv -f "$partial" "target/guests/$name.wasm"
    realpath "target/guests/$name.wasm"
else
    echo "build-guest: $dir holds no Cargo.toml, handler.js, handler.ts or handler.py" >&2
    exit 2
fi
