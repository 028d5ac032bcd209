"""The `websockets` package (and raw sockets / http.client) against examples/echo_server.rs,
run as a process on an ephemeral loopback port by the `echo_server` fixture (conftest.py)."""

import base64
import hashlib
import http.client
import os
import socket
import threading

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.protocol import State
from websockets.sync.client import connect

TIMEOUT = 10
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def client(echo_server, **kwargs):
    host, port = echo_server
    # No keepalive pings, no proxy from the environment: only what each test sends.
    kwargs.setdefault("max_size", 4 * 2**20)
    return connect(
        f"ws://{host}:{port}/",
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        ping_interval=None,
        proxy=None,
        **kwargs,
    )


def test_text(echo_server):
    with client(echo_server) as ws:
        for text in ["Hello, wsbox", "", "κόσμε 𝄞"]:
            ws.send(text)
            assert ws.recv(timeout=TIMEOUT) == text


def test_binary(echo_server):
    with client(echo_server) as ws:
        data = bytes(range(256))
        ws.send(data)
        assert ws.recv(timeout=TIMEOUT) == data
        ws.send(b"")
        assert ws.recv(timeout=TIMEOUT) == b""


def test_one_megabyte_messages(echo_server):
    with client(echo_server) as ws:
        data = os.urandom(1_000_000)
        ws.send(data)
        assert ws.recv(timeout=TIMEOUT) == data
        text = "wsbox " * 200_000
        ws.send(text)
        assert ws.recv(timeout=TIMEOUT) == text


def test_fragmented_message(echo_server):
    with client(echo_server) as ws:
        # websockets sends an iterable as one fragmented message.
        ws.send(["frag", "men", "ted"])
        assert ws.recv(timeout=TIMEOUT) == "fragmented"


def test_ping(echo_server):
    with client(echo_server) as ws:
        pong = ws.ping(b"are you there")
        assert pong.wait(TIMEOUT)
        # A ping in the middle of traffic does not disturb the echo.
        ws.send("before")
        pong = ws.ping(b"x" * 125)
        ws.send("after")
        assert pong.wait(TIMEOUT)
        assert ws.recv(timeout=TIMEOUT) == "before"
        assert ws.recv(timeout=TIMEOUT) == "after"


def test_close_with_code(echo_server):
    with client(echo_server) as ws:
        ws.send("last")
        assert ws.recv(timeout=TIMEOUT) == "last"
        ws.close(code=4000, reason="client says bye")
        assert ws.state is State.CLOSED
        # The server answers with the same code (RFC 6455 §5.5.1).
        assert ws.close_code == 4000
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
        assert closed.value.sent.code == 4000
        assert closed.value.rcvd.code == 4000


def test_normal_close(echo_server):
    with client(echo_server) as ws:
        ws.close()
        assert ws.close_code == 1000
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=TIMEOUT)


def test_subprotocol_is_the_clients_first_offer(echo_server):
    with client(echo_server, subprotocols=["superchat", "chat"]) as ws:
        assert ws.subprotocol == "superchat"
        ws.send("with a protocol")
        assert ws.recv(timeout=TIMEOUT) == "with a protocol"
    with client(echo_server) as ws:
        assert ws.subprotocol is None


def test_concurrent_clients(echo_server):
    errors = []

    def talk(n):
        try:
            with client(echo_server) as ws:
                for i in range(25):
                    ws.send(f"client {n} message {i}")
                    assert ws.recv(timeout=TIMEOUT) == f"client {n} message {i}"
        except Exception as e:  # reported below, with the client's number
            errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=talk, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


# --- Raw sockets: what a well-behaved client library will not send.


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def raw_open(echo_server):
    """A socket on which the opening handshake was done by hand."""
    sock = socket.create_connection(echo_server, timeout=TIMEOUT)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += recv_exact(sock, 1)
    lines = head.decode("ascii").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 101 ")
    headers = {k.lower(): v for k, v in (l.split(": ", 1) for l in lines[1:] if l)}
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode("ascii")
    assert headers["sec-websocket-accept"] == accept
    return sock


