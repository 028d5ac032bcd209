#!/usr/bin/env bash
# permessage-deflate benchmark: msgs/s and bytes on the wire with and without compression, for
# text payloads of JSON records (wsload --kind json: deterministic, exactly SIZE bytes), and RSS
# per idle connection with compression negotiated. One run prints everything, as ratios.
#
#   scripts/bench-deflate.sh [--secs T] [--rounds R] [--idle N] [--out FILE]
#   env: CONNS ("1 100"), SIZES ("256 4096"), WINDOW (16), BENCH (/tmp/wsbench-deflate),
#        SERVER_CORE (0), CLIENT_CORE (1), NO_BUILD=1 (use the binaries as they are)
#
# Echo (servers all up at once, alternated case by case for R rounds, as ../shared/bench's
# compare.sh does; medians):
#   tung        echo-tungstenite, uncompressed: the baseline every msg/s ratio is to
#   runner-off  wsbox-runner --deflate off + the echo guest      (client offers nothing)
#   runner      wsbox-runner (compression on by default: shared)  (client: --deflate shared)
#   lib, lib-z  the library's examples/echo_server.rs (accepts deflate, level 1), client without/with the offer
#   node, node-z Node `ws` with perMessageDeflate (scripts/bench-deflate-echo.js: level 1 and
#               threshold 128 as the runner), client without/with the offer
# The client offers `permessage-deflate; client_no_context_takeover; server_no_context_takeover`,
# sends each message compressed on its own (zlib level 6, built once), inflates every echo and
# compares it whole. `wire B/msg` is the WebSocket bytes both ways per echo (frames as written
# to and read from the sockets, TCP/IP headers not counted); `B/plain` divides it by the same
# server's uncompressed row, `msg/plain` the msg/s likewise.
# Idle connections (a fresh server per measurement, configurations alternated for R rounds):
# N connections each echo one 256-byte JSON message (compressed where agreed), stay idle 2 s;
# `B/conn` is the server's RSS growth / N: runner --deflate off, runner (shared),
# runner --deflate takeover (client offers context takeover; the runner answers
# client_max_window_bits=11 and keeps its own context), node and node-z; then the runner's
# three again with --hibernate-after 1s, measured after 3 s (`/h`: instances dropped).
#
# Needs ../shared/bench (copied to $BENCH; its wsload has --deflate, --kind json and wire byte
# counters), Node and the `ws` package (npm install in the
# copy). Servers run on $SERVER_CORE, wsload on $CLIENT_CORE; all are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=2 ROUNDS=3 IDLE=2000 OUT=""
while (($#)); do
    case $1 in
        --secs) SECS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --idle) IDLE=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
CONNS=${CONNS:-"1 100"}
SIZES=${SIZES:-"256 4096"}
WINDOW=${WINDOW:-16}
BENCH=${BENCH:-/tmp/wsbench-deflate}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
WORK=$(mktemp -d /tmp/bench-deflate.XXXXXX)
OUT=${OUT:-$WORK/results.jsonl}
RUNNER=$PWD/target/release/wsbox-runner
EXAMPLE=$PWD/target/release/examples/echo_server
GUEST=$PWD/target/wasm/wasm32-wasip2/guest/guest_echo.wasm
WSLOAD=$BENCH/target/release/wsload

die() { echo "bench-deflate: $*" >&2; exit 2; }

# The bench copy: made once (the Node peer and its packages are added to it).
[[ -d $BENCH ]] || cp -r ../shared/bench "$BENCH"
cp scripts/bench-deflate-echo.js "$BENCH/node/echo-deflate.js"
if [[ -z ${NO_BUILD:-} ]]; then
    (cd "$BENCH" && cargo build --quiet --release -p wsload -p echo-tungstenite)
    [[ -d $BENCH/node/node_modules/ws ]] || (cd "$BENCH/node" && npm install --silent --no-audit --no-fund)
    cargo build --quiet --package guest-echo --target wasm32-wasip2 --profile guest --target-dir target/wasm
    cargo build --quiet --release -p wsbox-runner
    cargo build --quiet --release -p wsbox --example echo_server
fi
for f in "$WSLOAD" "$BENCH/target/release/echo-tungstenite" "$RUNNER" "$EXAMPLE" "$GUEST" \
    "$BENCH/node/node_modules/ws/package.json"; do
    [[ -e $f ]] || die "no $f (unset NO_BUILD)"
done

# Ports the kernel hands out for :0, all picked while held so that none repeats.
mapfile -t PORTS < <(python3 -c '
import socket
held = [socket.socket() for _ in range(8)]
for s in held:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in held))')

