"""wsbox.wasm under wasmtime-py: an asyncio server whose handshake and framing come only
from the component, talked to by the `websockets` package's client and by raw sockets."""

import asyncio
import json
import re

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from wsbox_component import (
    Core,
    ExtensionError,
    deflate_options,
    field,
    open_client,
    record,
    start_server,
)

TIMEOUT = 10


def echo(session, message):
    """Echoes every message; the text "close CODE REASON" makes the server close instead."""
    command = re.fullmatch(r"close (\d+) (.*)", message) if isinstance(message, str) else None
    if command:
        return session.close(int(command[1]), command[2])
    return session.send(message)


def run(scenario, deflate=None, limits=None, timeout=TIMEOUT):
    """Runs `scenario(url, port, log)` against a fresh server, bounded in time."""

    async def main():
        log = []
        server = await start_server(echo, log, deflate, limits)
        port = server.sockets[0].getsockname()[1]
        async with server:
            await asyncio.wait_for(scenario(f"ws://127.0.0.1:{port}/echo", port, log), timeout)

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

    # wasmtime-py lifts and lowers a list<u8> a byte at a time in Python: the megabyte takes
    # 4.2 s on an idle core, and more than TIMEOUT in CI beside the other suites.
    run(scenario, timeout=60)


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


# permessage-deflate: `websockets` offers it by default, as client and as server.


def json_message(i):
    """A JSON-like message, similar to its neighbours as chat or telemetry messages are."""
    return json.dumps({
        "seq": i,
        "user": f"user-{i % 13}",
        "room": "lobby",
        "text": f"message number {i} from the load generator, nothing to see here",
        "ts": 1_700_000_000_000 + i * 17,
    })


def test_websockets_negotiates_deflate_echo_is_compressed_with_takeover():
    async def scenario(url, port, log):
        async with connect(url) as ws:
            assert ws.response.headers["Sec-WebSocket-Extensions"].startswith(
                "permessage-deflate")
            _, params, wire = await wait_logged(log, "open")
            assert field(params, "server_no_context_takeover") is False
            assert field(params, "client_no_context_takeover") is False
            text = "".join(json_message(i) for i in range(600))
            before = dict(wire)
            await ws.send(text)
            assert await ws.recv() == text
            assert wire["read"] - before["read"] < len(text) / 4, wire
            assert wire["written"] - before["written"] < len(text) / 4, wire
            # Context takeover: each message refers back to the ones before it.
            before = dict(wire)
            payload = 0
            for i in range(200):
                await ws.send(json_message(i))
                assert await ws.recv() == json_message(i)
                payload += len(json_message(i))
            assert wire["read"] - before["read"] < payload / 3, (payload, wire, before)
            assert wire["written"] - before["written"] < payload / 3, (payload, wire, before)

    run(scenario, deflate=deflate_options())


def test_websockets_zip_bomb_closes_with_1009():
    async def scenario(url, port, log):
        async with connect(url) as ws:
            # 16 MB of one letter: about 16 KB on the wire, 16x the 1 MB message limit.
            await ws.send("a" * (16 << 20))
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1009
        failure = await wait_logged(log, "failure")
        assert failure[1] == 1009
        _, _, wire = await wait_logged(log, "open")
        assert wire["read"] < 64 << 10, wire

    run(scenario, deflate=deflate_options(),
        limits={"max_frame_size": 1 << 20, "max_message_size": 1 << 20})


def test_component_client_against_websockets_server():
    async def echo_handler(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with serve(echo_handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            core = Core()
            options = deflate_options(max_window_bits=11, mem_level=4)
            reader, writer, session, params, rest = await open_client(core, port, "/", options)
            # We offered windows of 11 bits; websockets agrees to takeover within them.
            assert params is not None
            assert field(params, "server_max_window_bits") == 11
            assert field(params, "client_max_window_bits") == 11
            [peer] = server.connections
            assert peer.response.headers["Sec-WebSocket-Extensions"].startswith(
                "permessage-deflate")
            messages = []

            async def next_message():
                nonlocal rest
                while not messages:
                    data, rest = rest or await reader.read(65536), b""
                    assert data, "the server went away"
                    incoming = session.receive(data)
                    assert incoming.failure is None, incoming.failure
                    writer.write(incoming.transmit)
                    messages.extend(e.payload for e in incoming.events if e.tag == "message")
                return messages.pop(0)

            payload = written = 0
            for i in range(150):
                frame = session.send(json_message(i))
                writer.write(frame)
                written += len(frame)
                payload += len(json_message(i))
                assert await next_message() == json_message(i)
            assert written < payload / 3, (written, payload)
            big = json_message(0).encode() * 1000
            writer.write(session.send(big))
            assert await next_message() == big
            writer.write(session.close(1000, "done"))
            data = await reader.read()  # the server's close reply, then EOF
            incoming = session.receive(data)
            assert [e.payload.code for e in incoming.events if e.tag == "close"] == [1000]
            assert session.is_finished()
            writer.close()

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


def test_check_deflate_response_fails_what_the_offer_does_not_allow():
    core = Core()
    options = deflate_options()
    assert core.check_deflate_response([], options) is None
    with pytest.raises(ExtensionError, match="invalid-parameter"):
        core.check_deflate_response(
            [("Sec-WebSocket-Extensions", b"permessage-deflate; x-unknown")], options)
    with pytest.raises(ExtensionError, match="unsupported-extension"):
        core.check_deflate_response(
            [("sec-websocket-extensions", b"x-webkit-deflate-frame")], options)
    offer = core.deflate_offer(deflate_options(max_window_bits=10, no_context_takeover=True))
    assert offer == ("permessage-deflate; server_no_context_takeover; "
                     "client_no_context_takeover; server_max_window_bits=10; "
                     "client_max_window_bits=10")
