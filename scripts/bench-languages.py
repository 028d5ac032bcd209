#!/usr/bin/env python3
"""The same echo handler in Rust, JavaScript and Python under wsbox-runner (issue 21's
"measure and report"): one run, the three side by side.

For each of guests/echo, guests/echo-js and guests/echo-py:
- the component's size;
- the runner's first start with an empty compile cache, then a start with it warm (until the
  `listening` line), and its RSS then with no connection open;
- 100 connections that each echo once: RSS per live instance; then, once they hibernated
  (`--hibernate-after 1s`), RSS per hibernated connection;
- the first echo after hibernation (a wake) and the next one (live), one connection at a time:
  p50 and p99;
- `wsload handshakes --conns 4` and `wsload echo --conns 100 --size 16 --window 1` (from
  ../shared/bench): handshakes/s and echoes/s, and the runner's CPU per handshake and per echo.

    scripts/bench-languages.sh            # builds the guests, the runner and wsload first

Loopback only; each runner is stopped after its measurements.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import websockets

from benchlib import cpu_seconds, quantile, rss

CONNS = 100


class Runner:
    """wsbox-runner serving `handler` on 127.0.0.1, until `stop`."""

    def __init__(self, binary, handler, cache, extra=()):
        self.log = tempfile.TemporaryFile("w+")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--handler", handler, "--cache-dir", cache,
             "--log", "warn", "--client-message-rate", "0", "--client-byte-rate", "0", *extra],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        while True:
            self.log.seek(0)
            found = re.search(r"listening on http://([\d.]+:\d+)/", self.log.read())
            if found:
                break
            if self.process.poll() is not None or time.monotonic() - started > 300:
                self.log.seek(0)
                sys.exit(f"the runner did not start:\n{self.log.read()}")
            time.sleep(0.005)
        self.start_secs = time.monotonic() - started
        self.addr = found[1]
        self.pid = self.process.pid

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def instances(runner):
    """RSS per live instance and per hibernated connection; wake and live echo latency."""
    url = f"ws://{runner.addr}/"
    idle = rss(runner.pid)
    clients = [await websockets.connect(url, compression=None, max_size=None) for _ in range(CONNS)]
    for i, ws in enumerate(clients):
        await ws.send(f"hello {i}")
        await ws.recv()
    live = (rss(runner.pid) - idle) / CONNS
    await asyncio.sleep(3.5)  # --hibernate-after 1s, and jemalloc's 1 s decay
    hibernated = (rss(runner.pid) - idle) / CONNS
    wakes, echoes = [], []
    for ws in clients:
        for samples in (wakes, echoes):
            started = time.perf_counter()
            await ws.send("ping")
            await ws.recv()
            samples.append((time.perf_counter() - started) * 1e3)
    for ws in clients:
        await ws.close()
    return idle, live, hibernated, wakes, echoes


def wsload(wsload_bin, runner, mode, *args):
    before = cpu_seconds(runner.pid)
    out = subprocess.run(
        [wsload_bin, mode, "--url", f"ws://{runner.addr}/", *args],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    used = cpu_seconds(runner.pid) - before
    result = json.loads(out.strip().splitlines()[-1])
    return result, used


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", default="target/release/wsbox-runner")
    parser.add_argument("--wsload", required=True)
    parser.add_argument("--secs", type=float, default=3.0)
    parser.add_argument("handlers", nargs="+", help="NAME=PATH of each component")
    args = parser.parse_args()
    rows = []
    for named in args.handlers:
        name, path = named.split("=", 1)
        cache = tempfile.mkdtemp(prefix="wsbox-bench-cache-")
        try:
            cold = Runner(args.runner, path, cache)
            cold.stop()
            warm = Runner(args.runner, path, cache, ["--hibernate-after", "1s"])
            try:
                idle, live, hibernated, wakes, echoes = asyncio.run(instances(warm))
            finally:
                warm.stop()
            served = Runner(args.runner, path, cache)
            try:
                shakes, shake_cpu = wsload(args.wsload, served, "handshakes", "--conns", "4",
                                           "--secs", str(args.secs))
                echo, echo_cpu = wsload(args.wsload, served, "echo", "--conns", str(CONNS),
                                        "--size", "16", "--window", "1", "--secs", str(args.secs))
            finally:
                served.stop()
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        shake_count = shakes["handshakes_per_s"] * args.secs
        echo_count = echo["msgs_per_s"] * args.secs
        rows.append((
            name, os.path.getsize(path), cold.start_secs, warm.start_secs, idle, live, hibernated,
            quantile(wakes, 0.5), quantile(wakes, 0.99), quantile(echoes, 0.5),
            quantile(echoes, 0.99), shakes, shake_cpu, shake_count, echo, echo_cpu, echo_count,
        ))
        print(f"{name}: wsload handshakes {json.dumps(shakes)}; echo {json.dumps(echo)}",
              file=sys.stderr, flush=True)
    print("| handler | component | first start (cold / cached) | RSS, no connection | per live "
          "instance | per hibernated conn. | wake p50 / p99 | live echo p50 / p99 | handshakes/s "
          "| µs CPU / handshake | echoes/s | µs CPU / echo |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (name, size, cold, warm, idle, live, hib, w50, w99, e50, e99, shakes, shake_cpu,
         shake_count, echo, echo_cpu, echo_count) in rows:
        rate = shake_count / args.secs
        echo_rate = echo_count / args.secs
        print(
            f"| {name} | {size / 1e6:.1f} MB | {cold:.2f} s / {warm * 1e3:.0f} ms "
            f"| {idle / 2**20:.0f} MiB | {live / 1024:.0f} KiB | {hib / 1024:.1f} KiB "
            f"| {w50:.2f} / {w99:.2f} ms | {e50:.2f} / {e99:.2f} ms | {rate:,.0f} "
            f"| {shake_cpu / max(shake_count, 1) * 1e6:.0f} | {echo_rate:,.0f} "
            f"| {echo_cpu / max(echo_count, 1) * 1e6:.1f} |"
        )


if __name__ == "__main__":
    main()
