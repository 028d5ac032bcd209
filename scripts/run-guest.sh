#!/usr/bin/env bash
# Builds the handler component guests/NAME and serves it with wsbox-runner; the other
# arguments go to the runner (`cargo run --release -p wsbox-runner -- --help` lists them).
#
#   scripts/run-guest.sh chat                       # then open http://127.0.0.1:8080/
#   scripts/run-guest.sh broadcast --listen 127.0.0.1:9001
#
# The component is built as wasm-build builds the embedded ones: wasm32-wasip2, the `guest`
# profile, target directory target/wasm (so the runner's own build does not wait on it).
set -euo pipefail
cd "$(dirname "$0")/.."

name=${1:-}
if [ -z "$name" ] || [ ! -f "guests/$name/Cargo.toml" ]; then
    echo "usage: $0 NAME [wsbox-runner flags...]" >&2
    echo "NAME is one of: $(cd guests && ls -d */ | tr -d / | tr '\n' ' ')" >&2
    exit 2
fi
shift
# The package's name is the first `name =` of its manifest (the [package] table comes
# first); cargo names the component after the library, the package's name with `_`.
package=$(sed -n 's/^name = "\(.*\)"$/\1/p' "guests/$name/Cargo.toml" | head -n 1)
target=wasm32-wasip2

# rust-toolchain.toml lists the target, but rustup installs it only with the toolchain.
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ]; then
    echo "run-guest: adding the $target target with rustup (once per toolchain)" >&2
    rustup target add "$target"
fi

cargo build --package "$package" --target "$target" --profile guest --target-dir target/wasm
wasm="target/wasm/$target/guest/${package//-/_}.wasm"
exec cargo run --release --package wsbox-runner -- --handler "$wasm" "$@"
