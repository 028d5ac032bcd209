"""wsbox.wasm under wasmtime-py: the `core` world's exports as Python, and an asyncio
WebSocket server whose handshake and framing come only from the component.

WASI is linked (std Rust imports it) but the store's WasiConfig grants nothing: no files,
environment, arguments or stdio; the client role's masks come from wasi:random.
"""

import asyncio
import functools
from pathlib import Path

from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Record

WSBOX_WASM = Path(__file__).resolve().parents[2] / "target" / "wsbox.wasm"
HANDSHAKE = "wsbox:websocket/handshake@0.2.0"
FRAMES = "wsbox:websocket/frames@0.2.0"
MAX_HEAD = 16 << 10


def record(**fields):
    """A WIT record; Python names use `_` where WIT uses `-`."""
    r = Record()
    for name, value in fields.items():
        setattr(r, name.replace("_", "-"), value)
    return r


@functools.cache
def _compiled():
    if not WSBOX_WASM.exists():
        raise FileNotFoundError(f"{WSBOX_WASM} is missing: run scripts/build-wasm.sh")
    engine = Engine()
    component = Component.from_file(engine, str(WSBOX_WASM))
    linker = Linker(engine)
    linker.add_wasip2()
    return engine, component, linker


class HandshakeError(Exception):
    """A refused upgrade: `kind`, `reason` and the ready-made `response` record."""

    def __init__(self, error):
        super().__init__(error.reason)
        self.kind = error.kind
        self.reason = error.reason
        self.response = error.response


class SendClosed(Exception):
    """Sending after our close frame went out (WIT `send-error.closed`)."""


class Core:
    """One instance of wsbox.wasm in its own store. Not thread-safe: use one per thread."""

    def __init__(self):
        engine, component, linker = _compiled()
        self.store = Store(engine)
        self.store.set_wasi(WasiConfig())
        self.instance = linker.instantiate(self.store, component)

    def _func(self, interface, name):
        index = self.instance.get_export_index(self.store, interface)
        return self.instance.get_func(
            self.store, self.instance.get_export_index(self.store, name, index)
        )

    def requested_protocols(self, request):
        return self._func(HANDSHAKE, "requested-protocols")(self.store, request)

    def start(self, request, subprotocol=None):
        """The 101 response record, or raises HandshakeError."""
        result = self._func(HANDSHAKE, "start")(self.store, request, subprotocol)
        if result.tag == "err":
            raise HandshakeError(result.payload)
        return result.payload

    def accept_key(self, key):
        return self._func(HANDSHAKE, "accept-key")(self.store, key)

    def session(self, role, max_frame_size=16 << 20, max_message_size=64 << 20):
        """A `frames.session`; role is "server" or "client"."""
        return Session(self, role, record(max_frame_size=max_frame_size,
                                          max_message_size=max_message_size))


class Session:
    """A `frames.session` resource. Messages are `str` (text) or `bytes` (binary)."""

    def __init__(self, core, role, limits):
        self._core = core
        self._handle = core._func(FRAMES, "[constructor]session")(core.store, role, limits)

    def _call(self, method, *args):
        func = self._core._func(FRAMES, f"[method]session.{method}")
        return func(self._core.store, self._handle, *args)

    def _bytes_or_closed(self, result):
        # result<list<u8>, send-error>: wasmtime-py gives the bytes, or the enum's name.
        if isinstance(result, str):
            raise SendClosed(result)
        return result

    def receive(self, data):
        """An `incoming` record: `.events` (Variants tagged message/ping/pong/close),
        `.transmit` (bytes to write now) and `.failure` (close-frame record or None)."""
        return self._call("receive", bytes(data))

    def send(self, message):
        return self._bytes_or_closed(self._call("send", message))

    def ping(self, data=b""):
        return self._bytes_or_closed(self._call("ping", bytes(data)))

    def close(self, code=1000, reason=""):
        return self._bytes_or_closed(self._call("close", code, reason))

    def is_finished(self):
        return self._call("is-finished")

    def close_received(self):
        return self._call("close-received")


def parse_head(head):
    """The component's request record for a raw HTTP/1.x request head. Only splits lines:
    validating the request is the component's job."""
    lines = head.split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    target, _, version = rest.partition(b" ")
    versions = {b"HTTP/1.0": 10, b"HTTP/1.1": 11}
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers.append((name.decode("latin-1"), value.strip(b" \t")))
    return record(
        method=method.decode("latin-1"),
        uri=target.decode("latin-1"),
        version=versions.get(version, 0),
        headers=headers,
        body=b"",
    )


def encode_response(response):
    """An HTTP/1.1 response head (and body) for the component's response record."""
    out = bytearray(f"HTTP/1.1 {response.status} \r\n".encode())
    for name, value in response.headers:
        out += name.encode() + b": " + value + b"\r\n"
    if response.status != 101:
        out += f"content-length: {len(response.body)}\r\n".encode()
    return bytes(out + b"\r\n" + response.body)


async def serve_connection(core, reader, writer, on_message, log):
    """Serves one TCP connection: the handshake, then every read through `session.receive`.
    `on_message(session, message)` returns the bytes to write in reply (or b"")."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    try:
        response = core.start(parse_head(head[:-4]))
    except HandshakeError as refused:
        log.append(("refused", refused.kind, refused.reason))
        writer.write(encode_response(refused.response))
        await writer.drain()
        writer.close()
        return
    writer.write(encode_response(response))
    session = core.session("server")
    try:
        while not session.is_finished():
            data = await reader.read(65536)
            if not data:
                log.append(("gone",))
                break
            incoming = session.receive(data)
            writer.write(incoming.transmit)
            for event in incoming.events:
                if event.tag == "message":
                    writer.write(on_message(session, event.payload))
                elif event.tag == "close":
                    log.append(("close", event.payload.code, event.payload.reason))
            if incoming.failure is not None:
                log.append(("failure", incoming.failure.code, incoming.failure.reason))
            await writer.drain()
    finally:
        # RFC 6455 §7.1.1: the server closes the TCP connection first.
        writer.close()


async def start_server(on_message, log):
    """An asyncio server on 127.0.0.1 (any free port) with one wsbox.wasm instance."""
    core = Core()

    async def handle(reader, writer):
        await serve_connection(core, reader, writer, on_message, log)

    return await asyncio.start_server(handle, "127.0.0.1", 0, limit=MAX_HEAD)
