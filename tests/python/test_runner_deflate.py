"""permessage-deflate (RFC 7692) between wsbox-runner and the `websockets` package (which
offers it by default), and raw sockets for what a well-behaved client never sends: the
default answer without context takeover, bytes on the wire with and without compression,
`--deflate takeover` over many messages, the threshold, a zip bomb, RSV1 on a control
frame, a publish to many compressed subscribers, on one runner and across a cluster (a
real nats-server, as host-runner/tests/cluster.rs), and a compressed echo over `wss`. The
runner serves guests/test-handler (`/none` echoes, `/topics` takes publish commands)."""

import asyncio
import base64
import contextlib
import json
import os
import pathlib
import shutil
import socket
import ssl
import struct
import subprocess
import time
import zlib

import pytest
from websockets.asyncio.client import connect as connect_async
from websockets.sync.client import connect

from announced import announced
from binaries import BIN_DIR

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNNER = BIN_DIR / "wsbox-runner"
HANDLER = ROOT / "target" / "wasm" / "wasm32-wasip2" / "guest" / "guest_test_handler.wasm"
TIMEOUT = 10
SHARED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
# The runner's message limit here; the zip bomb inflates far past it.
LIMIT = 1 << 20


@pytest.fixture(scope="module")
def test_handler(workspace_built):
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "guest-test-handler", "--target", "wasm32-wasip2",
         "--profile", "guest", "--target-dir", "target/wasm"],
        cwd=ROOT, check=True, timeout=1800,
    )
    return HANDLER


@contextlib.contextmanager
def serving(handler, *flags):
    """The runner serving `handler` with `flags` on 127.0.0.1:0; yields (host, port, pid)."""
    with announced(
        [RUNNER, "--listen", "127.0.0.1:0", "--handler", handler,
         "--max-message-size", str(LIMIT), "--max-frame-size", str(LIMIT), *flags],
        r"wsbox-runner listening on http://(127\.0\.0\.1):(\d+)/\n",
        stderr=subprocess.DEVNULL,
    ) as (process, match):
        yield match[1], int(match[2]), process.pid


@pytest.fixture(scope="module")
def runner(test_handler):
    with serving(test_handler) as address:
        yield address


@pytest.fixture(scope="module")
def takeover_runner(test_handler):
    with serving(test_handler, "--deflate", "takeover") as address:
        yield address


class CountingSocket(socket.socket):
    """A TCP socket that counts the bytes it carries each way: what is on the wire."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received = 0
        self.sent = 0

    def recv(self, bufsize, flags=0):
        data = super().recv(bufsize, flags)
        self.received += len(data)
        return data

    def sendall(self, data, flags=0):
        super().sendall(data, flags)
        self.sent += len(data)


def client(address, path, sock=None, **kwargs):
    host, port, _ = address
    return connect(f"ws://{host}:{port}{path}", sock=sock, open_timeout=TIMEOUT,
                   close_timeout=TIMEOUT, ping_interval=None, proxy=None, max_size=None,
                   **kwargs)


def agreed(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions")


def json_message(i):
    """A JSON text of about 470 bytes, like an API's: keys repeat, values vary."""
    return json.dumps([
        {"id": i * 10 + k, "user": f"user-{(i + k) % 7}", "event": "price_update",
         "symbol": "ACME", "price": round((i + k) * 1.37, 2), "currency": "EUR"}
        for k in range(5)
    ], separators=(",", ":"))


def echo_bytes(address, messages, **kwargs):
    """Echoes `messages` on a connection and returns (agreed header, the extensions
    `websockets` runs, bytes sent, bytes received after the handshake)."""
    sock = CountingSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect(address[:2])
    with client(address, "/none", sock=sock, **kwargs) as ws:
        sent, received = sock.sent, sock.received
        for text in messages:
            ws.send(text)
            assert ws.recv(timeout=TIMEOUT) == text
        return agreed(ws), ws.protocol.extensions, sock.sent - sent, sock.received - received


def test_the_default_answer_is_no_context_takeover_either_way(runner):
    with client(runner, "/none") as ws:
        # websockets offers `permessage-deflate; client_max_window_bits`.
        assert agreed(ws) == SHARED
        (extension,) = ws.protocol.extensions
        assert extension.remote_no_context_takeover and extension.local_no_context_takeover
        # Either side of the threshold (128 bytes), text and binary.
        for message in ["", "é" * 63 + "a", "é" * 64, b"\x00" * 127, b"\x00" * 128]:
            ws.send(message)
            assert ws.recv(timeout=TIMEOUT) == message


def test_compressed_echo_takes_fewer_bytes_both_ways(runner):
    messages = [json_message(i) for i in range(200)]
    offered, _, plain_sent, plain_received = echo_bytes(runner, messages, compression=None)
    assert offered is None
    offered, _, sent, received = echo_bytes(runner, messages)
    assert offered == SHARED
    # Each message alone (no context): about 470 bytes of JSON deflate to about 30 %.
    assert sent < plain_sent * 0.6, (sent, plain_sent)
    assert received < plain_received * 0.6, (received, plain_received)
    print(f"200 JSON messages of ~{len(messages[0])} B: client sent {sent} B compressed vs "
          f"{plain_sent} B plain; runner sent {received} B vs {plain_received} B")


