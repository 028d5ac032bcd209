#!/usr/bin/env bash
# Fan-out across a cluster: what NATS costs a broadcast. With the broadcast guest and
# `wsload fanout` (../shared/bench: its --url takes a comma-separated list and --pid several
# PIDs), case by case, back to back:
#   a  one runner, no --cluster                 N subscribers + the publisher on it
#   b  one runner with --cluster                the same, all local (the cluster's cost alone)
#   c  two runners with --cluster, one name     N/2 subscribers on each, the publisher on the first
# and prints deliveries/s, p50/p99 and the ratios b/a, c/a per case.
#
#   scripts/bench-cluster.sh [--secs T] [--out FILE]
#   env: SUBS ("1000 5000"), SIZES ("16 1024"), WINDOWS ("16 1"),
#        WSLOAD (/tmp/wsbench/target/release/wsload), SERVER_CORE (0), CLIENT_CORE (1), NO_BUILD=1
#
# Everything listens on 127.0.0.1 (free ports), runs pinned as compare.sh pins it: runners AND
# nats-server on $SERVER_CORE, wsload on $CLIENT_CORE; all of it is stopped on exit. A case
# that hangs is cut off after 3 minutes. `server_cpu`/`us/dlv` count every server process of
# the configuration: the runner(s) and, for b and c, nats-server.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=10 OUT=""
while (($#)); do
    case $1 in
        --secs) SECS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
SUBS=${SUBS:-"1000 5000"}
SIZES=${SIZES:-"16 1024"}
WINDOWS=${WINDOWS:-"16 1"}
WSLOAD=${WSLOAD:-/tmp/wsbench/target/release/wsload}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
WORK=$(mktemp -d /tmp/bench-cluster.XXXXXX)
OUT=${OUT:-$WORK/results.jsonl}
RUNNER=target/release/wsbox-runner
# Several runners at once: each keeps its store in memory (a directory is one runner's).
export WSBOX_DATA_DIR=memory
WASM=target/wasm/wasm32-wasip2/guest/guest_broadcast.wasm

die() { echo "bench-cluster: $*" >&2; exit 2; }

[[ -x $WSLOAD ]] || die "no $WSLOAD: copy ../shared/bench to /tmp/wsbench, build it (cargo build --release) or set WSLOAD"
[[ -x $NATS_SERVER ]] || die "no nats-server (scripts/setup.sh installs Debian's)"
if [[ -z ${NO_BUILD:-} ]]; then
    cargo build --quiet --package guest-broadcast --target wasm32-wasip2 --profile guest --target-dir target/wasm
    cargo build --quiet --release --package wsbox-runner
fi
[[ -f $WASM && -x $RUNNER ]] || die "no $RUNNER or $WASM (unset NO_BUILD)"

# Ports the kernel hands out for :0, all picked while held so that none repeats.
mapfile -t PORTS < <(python3 -c '
import socket
held = [socket.socket() for _ in range(6)]
for s in held:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in held))')

STARTED=()
# Runners before nats-server (started first), so that none logs a lost cluster link.
stop_all() {
    local pid i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        pid=${STARTED[$i]}
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# start NAME PORT COMMAND...: runs it pinned to the server core, waits until PORT accepts; sets PID.
start() {
    local name=$1 port=$2
    shift 2
    (ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec taskset -c "$SERVER_CORE" "$@") \
        >>"$WORK/$name.log" 2>&1 &
    PID=$!
    STARTED+=("$PID")
    for _ in $(seq 150); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$PID" 2>/dev/null || die "$name exited; see $WORK/$name.log"
        sleep 0.1
    done
    die "$name did not listen on port $port within 15 s; see $WORK/$name.log"
}

NATS=nats://127.0.0.1:${PORTS[0]}
start nats "${PORTS[0]}" "$NATS_SERVER" -a 127.0.0.1 -p "${PORTS[0]}"
nats_pid=$PID
runner() { # NAME PORT [FLAGS...]
    local name=$1 port=$2
    shift 2
    start "$name" "$port" "$RUNNER" --handler "$WASM" --listen "127.0.0.1:$port" --log warn --client-message-rate 0 --client-byte-rate 0 "$@"
}
runner a "${PORTS[1]}"
a_pid=$PID
runner b "${PORTS[2]}" --cluster "$NATS" --cluster-name bench-b --metrics "127.0.0.1:${PORTS[5]}"
b_pid=$PID
runner c1 "${PORTS[3]}" --cluster "$NATS" --cluster-name bench-c
c1_pid=$PID
runner c2 "${PORTS[4]}" --cluster "$NATS" --cluster-name bench-c
c2_pid=$PID

url() { echo "ws://127.0.0.1:$1/room"; }
declare -A URLS=([a]=$(url "${PORTS[1]}") [b]=$(url "${PORTS[2]}")
    [c]="$(url "${PORTS[3]}"),$(url "${PORTS[4]}")")
declare -A PIDS=([a]=$a_pid [b]=$b_pid,$nats_pid [c]=$c1_pid,$c2_pid,$nats_pid)

echo "runner: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- host-runner wit || echo ' + uncommitted changes')," \
    "built $(date -ur "$RUNNER" +%FT%TZ)" >&2
echo "load before: $(uptime)" | tee "$WORK/uptime" >&2
for n in $SUBS; do for size in $SIZES; do for window in $WINDOWS; do
    for config in a b c; do
        for pid in ${PIDS[$config]//,/ }; do kill -0 "$pid" 2>/dev/null || die "a server of $config is gone; see $WORK"; done
        line=$(timeout 180 taskset -c "$CLIENT_CORE" "$WSLOAD" fanout --url "${URLS[$config]}" \
            --pid "${PIDS[$config]}" --subs "$n" --size "$size" --window "$window" --secs "$SECS" \
            2>>"$WORK/wsload.log") || line="{\"failed\":true,\"subs\":$n,\"size\":$size,\"window\":$window}"
        echo "{\"config\":\"$config\",${line#\{}" | tee -a "$OUT" >&2
    done
done; done; done
echo "load after: $(uptime)" | tee -a "$WORK/uptime" >&2
echo "runner b's cluster counters (publishes it sent over NATS with all subscribers local):" >&2
curl -s "http://127.0.0.1:${PORTS[5]}/metrics" | grep '^wsbox_cluster' >&2 || true

python3 - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = {}
fmt = "{:<3} {:>5} {:>5} {:>3} {:>10} {:>8} {:>9} {:>6} {:>6} {:>6} {:>6} {:>5} {:>6} {:>6}"
print(fmt.format("cfg", "subs", "size", "win", "dlv/s", "p50 us", "p99 us", "miss", "err",
                 "srvcpu", "us/dlv", "cli", "dlv/a", "p99/a"))
for r in rows:
    key = (r["subs"], r["size"], r["window"])
    if r.get("failed"):
        print(fmt.format(r["config"], *key, "FAILED", *[""] * 9))
        continue
    if r["config"] == "a":
        base[key] = r
    a = base.get(key)
    ratio = lambda f: f"{r[f] / a[f]:.2f}" if a and a[f] else "-"
    print(fmt.format(r["config"], *key, f"{r['deliveries_per_s']:.0f}", f"{r['p50_us']:.0f}",
                     f"{r['p99_us']:.0f}", r["missing"], r["errors"], str(r["server_cpu"]),
                     str(r["server_us_per_delivery"]), r["client_cpu"], ratio("deliveries_per_s"),
                     ratio("p99_us")))
EOF
echo "results: $OUT (logs in $WORK)" >&2