STARTED=()
stop() {
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
stop_all() {
    local pid
    for pid in "${STARTED[@]}"; do stop "$pid"; done
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
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then sleep 0.2; return 0; fi
        kill -0 "$PID" 2>/dev/null || die "$name exited; see $WORK/$name.log"
        sleep 0.1
    done
    die "$name did not listen on port $port within 15 s; see $WORK/$name.log"
}

# server KIND PORT: the command line of a server kind.
server() {
    local port=$2
    case $1 in
        tung) echo "$BENCH/target/release/echo-tungstenite --port $port" ;;
        runner) echo "$RUNNER --handler $GUEST --listen 127.0.0.1:$port --log warn --client-message-rate 0 --client-byte-rate 0" ;;
        runner-off) echo "$RUNNER --handler $GUEST --listen 127.0.0.1:$port --log warn --client-message-rate 0 --client-byte-rate 0 --deflate off" ;;
        runner-tk) echo "$RUNNER --handler $GUEST --listen 127.0.0.1:$port --log warn --deflate takeover" ;;
        lib) echo "$EXAMPLE --listen 127.0.0.1:$port" ;;
        node) echo "node $BENCH/node/echo-deflate.js --port $port" ;;
    esac
}

# wsload_line CONFIG MODE ARGS...: one wsload run, pinned, its JSON line tagged with CONFIG.
wsload_line() {
    local config=$1 line
    shift
    line=$(timeout 120 taskset -c "$CLIENT_CORE" "$WSLOAD" "$@" 2>>"$WORK/wsload.log") ||
        line="{\"failed\":true,\"mode\":\"$1\"}"
    echo "{\"config\":\"$config\",${line#\{}" | tee -a "$OUT" >&2
}

echo "runner: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- host-runner src || echo ' + uncommitted changes')," \
    "built $(date -ur "$RUNNER" +%FT%TZ); load before: $(uptime)" | tee "$WORK/uptime" >&2

# Echo: config = server kind + what the client offers.
declare -A SERVER=([tung]=tung [runner-off]=runner-off [runner]=runner [lib]=lib [lib-z]=lib [node]=node [node-z]=node)
declare -A OFFER=([tung]=off [runner-off]=off [runner]=shared [lib]=off [lib-z]=shared [node]=off [node-z]=shared)
CONFIGS=(tung runner-off runner lib lib-z node node-z)
declare -A PORT_OF PID_OF
i=0
for kind in tung runner-off runner lib node; do
    PORT_OF[$kind]=${PORTS[$i]}
    # shellcheck disable=SC2046 # the command line is words
    start "$kind" "${PORTS[$i]}" $(server "$kind" "${PORTS[$i]}")
    PID_OF[$kind]=$PID
    i=$((i + 1))
done
for n in $CONNS; do for size in $SIZES; do
    for ((r = 1; r <= ROUNDS; r++)); do
        for config in "${CONFIGS[@]}"; do
            kind=${SERVER[$config]}
            kill -0 "${PID_OF[$kind]}" 2>/dev/null || die "$kind is gone; see $WORK/$kind.log"
            wsload_line "$config" echo --url "ws://127.0.0.1:${PORT_OF[$kind]}/" --pid "${PID_OF[$kind]}" \
                --conns "$n" --size "$size" --window "$WINDOW" --kind json --secs "$SECS" \
                --deflate "${OFFER[$config]}"
        done
    done
done; done
stop_all
STARTED=()

# Idle connections: a fresh server for each measurement.
# CONFIG SERVER OFFER HOLD-SECS [SERVER FLAGS]: live idle (the runner hibernates after 10 s),
# then hibernated (after 1 s, measured at 3 s).
IDLE_CONFIGS=(
    "runner-off runner-off off 2" "runner runner shared 2" "runner-tk runner-tk takeover 2"
    "node node off 2" "node-z node shared 2"
    "runner-off/h runner-off off 3 --hibernate-after 1s" "runner/h runner shared 3 --hibernate-after 1s"
    "runner-tk/h runner-tk takeover 3 --hibernate-after 1s"
)
if ((IDLE > 0)); then
    for ((r = 1; r <= ROUNDS; r++)); do
        for c in "${IDLE_CONFIGS[@]}"; do
            read -r config kind offer hold flags <<<"$c"
            port=${PORTS[7]}
            # shellcheck disable=SC2046,SC2086 # the command line is words
            start "idle-${config%/h}" "$port" $(server "$kind" "$port") $flags
            wsload_line "$config" conns --url "ws://127.0.0.1:$port/" --pid "$PID" --count "$IDLE" \
                --size 256 --hold-secs "$hold" --deflate "$offer"
            stop "$PID"
            STARTED=()
        done
    done
fi
echo "load after: $(uptime)" | tee -a "$WORK/uptime" >&2

python3 - "$OUT" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = lambda xs: statistics.median(xs) if xs else None
PLAIN = {"runner": "runner-off", "lib-z": "lib", "node-z": "node"}