def test_takeover_keeps_the_context_across_many_messages(runner, takeover_runner):
    messages = [json_message(i) for i in range(1000)]
    offered, (extension,), takeover_sent, takeover_received = echo_bytes(
        takeover_runner, messages)
    # The client's window is capped at --deflate-window-bits (11); the runner compresses in
    # that window too, which needs no parameter (a smaller window than the client's 15 is
    # always readable).
    assert offered == "permessage-deflate; client_max_window_bits=11"
    assert not extension.remote_no_context_takeover
    assert not extension.local_no_context_takeover
    assert extension.local_max_window_bits == 11
    _, _, shared_sent, shared_received = echo_bytes(runner, messages)
    # With context the keys and the previous message are in the window: each message costs
    # a fraction of what it costs alone, each way.
    assert takeover_sent < shared_sent * 0.6, (takeover_sent, shared_sent)
    assert takeover_received < shared_received * 0.6, (takeover_received, shared_received)
    print(f"1000 JSON messages: takeover {takeover_received} B from the runner, "
          f"{takeover_sent} B to it; shared {shared_received} B / {shared_sent} B")


def test_compressed_echo_over_wss(test_handler, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=TIMEOUT,
    )
    # The test's own self-signed certificate is the only one trusted.
    context = ssl.create_default_context(cafile=cert)
    with announced(
        [RUNNER, "--listen", "127.0.0.1:0", "--handler", test_handler,
         "--tls-cert", cert, "--tls-key", key],
        r"wsbox-runner listening on https://127\.0\.0\.1:(\d+)/\n",
        stderr=subprocess.DEVNULL,
    ) as (_, match):
        with connect(f"wss://localhost:{match[1]}/none", ssl=context, open_timeout=TIMEOUT,
                     close_timeout=TIMEOUT, ping_interval=None, proxy=None,
                     max_size=None) as ws:
            assert agreed(ws) == SHARED
            # Records of ~470 bytes, then messages spanning many TLS records.
            for text in [json_message(i) for i in range(100)] + ["", "short"] + [
                    ",".join(json_message(i) for i in range(n)) for n in (100, 1500)]:
                ws.send(text)
                assert ws.recv(timeout=TIMEOUT) == text


def handshake(address, path, extensions):
    """A raw upgrade offering `extensions`; returns (socket, response head, bytes after it)."""
    host, port, _ = address
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the runner closed during the handshake"
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock, head.decode().lower(), rest


def masked_frame(first_byte, payload):
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first_byte, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first_byte, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first_byte, 0x80 | 127, length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Frames:
    """Reads the runner's (unmasked) frames from a raw socket."""

    def __init__(self, sock, rest):
        self.sock = sock
        self.data = rest

    def _need(self, n):
        while len(self.data) < n:
            chunk = self.sock.recv(65536)
            assert chunk, f"the runner closed with {self.data[:16]!r} unread"
            self.data += chunk

    def next(self):
        """The next frame: (first byte, payload)."""
        self._need(2)
        length, at = self.data[1] & 0x7F, 2
        if length == 126:
            self._need(4)
            length, at = struct.unpack("!H", self.data[2:4])[0], 4
        elif length == 127:
            self._need(10)
            length, at = struct.unpack("!Q", self.data[2:10])[0], 10
        self._need(at + length)
        frame = self.data[0], self.data[at:at + length]
        self.data = self.data[at + length:]
        return frame

    def close_code(self):
        first, payload = self.next()
        assert first == 0x88, (hex(first), payload)
        return struct.unpack("!H", payload[:2])[0]


def inflate(payload):
    """A message compressed without context (RFC 7692 §7.2.2: the tail is left off)."""
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


def test_messages_below_the_threshold_go_uncompressed(runner):
    sock, head, rest = handshake(runner, "/none", "permessage-deflate")
    with sock:
        assert f"sec-websocket-extensions: {SHARED}" in head
        frames = Frames(sock, rest)
        # The default threshold is 128 bytes; the client's frames go uncompressed (RSV1 clear).
        for size, compressed in [(1, False), (127, False), (128, True), (5000, True)]:
            text = ("a" * size).encode()
            sock.sendall(masked_frame(0x81, text))
            first, payload = frames.next()
            if compressed:
                assert first == 0xC1, (size, hex(first))
                assert len(payload) < size
                assert inflate(payload) == text
            else:
                assert first == 0x81, (size, hex(first))
                assert payload == text


def peak_rss_kib(pid):
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


