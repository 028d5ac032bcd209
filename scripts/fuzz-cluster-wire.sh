#!/usr/bin/env bash
# Fuzzes the cluster's wire format (host-runner/wire, the crate wsbox-cluster-wire): every
# parser of what runners read from NATS, one target each, one after the other, SECONDS each
# (default 60), on one core. See fuzz/README.md.
#
#   scripts/fuzz-cluster-wire.sh [SECONDS] [TARGET...]
#   targets: cluster_command cluster_counts cluster_message cluster_subjects (default: all)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); runs on the pinned stable
# toolchain with RUSTC_BOOTSTRAP=1, as fuzz/README.md explains. Corpora grow in
# fuzz/corpus/TARGET (from fuzz/seeds/TARGET), crashes in fuzz/artifacts/TARGET/, each run's
# log in fuzz/artifacts/TARGET.log (all git-ignored); one line per target sums it up.
# Exits non-zero if any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(cluster_command cluster_counts cluster_message cluster_subjects)
[[ $SECONDS_EACH =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2; }
command -v cargo-fuzz >/dev/null || { echo "no cargo-fuzz: cargo install cargo-fuzz --locked" >&2; exit 2; }

export RUSTC_BOOTSTRAP=1 CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
failed=0
for target in "${TARGETS[@]}"; do
    nice -n 19 cargo fuzz build "$target"
    mkdir -p "corpus/$target" artifacts
    log=artifacts/$target.log
    # -jobs=1: one worker process, whose output libFuzzer writes to fuzz-0.log.
    rm -f fuzz-0.log
    status=0
    nice -n 19 cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -jobs=1 -workers=1 -print_final_stats=1 \
        > "$log" 2>&1 || status=$?
    [[ -f fuzz-0.log ]] && cat fuzz-0.log >> "$log" && rm -f fuzz-0.log
    if ((status)) || grep -q 'ERROR: libFuzzer\|panicked at\|SUMMARY: AddressSanitizer' "$log"; then
        failed=1
        echo "$target: CRASH, see fuzz/$log and fuzz/artifacts/$target/" >&2
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || true)
    echo "$target: ${runs:-?} executions in ${SECONDS_EACH}s (${cov:-no coverage line})"
done
exit "$failed"