def masked(b0, payload, mask=b"\x37\xfa\x21\x3d"):
    n = len(payload)
    if n < 126:
        length = bytes([0x80 | n])
    else:
        length = bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return bytes([b0]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


VIOLATIONS = {
    "reserved opcode 0x3": (masked(0x83, b""), 1002),
    "reserved opcode 0xB": (masked(0x8B, b"x"), 1002),
    "unmasked frame": (b"\x81\x02hi", 1002),
    "RSV1 without an extension": (masked(0xC1, b"x"), 1002),
    "126-byte ping": (masked(0x89, b"p" * 126), 1002),
    "fragmented ping": (masked(0x09, b"p"), 1002),
    "continuation without a start": (masked(0x80, b"x"), 1002),
    "close code 1005": (masked(0x88, (1005).to_bytes(2, "big")), 1002),
    "invalid UTF-8": (masked(0x81, b"\xce\xba\xff"), 1007),
    "invalid UTF-8 in an unfinished message": (masked(0x01, b"ok\xed\xa0\x80"), 1007),
}


@pytest.mark.parametrize("name", VIOLATIONS)
def test_protocol_violation_is_closed_with_its_code(echo_server, name):
    frame, code = VIOLATIONS[name]
    with raw_open(echo_server) as sock:
        sock.sendall(frame)
        assert recv_exact(sock, 4) == b"\x88\x02" + code.to_bytes(2, "big")
        # Then the server closes the TCP connection.
        assert sock.recv(1) == b""


def test_raw_echo_and_close(echo_server):
    with raw_open(echo_server) as sock:
        sock.sendall(masked(0x81, "κόσμε".encode()))
        assert recv_exact(sock, 2 + 10) == b"\x81\x0a" + "κόσμε".encode()
        sock.sendall(masked(0x88, (1000).to_bytes(2, "big") + b"done"))
        assert recv_exact(sock, 4) == b"\x88\x02\x03\xe8"
        assert sock.recv(1) == b""


# --- Bad handshakes over plain HTTP (http.client).


def http_request(echo_server, method, headers):
    conn = http.client.HTTPConnection(*echo_server, timeout=TIMEOUT)
    try:
        conn.request(method, "/", headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def without(name):
    return {k: v for k, v in UPGRADE.items() if k != name}


@pytest.mark.parametrize(
    "method, headers, status, body",
    [
        (
            "GET",
            without("Sec-WebSocket-Key"),
            400,
            b"invalid websocket request: missing or repeated Sec-WebSocket-Key header\n",
        ),
        (
            "GET",
            {**UPGRADE, "Sec-WebSocket-Key": "dG9vc2hvcnQ="},
            400,
            b"invalid websocket request: Sec-WebSocket-Key must be base64 of 16 bytes\n",
        ),
        (
            "GET",
            without("Connection"),
            400,
            b'invalid websocket request: Connection header must contain "Upgrade"\n',
        ),
        (
            "GET",
            {**UPGRADE, "Sec-WebSocket-Version": "8"},
            426,
            b"invalid websocket request: Sec-WebSocket-Version must be 13\n",
        ),
        ("POST", UPGRADE, 400, b"invalid websocket request: method must be GET\n"),
    ],
    ids=["missing key", "short key", "no Connection: Upgrade", "version 8", "POST"],
)
def test_bad_handshake(echo_server, method, headers, status, body):
    got_status, got_headers, got_body = http_request(echo_server, method, headers)
    assert (got_status, got_body) == (status, body)
    if status == 426:
        assert got_headers["sec-websocket-version"] == "13"


def test_plain_http_request(echo_server):
    status, _, body = http_request(echo_server, "GET", {})
    assert status == 200
    assert body == b"wsbox echo server: connect with a WebSocket client\n"


# --- Requests a proxy in front could frame differently (raw sockets).


def raw_http(echo_server, request):
    """Sends `request` as is, half-closes, and returns all the server sends until it closes."""
    with socket.create_connection(echo_server, timeout=TIMEOUT) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        return answer


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: 3\r\nContent-Length: 10\r\n",
        b"Content-Length: 10\r\nContent-Length: 3\r\n",
        b"Content-Length: +3\r\n",
        b"Content-Length: 3, 3\r\n",
        b"Host: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    ],
    ids=[
        "two lengths, last longer",
        "two lengths, last shorter",
        "signed length",
        "length list",
        "two hosts",
    ],
)
def test_ambiguous_requests_are_refused(echo_server, headers):
    answer = raw_http(echo_server, b"GET / HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\nabcdefghij")
    assert answer.startswith(b"HTTP/1.1 400 "), answer


def test_head_gets_no_body(echo_server):
    answer = raw_http(
        echo_server,
        b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    first, rest = answer.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b"HTTP/1.1 200 "), answer
