#!/usr/bin/env python3
"""Wake latency: the first echo after hibernation against an echo on a live instance.

Start the runner with the echo handler and a short --hibernate-after, then:

    .venv/bin/python scripts/bench-wake.py ws://127.0.0.1:PORT/ --conns 200 --idle 1.5

Each connection echoes once (its instance is then live) and echoes again at once: that
second echo is a *live* sample. After --idle seconds (longer than --hibernate-after) every
connection echoes once more, one after the other: each is a *wake* sample. Prints p50/p99
of both and their ratio. Samples are taken one at a time, so none waits behind another.
"""

import argparse
import asyncio
import statistics
import time

import websockets

from benchlib import quantile


async def echo(ws, payload):
    start = time.perf_counter()
    await ws.send(payload)
    answer = await ws.recv()
    elapsed = time.perf_counter() - start
    if answer != payload:
        raise SystemExit(f"wrong echo: {answer!r}")
    return elapsed * 1e6


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--conns", type=int, default=200)
    parser.add_argument("--idle", type=float, default=1.5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sockets = [await websockets.connect(args.url, compression=None) for _ in range(args.conns)]
    live, woken = [], []
    for _ in range(args.rounds):
        for ws in sockets:
            await echo(ws, "warm")
            live.append(await echo(ws, "live"))
        await asyncio.sleep(args.idle)
        for ws in sockets:
            woken.append(await echo(ws, "wake"))
    for ws in sockets:
        await ws.close()
    for name, samples in (("live", live), ("wake", woken)):
        print(
            f"{name}: n={len(samples)} p50={quantile(samples, 0.5):.0f}us "
            f"p99={quantile(samples, 0.99):.0f}us mean={statistics.mean(samples):.0f}us"
        )
    print(
        f"wake/live: p50 {quantile(woken, 0.5) / quantile(live, 0.5):.2f}x, "
        f"p99 {quantile(woken, 0.99) / quantile(live, 0.99):.2f}x"
    )


asyncio.run(main())
