#!/usr/bin/env bash
# Rooms benchmark (issue 22): what history and the store cost, with host-runner's
# examples/rooms_bench.rs (one thread, tokio-tungstenite). Each scenario against its own
# runner, in one client run; ratios are between phases of that run (the machine is shared).
#
#   scripts/bench-rooms.sh [--secs T] [--rounds R] [--only fanout|store|resume] [--out FILE]
#   env: SUBS ("1000,1"), SIZES ("16,1024"), WINDOW (4), CONNS (1000), CLIENTS (1000),
#        RESUME_SIZE (1024), SERVER_CORE (0), CLIENT_CORE (1), NO_BUILD=1,
#        CARGO_TARGET_DIR (target-bench: a release build without CI's debug assertions)
#
# 1. fanout (guests/broadcast): per subscriber count and size, history off (`/tK`) vs on
#    (`/tK?history=1000`), alternated for R rounds: server CPU µs per delivery and per
#    publish, W messages in flight; every delivery unwrapped and checked, offsets contiguous.
#    Targets: on/off <= 1.2 at 1,000 subscribers, <= 2.0 at 1.
# 2. store (guests/test-handler `/topics`): CONNS connections, one command in flight each:
#    an unknown one (the guest call alone: the baseline), kvset, then kvget: ops/s, p50/p99,
#    server µs/op. Targets: >= 20,000 sets/s, >= 100,000 gets/s, p99 <= 10 ms.
# 3. resume: `history T 1000 0`, `/flood` `pub T 1000 RESUME_SIZE`, then CLIENTS clients
#    `fromlast T 1000` at once: wall time to the last of the 1,000,000 deliveries (target
#    <= 10 s), runner RSS and `wsbox_history_bytes` after it.
# Runners listen on 127.0.0.1:0, keep their store in a fresh directory under $WORK (on disk),
# log at warn, run pinned to $SERVER_CORE (the client to $CLIENT_CORE), and are stopped on
# exit. No instance hibernates mid-phase (--hibernate-after 1h): hibernation is not measured.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=5 ROUNDS=2 ONLY="" OUT=""
while (($#)); do
    case $1 in
        --secs) SECS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
SUBS=${SUBS:-"1000,1"}
SIZES=${SIZES:-"16,1024"}
WINDOW=${WINDOW:-4}
CONNS=${CONNS:-1000}
CLIENTS=${CLIENTS:-1000}
RESUME_SIZE=${RESUME_SIZE:-1024}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-bench}
WORK=$(mktemp -d /tmp/bench-rooms.XXXXXX)
OUT=${OUT:-$WORK/results.jsonl}
RUNNER=$TARGET_DIR/release/wsbox-runner
CLIENT=$TARGET_DIR/release/examples/rooms_bench
HISTORY_MAX_BYTES=64MiB

die() { echo "bench-rooms: $*" >&2; exit 2; }

if [[ -z ${NO_BUILD:-} ]]; then
    CARGO_TARGET_DIR=$TARGET_DIR cargo build --quiet --release -p wsbox-runner --bin wsbox-runner --example rooms_bench
fi
BROADCAST=$(scripts/build-guest.sh broadcast | tail -n 1)
HANDLER=$(scripts/build-guest.sh test-handler | tail -n 1)
for f in "$RUNNER" "$CLIENT" "$BROADCAST" "$HANDLER"; do
    [[ -e $f ]] || die "no $f (unset NO_BUILD)"
done

