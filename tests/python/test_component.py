"""wsbox.wasm under wasmtime-py: an asyncio server whose handshake and framing come only
from the component, talked to by the `websockets` package's client and by raw sockets."""

import asyncio
import re

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsbox_component import Core, record, start_server

TIMEOUT = 10


def echo(session, message):
    """Echoes every message; the text "close CODE REASON" makes the server close instead."""
    command = re.fullmatch(r"close (\d+) (.*)", message) if isinstance(message, str) else None
    if command:
        return session.close(int(command[1]), command[2])
    return session.send(message)


def run(scenario):
    """Runs `scenario(url, port, log)` against a fresh server, bounded in time."""

    async def main():
        log = []
        server = await start_server(echo, log)
        port = server.sockets[0].getsockname()[1]
        async with server:
            await asyncio.wait_for(scenario(f"ws://127.0.0.1:{port}/echo", port, log), TIMEOUT)

    asyncio.run(main())


async def wait_logged(log, kind):
    for _ in range(200):
        for entry in log:
            if entry[0] == kind:
                return entry
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {kind} in {log}")


def test_accept_key_rfc_example():
    assert Core().accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_text_echo():
    async def scenario(url, port, log):
        async with connect(url) as ws:
            await ws.send("héllo wörld ✓")
            assert await ws.recv() == "héllo wörld ✓"

    run(scenario)


def test_binary_echo():
    async def scenario(url, port, log):
        async with connect(url) as ws:
            await ws.send(bytes([0, 1, 2, 253, 254, 255]))
            assert await ws.recv() == bytes([0, 1, 2, 253, 254, 255])

    run(scenario)


def test_one_megabyte_message():
    data = bytes(i * 31 % 251 for i in range(1 << 20))

    async def scenario(url, port, log):
        async with connect(url, max_size=2 << 20) as ws:
            await ws.send(data)
            assert await ws.recv() == data

    run(scenario)


def test_ping_is_answered_with_pong():
    async def scenario(url, port, log):
        async with connect(url) as ws:
            pong = await ws.ping(b"are you there?")
            latency = await pong
            assert latency >= 0

    run(scenario)


def test_client_closes_with_4000_and_a_reason():
    async def scenario(url, port, log):
        async with connect(url) as ws:
            await ws.close(4000, "client says bye")
            assert ws.close_code == 4000, "the server echoes the code"
        assert await wait_logged(log, "close") == ("close", 4000, "client says bye")

    run(scenario)


def test_server_closes_with_1001():
    async def scenario(url, port, log):
        async with connect(url) as ws:
            await ws.send("close 1001 going away")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1001
            assert closed.value.rcvd.reason == "going away"

    run(scenario)


UPGRADE = (
    b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def test_unmasked_client_frame_closes_with_1002():
    async def scenario(url, port, log):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # An unmasked text frame "hi": a server must fail the connection (RFC 6455 §5.1).
        writer.write(UPGRADE + bytes([0x81, 0x02]) + b"hi")
        received = await reader.read()  # until the server closes
        writer.close()
        head, _, frame = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
        headers = {name.lower(): value for name, value in headers.items()}
        assert headers[b"sec-websocket-accept"] == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        assert frame[0] == 0x88, "a close frame"
        assert int.from_bytes(frame[2:4], "big") == 1002
        failure = await wait_logged(log, "failure")
        assert failure[1] == 1002

    run(scenario)


def test_bad_handshake_gets_400_with_the_reason():
    async def scenario(url, port, log):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        received = await reader.read()
        writer.close()
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 ")
        assert body == b"invalid websocket request: missing or repeated Sec-WebSocket-Key header\n"
        assert log == [
            ("refused", "invalid-websocket-request", "missing or repeated Sec-WebSocket-Key header")
        ]

    run(scenario)


def test_websockets_client_sees_426_for_a_second_version():
    async def scenario(url, port, log):
        # websockets sends version 13 itself; a second version header is not "13".
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers={"Sec-WebSocket-Version": "8"}):
                pass
        assert refused.value.response.status_code == 426
        assert refused.value.response.headers["Sec-WebSocket-Version"] == "13"

    run(scenario)


def test_requested_protocols_and_subprotocol_choice():
    core = Core()
    request = record(
        method="GET",
        uri="/",
        version=11,
        headers=[
            ("Host", b"localhost"),
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", b"13"),
            ("Sec-WebSocket-Protocol", b"v2.chat, v1.chat"),
        ],
        body=b"",
    )
    assert core.requested_protocols(request) == ["v2.chat", "v1.chat"]
    response = core.start(request, "v1.chat")
    assert response.status == 101
    assert (("sec-websocket-protocol", b"v1.chat")) in response.headers
