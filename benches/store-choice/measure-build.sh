#!/usr/bin/env bash
# Clean release build time and dependency count of each engine alone (tempfile and the
# harness itself excluded from the count). Usage: bash measure-build.sh
set -euo pipefail
cd "$(dirname "$0")"
for engine in redb sqlite; do
    target=$(mktemp -d)
    cargo fetch -q
    start=$(date +%s.%N)
    CARGO_TARGET_DIR=$target nice -n 10 cargo build -q --release --no-default-features --features "$engine"
    end=$(date +%s.%N)
    deps=$(cargo tree -q --no-default-features --features "$engine" -e normal,build --prefix none \
        | sed 's/ (\*)//' | sort -u | grep -v -e '^store-choice' | wc -l)
    deps_base=$(cargo tree -q --no-default-features -e normal,build --prefix none \
        | sed 's/ (\*)//' | sort -u | grep -v -e '^store-choice' | wc -l)
    printf '%-7s clean release build %5.1f s (harness and tempfile included), %d crates added\n' \
        "$engine" "$(echo "$end - $start" | bc)" "$((deps - deps_base))"
    cargo tree -q --no-default-features --features "$engine" -e normal,build --prefix none \
        | sed 's/ (\*)//' | sort -u | grep -v -e '^store-choice' > "/tmp/store-choice-$engine-deps.txt"
    rm -rf "$target"
done