STARTED=()
stop() {
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
stop_all() {
    local pid
    for pid in "${STARTED[@]}"; do stop "$pid"; done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# start NAME HANDLER [FLAGS...]: a runner pinned to the server core, its store in
# $WORK/NAME-data, logging at $LOG (warn); waits for its address. Sets PID, ADDR and (with
# --metrics and the admin module's info lines) METRICS.
start() {
    local name=$1 handler=$2
    shift 2
    (ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
        exec taskset -c "$SERVER_CORE" "$RUNNER" --handler "$handler" --listen 127.0.0.1:0 \
            --data-dir "$WORK/$name-data" --client-message-rate 0 --client-byte-rate 0 \
            --max-connections-per-address 0 --hibernate-after 1h --log "${LOG:-warn}" "$@") \
        >"$WORK/$name.out" 2>"$WORK/$name.log" &
    PID=$!
    STARTED+=("$PID")
    ADDR="" METRICS=""
    for _ in $(seq 300); do
        ADDR=$(sed -n 's|^wsbox-runner listening on http://\(.*\)/$|\1|p' "$WORK/$name.out")
        [[ -n $ADDR ]] && break
        kill -0 "$PID" 2>/dev/null || die "$name exited; see $WORK/$name.log"
        sleep 0.1
    done
    [[ -n $ADDR ]] || die "$name did not listen within 30 s; see $WORK/$name.log"
    METRICS=$(sed -n 's|.*metrics at http://\([0-9.:]*\)/metrics.*|\1|p' "$WORK/$name.log" | head -n 1)
}

# client SCENARIO ARGS...: the bench client, pinned, bounded; its lines go to $OUT.
client() {
    timeout 900 taskset -c "$CLIENT_CORE" "$CLIENT" "$@" --addr "$ADDR" --pid "$PID" \
        --secs "$SECS" --rounds "$ROUNDS" 2>>"$WORK/client.log" | tee -a "$OUT" >&2 ||
        echo "{\"scenario\":\"$1\",\"failed\":true}" | tee -a "$OUT" >&2
}

echo "runner: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- host-runner guests || echo ' + uncommitted changes')," \
    "built $(date -ur "$RUNNER" +%FT%TZ); load before: $(uptime)" | tee "$WORK/uptime" >&2

if [[ -z $ONLY || $ONLY == fanout ]]; then
    start fanout "$BROADCAST"
    client fanout --subs "$SUBS" --sizes "$SIZES" --window "$WINDOW"
    stop "$PID"
fi
if [[ -z $ONLY || $ONLY == store ]]; then
    start store "$HANDLER"
    client store --conns "$CONNS"
    stop "$PID"
fi
if [[ -z $ONLY || $ONLY == resume ]]; then
    # 1,000 messages of RESUME_SIZE (+64 each) must fit in the topic's bytes.
    LOG=warn,wsbox_runner::admin=info start resume "$HANDLER" --history-topic-bytes 8MiB \
        --history-max-bytes "$HISTORY_MAX_BYTES" --metrics 127.0.0.1:0
    [[ -n $METRICS ]] || die "no metrics address in $WORK/resume.log"
    client resume --clients "$CLIENTS" --size "$RESUME_SIZE" --metrics "$METRICS"
    stop "$PID"
fi
echo "load after: $(uptime)" | tee -a "$WORK/uptime" >&2

python3 - "$OUT" "$HISTORY_MAX_BYTES" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = statistics.median
flag = lambda r: ("C" if r.get("client_cpu", 0) >= 0.95 else "") + ("N" if r.get("other_cpu", 0) > 0.3 else "")

fan = [r for r in rows if r.get("scenario") == "fanout" and not r.get("failed")]
if fan:
    w = fan[0]["window"]
    print(f"\n1. Fan-out, history off vs on ({fan[0]['kind']}, window {w}): server CPU per delivery "
          "and per publish; on/off per round (pairs of one round), then the median")
    fmt = "{:>5} {:>5} {:>4} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}  {:<14} {:>6} {:>6} {}"
    print(fmt.format("subs", "size", "hist", "dlv/s", "us/dlv", "us/pub", "p99 us", "srv cpu", "cli cpu",
                     "on/off rounds", "median", "target", "flags"))
    for case in dict.fromkeys((r["subs"], r["size"]) for r in fan):
        rs = [r for r in fan if (r["subs"], r["size"]) == case]
        key = "server_us_per_delivery" if case[0] > 1 else "server_us_per_publish"
        ratios = []
        for rnd in sorted({r["round"] for r in rs}):
            off = [r for r in rs if r["round"] == rnd and r["history"] == 0]
            on = [r for r in rs if r["round"] == rnd and r["history"] > 0]
            if off and on:
                ratios.append(on[0][key] / off[0][key])
        target = 1.2 if case[0] >= 1000 else 2.0
        for hist in (0, max(r["history"] for r in rs)):
            hs = [r for r in rs if r["history"] == hist]
            m = lambda k: med([r[k] for r in hs])
            bad = sum(r["gaps"] + r["bad"] + r["errors"] + r["unfinished"] for r in hs)
            last = hist > 0
            print(fmt.format(case[0], case[1], hist or "off", f"{m('deliveries_per_s'):.0f}",
                             f"{m('server_us_per_delivery'):.3f}", f"{m('server_us_per_publish'):.2f}",
                             f"{m('p99_us'):.0f}", f"{m('server_cpu'):.2f}", f"{m('client_cpu'):.2f}",
                             " ".join(f"{x:.2f}" for x in ratios) if last else "",
                             f"{med(ratios):.2f}" if last and ratios else "",
                             f"<={target}" if last else "",
                             "".join(sorted(set("".join(flag(r) for r in hs)))) + ("E" if bad else "")))
    print("(ratio of us/dlv at >1 subscriber, of us/pub at 1; E: a gap, a wrong byte or a stall)")

st = [r for r in rows if r.get("scenario") == "store" and not r.get("failed")]
if st:
    print(f"\n2. Store from {st[0]['conns']} connections ({st[0]['namespaces']} namespaces), one command in flight each")
    fmt = "{:<4} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}  {:<22} {}"
    print(fmt.format("op", "ops/s", "p50 us", "p99 us", "us/op", "srv cpu", "cli cpu", "oth cpu", "target", "flags"))
    call = {r["round"]: r for r in st if r["op"] == "call"}
    for op, target in (("call", "(baseline)"), ("set", "20000/s, p99 <= 10 ms"), ("get", "100000/s, p99 <= 10 ms")):
        for r in [r for r in st if r["op"] == op]:
            base = call.get(r["round"])
            x = f" x{r['server_us_per_op'] / base['server_us_per_op']:.2f} call" if base and op != "call" else ""
            print(fmt.format(op, f"{r['ops_per_s']:.0f}", r["p50_us"], r["p99_us"], f"{r['server_us_per_op']:.1f}",
                             f"{r['server_cpu']:.2f}", f"{r['client_cpu']:.2f}", f"{r['other_cpu']:.2f}", target,
                             flag(r) + ("E" if r["wrong"] + r["errors"] else "") + x))
    print("(call: an unknown command, the guest call without the store; x call: us/op against it, same round)")

rs = [r for r in rows if r.get("scenario") == "resume" and not r.get("failed")]
if rs:
    print(f"\n3. Resume: {rs[0]['clients']} clients x {rs[0]['messages']} kept messages of {rs[0]['size']} B")
    fmt = "{:>5} {:>9} {:>8} {:>10} {:>8} {:>8} {:>8} {:>9} {:>10} {:>14}  {}"
    print(fmt.format("round", "delivered", "wall s", "dlv/s", "us/dlv", "srv cpu", "cli cpu", "complete",
                     "RSS MiB", "history bytes", "flags"))
    for r in rs:
        print(fmt.format(r["round"], r["delivered"], f"{r['wall_s']:.2f}", f"{r['deliveries_per_s']:.0f}",
                         f"{r['server_us_per_delivery']:.3f}", f"{r['server_cpu']:.2f}", f"{r['client_cpu']:.2f}",
                         r["complete_clients"], f"{r['rss_kib'] / 1024:.0f}", r["history_bytes"],
                         flag(r) + ("E" if r["wrong"] else "")))
    print(f"target: wall <= 10 s; history bytes against --history-max-bytes {sys.argv[2]}")
for r in rows:
    if r.get("failed"):
        print("FAILED:", json.dumps(r))
print("flags: C client saturated (>= 0.95 core), N other load > 0.3 core")
EOF
echo "results: $OUT (logs in $WORK)" >&2
