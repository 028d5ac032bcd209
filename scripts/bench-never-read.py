#!/usr/bin/env python3
"""What K subscribers that never read cost the runner (issue 19's target).

For each case: a fresh runner serving guests/test-handler on loopback; its RSS at rest (the
idle baseline); K raw clients with a 4 KiB receive buffer (so the kernel does not hide the
queue) subscribe on `/topics` and never read again; a publisher on `/flood` then publishes
N messages of SIZE bytes, either once to one topic all K share (`shared`: one `Bytes` for
all) or to one topic per subscriber (`distinct`: K payloads). Once every publish is answered
and the guests hibernated, the runner's RSS over what it held with the K subscribers
connected and idle (their own cost, per subscriber, in its own column) is printed beside
the bound the runner states: K × (--max-backpressure + 64 KiB); the last column counts
the idle subscribers in too.

    scripts/bench-never-read.sh            # builds, then runs the whole matrix
    scripts/bench-never-read.py --runner target/release/wsbox-runner \
        --handler "$(scripts/build-guest.sh test-handler | tail -n1)" --k 20 --size 0 --mode shared

Loopback only; every runner is stopped at the end of its case.
"""

import argparse
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

from benchlib import rss

MIB = 1 << 20
SLACK = 64 * 1024
BACKPRESSURE = MIB


def settled(pid):
    """The runner's RSS once guests hibernated (300 ms) and jemalloc gave freed pages back
    (1 s decay): the least of samples taken over 3 s after a second."""
    time.sleep(1)
    samples = []
    for _ in range(6):
        time.sleep(0.5)
        samples.append(rss(pid))
    return min(samples)


def frame(opcode, payload):
    """A masked client frame."""
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_frame(sock):
    """(opcode, payload) of the next unfragmented frame."""
    b0, b1 = read_exact(sock, 2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack(">H", read_exact(sock, 2))
    elif n == 127:
        (n,) = struct.unpack(">Q", read_exact(sock, 8))
    return b0 & 0x0F, read_exact(sock, n)


def connect(addr, path, tls, rcvbuf=None):
    sock = socket.socket()
    if rcvbuf:
        # Before connect, so that the window the client announces stays small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(120)
    sock.connect(addr)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname="localhost")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += read_exact(sock, 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"{path}: {head.splitlines()[0]!r}")
    return sock


def ask(sock, command):
    sock.sendall(frame(1, command.encode()))
    while True:
        opcode, payload = read_frame(sock)
        if opcode == 1:
            return payload.decode()


def certificates(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


def start_runner(args, tls, directory):
    command = [args.runner, "--listen", "127.0.0.1:0", "--handler", args.handler,
               "--max-connections-per-address", "0", "--hibernate-after", "300ms",
               "--guest-cpu", "300s", "--log", "warn"]
    if tls:
        cert, key = certificates(directory)
        command += ["--tls-cert", cert, "--tls-key", key]
    log = open(os.path.join(directory, "runner.log"), "w+")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        log.seek(0)
        found = re.search(r"listening on https?://([\d.]+):(\d+)/", log.read())
        if found:
            return process, (found[1], int(found[2]))
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    log.seek(0)
    sys.exit(f"the runner did not start:\n{log.read()}")


def messages_for(size):
    """Enough messages that every subscriber's bound is passed several times over."""
    return 4 if size >= MIB else 40_000


def run_case(args, k, size, tls, mode):
    with tempfile.TemporaryDirectory() as directory:
        runner, addr = start_runner(args, tls, directory)
        try:
            time.sleep(1)
            baseline = rss(runner.pid)
            subscribers = []
            for i in range(k):
                sock = connect(addr, "/topics", tls, rcvbuf=4096)
                topic = "room" if mode == "shared" else f"room-{i}"
                answer = ask(sock, f"sub {topic}")
                assert answer == "subscribed", answer
                subscribers.append(sock)
            connected = settled(runner.pid)  # the subscribers' guests hibernated
            publisher = connect(addr, "/flood", tls)
            n = messages_for(size)
            started = time.monotonic()
            topics = ["room"] if mode == "shared" else [f"room-{i}" for i in range(k)]
            for topic in topics:
                answer = ask(publisher, f"pub {topic} {n} {size}")
                assert answer.startswith("published"), answer
            took = time.monotonic() - started
            now = settled(runner.pid)
            grown = now - connected
            total = now - baseline
            bound = k * (BACKPRESSURE + SLACK)
            print(
                f"| {k:>5} | {size if size else 0:>7} | {'wss' if tls else 'ws':>3} | {mode:>8} "
                f"| {n * len(topics):>10,} | {took:6.1f} s | {(connected - baseline) / k / 1024:6.1f} KiB "
                f"| {grown / MIB:9.1f} MiB | {bound / MIB:8.1f} MiB | {grown / bound:5.2f} "
                f"| {grown / k / 1024:8.1f} KiB | {total / bound:5.2f} |",
                flush=True,
            )
            for sock in subscribers:
                sock.close()
            publisher.close()
            return grown <= bound
        finally:
            runner.terminate()
            try:
                runner.wait(timeout=30)
            except subprocess.TimeoutExpired:
                runner.kill()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", default="target/release/wsbox-runner")
    parser.add_argument("--handler", required=True, help="guests/test-handler's component")
    parser.add_argument("--k", type=int, action="append")
    parser.add_argument("--size", type=int, action="append", help="0: empty messages (2-byte frames)")
    parser.add_argument("--transport", choices=["ws", "wss"], action="append")
    parser.add_argument("--mode", choices=["shared", "distinct"], action="append")
    args = parser.parse_args()
    print("| K | size (B) | | payloads | messages | publishing | idle subscriber | growth | bound "
          "| growth/bound | per subscriber | (idle subscribers included)/bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    within = True
    for k in args.k or [20, 1000]:
        for size in args.size or [0, MIB]:
            for transport in args.transport or ["ws", "wss"]:
                for mode in args.mode or ["shared", "distinct"]:
                    within &= run_case(args, k, size, transport == "wss", mode)
    sys.exit(0 if within else 1)


if __name__ == "__main__":
    main()