def test_a_zip_bomb_closes_with_1009_without_inflating_it(runner):
    # 256 MiB of zeros in about 256 KB: a frame well under the frame limit (1 MiB) whose
    # message is 256 times the message limit (1 MiB).
    compress = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    bomb = b"".join(compress.compress(chunk) for _ in range(256))
    bomb += compress.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(bomb) < LIMIT // 2
    before = peak_rss_kib(runner[2])
    sock, _, rest = handshake(runner, "/none", "permessage-deflate")
    with sock:
        # FIN, RSV1, binary.
        sock.sendall(masked_frame(0xC2, bomb))
        assert Frames(sock, rest).close_code() == 1009
    # Inflating stopped at the limit: the runner never held the 256 MiB.
    grown = peak_rss_kib(runner[2]) - before
    assert grown < 64 * 1024, f"the runner's peak RSS grew by {grown} KiB"


def test_rsv1_on_a_control_frame_closes_with_1002(runner):
    sock, _, rest = handshake(runner, "/none", "permessage-deflate")
    with sock:
        # FIN, RSV1, ping.
        sock.sendall(masked_frame(0xC9, b"x"))
        assert Frames(sock, rest).close_code() == 1002


def test_a_publish_reaches_many_compressed_subscribers(runner):
    host, port, _ = runner
    text = json_message(7)
    assert " " not in text and len(text) >= 128  # one word of `pub T TEXT`, compressed
    raw = [handshake(runner, "/topics?sub=news", "permessage-deflate") for _ in range(3)]

    async def scenario():
        url = f"ws://{host}:{port}/topics?sub=news"
        opts = dict(open_timeout=TIMEOUT, close_timeout=TIMEOUT, proxy=None,
                    ping_interval=None)
        compressed = [await connect_async(url, **opts) for _ in range(100)]
        plain = await connect_async(url, compression=None, **opts)
        try:
            assert all(agreed(ws) == SHARED for ws in compressed)
            assert agreed(plain) is None
            async with connect_async(f"ws://{host}:{port}/topics", **opts) as publisher:
                await publisher.send(f"pub news {text}")
                assert await asyncio.wait_for(publisher.recv(), TIMEOUT) == "published 104"
            got = await asyncio.gather(
                *(asyncio.wait_for(ws.recv(), TIMEOUT) for ws in compressed + [plain]))
            assert got == [text] * 101
        finally:
            for ws in compressed + [plain]:
                await ws.close()

    try:
        asyncio.run(scenario())
        frames = [Frames(sock, rest).next() for sock, _, rest in raw]
    finally:
        for sock, _, _ in raw:
            sock.close()
    # Compressed once: every compressed subscriber got the same bytes.
    (first, payload), *others = frames
    assert first == 0xC1 and inflate(payload) == text.encode()
    assert all(frame == (first, payload) for frame in others)


def test_takeover_connections_mix_their_context_with_publishes(takeover_runner):
    # A connection keeping its context gets others' publishes uncompressed and its own
    # messages compressed with its context; one must not corrupt the other. (An unknown
    # command is answered with itself: a long message of the runner's own to the client.)
    with client(takeover_runner, "/topics?sub=news") as subscriber, \
            client(takeover_runner, "/topics") as publisher:
        for i in range(100):
            text = json_message(i)
            publisher.send(f"pub news {text}")
            assert publisher.recv(timeout=TIMEOUT) == "published 1"
            assert subscriber.recv(timeout=TIMEOUT) == text
            subscriber.send(text[::-1])
            assert subscriber.recv(timeout=TIMEOUT) == f"unknown command: {text[::-1]}"
            subscriber.send(f"pubself news {text}")
            assert subscriber.recv(timeout=TIMEOUT) == text
            assert subscriber.recv(timeout=TIMEOUT) == "published 1"


@pytest.fixture
def nats_url():
    """nats-server (Debian's, installed by scripts/setup.sh) on a free loopback port."""
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    program = shutil.which("nats-server") or "/usr/sbin/nats-server"
    process = subprocess.Popen([program, "-a", "127.0.0.1", "-p", str(port)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        # It listens once it is ready.
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert process.poll() is None, "nats-server exited (its port was taken?)"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nats-server did not listen"
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=TIMEOUT)


def ask(ws, command):
    ws.send(command)
    return ws.recv(timeout=TIMEOUT)


def test_a_publish_from_another_runner_arrives_compressed(test_handler, nats_url):
    text = json_message(11)
    with serving(test_handler, "--cluster", nats_url) as a, \
            serving(test_handler, "--cluster", nats_url) as b:
        raw = [handshake(b, "/topics?sub=news", "permessage-deflate") for _ in range(2)]
        try:
            with client(b, "/topics?sub=news") as subscriber, \
                    client(a, "/topics") as publisher:
                # Counts from the other node arrive within ~250 ms (cluster.rs).
                deadline = time.monotonic() + TIMEOUT
                while (answer := ask(publisher, "count news")) != "subscribers 3":
                    assert time.monotonic() < deadline, answer
                    time.sleep(0.05)
                assert ask(publisher, f"pub news {text}").startswith("published ")
                assert subscriber.recv(timeout=TIMEOUT) == text
            frames = [Frames(sock, rest).next() for sock, _, rest in raw]
        finally:
            for sock, _, _ in raw:
                sock.close()
    (first, payload), *others = frames
    assert first == 0xC1 and inflate(payload) == text.encode()
    assert others == [(first, payload)]