echo = [r for r in rows if r.get("mode") == "echo" and not r.get("failed")]
failed = [r for r in rows if r.get("failed")]
cases = sorted({(r["conns"], r["size"]) for r in echo})
configs = list(dict.fromkeys(r["config"] for r in echo))
def agg(config, case):
    rs = [r for r in echo if r["config"] == config and (r["conns"], r["size"]) == case]
    if not rs:
        return None
    f = lambda k: med([r[k] for r in rs if r.get(k) is not None])
    return {"msgs": f("msgs_per_s"), "p99": f("p99_us"), "us": f("server_us_per_msg"),
            "cli": f("client_cpu"), "other": f("other_cpu"),
            "wire": med([r["wire_out_per_msg"] + r["wire_in_per_msg"] for r in rs]),
            "bad": sum(r["mismatches"] + r["errors"] for r in rs), "n": len(rs),
            "ext": rs[0].get("extensions")}
ratio = lambda a, b: f"{a / b:.2f}" if a is not None and b else "-"
fmt = "{:<10} {:>5} {:>5} {:>8} {:>6} {:>7} {:>8} {:>6} {:>9} {:>8} {:>7} {:>4}"
print(f"\nEcho, JSON text, window {echo[0]['window'] if echo else '-'}: medians of the rounds")
print(fmt.format("config", "conns", "size", "msg/s", "x tung", "us/msg", "p99 us", "wire B",
                 "B/plain", "msg/plain", "B/size", "flag"))
for case in cases:
    base = agg("tung", case)
    for c in configs:
        a = agg(c, case)
        if a is None:
            continue
        p = agg(PLAIN[c], case) if c in PLAIN else None
        flag = ("E" if a["bad"] else "") + ("C" if a["cli"] and a["cli"] >= 0.95 else "") + \
               ("N" if a["other"] and a["other"] > 0.3 else "")
        print(fmt.format(c, *case, f"{a['msgs']:.0f}", ratio(a["msgs"], base and base["msgs"]),
                         f"{a['us']:.1f}" if a["us"] else "-", f"{a['p99']:.0f}", f"{a['wire']:.0f}",
                         ratio(a["wire"], p and p["wire"]) if p else "",
                         ratio(a["msgs"], p and p["msgs"]) if p else "",
                         f"{a['wire'] / (2 * case[1]):.2f}", flag))
    r, n = agg("runner", case), agg("node-z", case)
    if r and n:
        print(f"{'':<10} runner/node-z compressed: msg/s x{r['msgs'] / n['msgs']:.2f}, "
              f"server us/msg x{(r['us'] or 0) / (n['us'] or 1):.2f}, wire bytes x{r['wire'] / n['wire']:.2f}")
agreed = {c: agg(c, cases[0])["ext"] for c in configs if cases and agg(c, cases[0])}
others = [r["other_cpu"] for r in echo if r.get("other_cpu") is not None]
if others:
    print(f"other load on the machine during echo runs: median {med(others):.2f} cores, "
          f"{sum(o > 0.3 for o in others)} of {len(others)} runs over 0.3 (flag N)")
print("agreed: " + "; ".join(f"{c}: {e}" for c, e in agreed.items() if e))

idle = [r for r in rows if r.get("mode") == "conns" and not r.get("failed")]
if idle:
    n = idle[0]["count"]
    print(f"\nIdle connections ({n} each, fresh server, a 256-byte JSON echo first): medians")
    # B/conn: RSS growth / N. +B vs off: (RSS after - the uncompressed row's RSS after) / N, which
    # holds when the start-up RSS is not a clean baseline (hibernation can end below it, so the
    # /h rows get no ratio).
    fmt = "{:<12} {:>9} {:>10} {:>6} {:>12} {:>6} {:>5}  {}"
    print(fmt.format("config", "B/conn", "+B vs off", "x off", "handshakes/s", "errors", "runs", "agreed"))
    by = {}
    for r in idle:
        by.setdefault(r["config"], []).append(r)
    base = {"runner": "runner-off", "runner-tk": "runner-off", "node-z": "node",
            "runner/h": "runner-off/h", "runner-tk/h": "runner-off/h"}
    grow = {c: med([r["bytes_per_conn"] for r in rs if r["bytes_per_conn"] is not None]) for c, rs in by.items()}
    after = {c: med([r["rss_after_kb"] for r in rs if r["rss_after_kb"] is not None]) for c, rs in by.items()}
    for c, rs in by.items():
        b = base.get(c)
        extra = f"{(after[c] - after[b]) * 1024 / n:+.0f}" if b in after and after[c] and after[b] else ""
        print(fmt.format(c, f"{grow[c]:.0f}" if grow[c] is not None else "-", extra,
                         ratio(grow[c], grow.get(b)) if b and not c.endswith("/h") else "",
                         f"{med([r['handshakes_per_s'] for r in rs]):.0f}", sum(r["errors"] for r in rs),
                         len(rs), rs[0].get("extensions") or "none"))
for r in failed:
    print("FAILED:", json.dumps(r))
EOF
echo "results: $OUT (logs in $WORK)" >&2
