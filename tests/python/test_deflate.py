"""permessage-deflate (RFC 7692) between the `websockets` package and
examples/echo_server.rs (which accepts it): negotiation as `websockets` offers it, context
takeover over many messages, the parameters one by one, and a zip bomb over a raw socket."""

import base64
import json
import os
import socket
import struct
import zlib

import pytest
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

TIMEOUT = 10


def client(echo_server, **kwargs):
    host, port = echo_server
    return connect(
        f"ws://{host}:{port}/",
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        ping_interval=None,
        proxy=None,
        max_size=None,
        **kwargs,
    )


def agreed(ws):
    return ws.response.headers.get("Sec-WebSocket-Extensions")


def json_messages(count):
    return [
        json.dumps({"id": i, "user": f"user-{i % 7}", "event": "price_update", "price": i * 1.5})
        for i in range(count)
    ]


def test_the_default_offer_is_accepted_with_context_takeover(echo_server):
    with client(echo_server) as ws:
        # websockets offers `permessage-deflate; client_max_window_bits`.
        assert agreed(ws) == "permessage-deflate"
        for text in json_messages(1000):
            ws.send(text)
            assert ws.recv(timeout=TIMEOUT) == text
        big = os.urandom(300_000)
        ws.send(big)
        assert ws.recv(timeout=TIMEOUT) == big


@pytest.mark.parametrize(
    "params, answer",
    [
        (
            dict(server_no_context_takeover=True, client_no_context_takeover=True),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (dict(server_max_window_bits=9), "permessage-deflate; server_max_window_bits=9"),
        (dict(client_max_window_bits=10), "permessage-deflate; client_max_window_bits=10"),
        (
            dict(server_max_window_bits=12, client_max_window_bits=15),
            "permessage-deflate; server_max_window_bits=12",
        ),
    ],
)
def test_parameters(echo_server, params, answer):
    factory = ClientPerMessageDeflateFactory(**params)
    with client(echo_server, extensions=[factory], compression=None) as ws:
        assert agreed(ws) == answer
        for text in json_messages(200) + ["", "x" * 100_000]:
            ws.send(text)
            assert ws.recv(timeout=TIMEOUT) == text


def test_an_8_bit_server_window_is_declined(echo_server):
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=8)
    with client(echo_server, extensions=[factory], compression=None) as ws:
        assert agreed(ws) is None
        ws.send("uncompressed")
        assert ws.recv(timeout=TIMEOUT) == "uncompressed"


def handshake(echo_server, extensions):
    host, port = echo_server
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: {extensions}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the server closed during the handshake"
        head += chunk
    head, rest = head.split(b"\r\n\r\n", 1)
    return sock, head.decode(), rest


def masked_frame(first_byte, payload):
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first_byte, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", first_byte, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first_byte, 0x80 | 127, length)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + body


def read_close(sock, rest):
    data = rest
    while len(data) < 4:
        chunk = sock.recv(4096)
        assert chunk, f"closed without a close frame after {data!r}"
        data += chunk
    assert data[0] == 0x88, data[:8]
    return struct.unpack("!H", data[2:4])[0]


def test_a_zip_bomb_closes_with_1009(echo_server):
    sock, head, rest = handshake(echo_server, "permessage-deflate")
    with sock:
        assert "sec-websocket-extensions: permessage-deflate" in head.lower()
        # 80 MiB of zeros (more than the server's 64 MiB message limit) in about 80 KB.
        compress = zlib.compressobj(9, zlib.DEFLATED, -15)
        bomb = b"".join(compress.compress(bytes(1 << 20)) for _ in range(80))
        bomb += compress.flush(zlib.Z_SYNC_FLUSH)[:-4]
        assert len(bomb) < 100_000
        # FIN, RSV1, binary.
        sock.sendall(masked_frame(0xC2, bomb))
        assert read_close(sock, rest) == 1009


def test_rsv1_on_a_control_frame_closes_with_1002(echo_server):
    sock, _, rest = handshake(echo_server, "permessage-deflate")
    with sock:
        # FIN, RSV1, ping.
        sock.sendall(masked_frame(0xC9, b"x"))
        assert read_close(sock, rest) == 1002


def test_rsv1_without_the_extension_closes_with_1002(echo_server):
    sock, head, rest = handshake(echo_server, "x-unknown-extension")
    with sock:
        assert "sec-websocket-extensions" not in head.lower()
        sock.sendall(masked_frame(0xC1, b"\x00"))
        assert read_close(sock, rest) == 1002
