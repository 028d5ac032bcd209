"""wsbox.wasm under wasmtime-py: the `core` world's exports as Python, and an asyncio
WebSocket server and client whose handshake and framing come only from the component
(permessage-deflate included).

WASI is linked (std Rust imports it) but the store's WasiConfig grants nothing: no files,
environment, arguments or stdio; the client role's masks come from wasi:random.
"""

import asyncio
import base64
import functools
import os
from pathlib import Path

from wasmtime import Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Record

WSBOX_WASM = Path(__file__).resolve().parents[2] / "target" / "wsbox.wasm"
HANDSHAKE = "wsbox:websocket/handshake@0.2.1"
FRAMES = "wsbox:websocket/frames@0.2.1"
MAX_HEAD = 16 << 10
DEFAULT_LIMITS = {"max_frame_size": 16 << 20, "max_message_size": 64 << 20}


def deflate_options(level=6, mem_level=8, max_window_bits=15, no_context_takeover=False):
    """A WIT `deflate-options` record; the defaults are the library's."""
    return record(level=level, mem_level=mem_level, max_window_bits=max_window_bits,
                  no_context_takeover=no_context_takeover)


def record(**fields):
    """A WIT record; Python names use `_` where WIT uses `-`."""
    r = Record()
    for name, value in fields.items():
        setattr(r, name.replace("_", "-"), value)
    return r


def field(r, name):
    """A field of a WIT record, named with `_` for `-`."""
    return getattr(r, name.replace("_", "-"))


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


class ExtensionError(Exception):
    """The server's permessage-deflate answer must fail the connection (WIT
    `extension-error`: "unsupported-extension" or "invalid-parameter")."""


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

    def start_with_deflate(self, request, options, subprotocol=None):
        """`(response, params)`: the 101 and the agreed `deflate-params` record (None when
        the client offered nothing acceptable). Raises HandshakeError."""
        result = self._func(HANDSHAKE, "start-with-deflate")(
            self.store, request, subprotocol, options)
        if result.tag == "err":
            raise HandshakeError(result.payload)
        return result.payload.response, result.payload.deflate

    def deflate_offer(self, options):
        return self._func(HANDSHAKE, "deflate-offer")(self.store, options)

    def check_deflate_response(self, headers, options):
        """The agreed `deflate-params` record, or None if declined; raises ExtensionError."""
        result = self._func(HANDSHAKE, "check-deflate-response")(self.store, headers, options)
        # result<option<deflate-params>, extension-error>: the enum comes as its name.
        if isinstance(result, str):
            raise ExtensionError(result)
        return result

    def session(self, role, limits=None, deflate=None):
        """A `frames.session`; role is "server" or "client". `limits` is a dict like
        DEFAULT_LIMITS; `deflate` a `(params, options)` pair of records."""
        limits = record(**(limits or DEFAULT_LIMITS))
        if deflate is None:
            return Session(self, self._func(FRAMES, "[constructor]session")(
                self.store, role, limits))
        params, options = deflate
        return Session(self, self._func(FRAMES, "[static]session.with-deflate")(
            self.store, role, limits, params, options))


class Session:
    """A `frames.session` resource. Messages are `str` (text) or `bytes` (binary)."""

    def __init__(self, core, handle):
        self._core = core
        self._handle = handle

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


async def serve_connection(core, reader, writer, on_message, log, deflate=None, limits=None):
    """Serves one TCP connection: the handshake, then every read through `session.receive`.
    `on_message(session, message)` returns the bytes to write in reply (or b""). With
    `deflate` (a `deflate-options` record) permessage-deflate is accepted when offered; the
    log then gets ("open", params, wire), `wire` counting the bytes read and written."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    params = None
    try:
        if deflate is None:
            response = core.start(parse_head(head[:-4]))
        else:
            response, params = core.start_with_deflate(parse_head(head[:-4]), deflate)
    except HandshakeError as refused:
        log.append(("refused", refused.kind, refused.reason))
        writer.write(encode_response(refused.response))
        await writer.drain()
        writer.close()
        return
    writer.write(encode_response(response))
    session = core.session("server", limits, None if params is None else (params, deflate))
    wire = {"read": 0, "written": 0}
    if deflate is not None:
        log.append(("open", params, wire))
    try:
        while not session.is_finished():
            data = await reader.read(65536)
            if not data:
                log.append(("gone",))
                break
            wire["read"] += len(data)
            incoming = session.receive(data)
            writer.write(incoming.transmit)
            wire["written"] += len(incoming.transmit)
            for event in incoming.events:
                if event.tag == "message":
                    reply = on_message(session, event.payload)
                    writer.write(reply)
                    wire["written"] += len(reply)
                elif event.tag == "close":
                    log.append(("close", event.payload.code, event.payload.reason))
            if incoming.failure is not None:
                log.append(("failure", incoming.failure.code, incoming.failure.reason))
            await writer.drain()
    finally:
        # RFC 6455 §7.1.1: the server closes the TCP connection first.
        writer.close()


async def start_server(on_message, log, deflate=None, limits=None):
    """An asyncio server on 127.0.0.1 (any free port) with one wsbox.wasm instance."""
    core = Core()

    async def handle(reader, writer):
        await serve_connection(core, reader, writer, on_message, log, deflate, limits)

    return await asyncio.start_server(handle, "127.0.0.1", 0, limit=MAX_HEAD)


async def open_client(core, port, path="/", deflate=None):
    """A client connection to 127.0.0.1:`port` whose framing comes from the component:
    `(reader, writer, session, params, rest)`, `params` being the agreed `deflate-params`
    (None if declined or not offered) and `rest` the bytes read after the 101's head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
        "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
    ]
    if deflate is not None:
        lines.append(f"Sec-WebSocket-Extensions: {core.deflate_offer(deflate)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    buffered = b""
    while b"\r\n\r\n" not in buffered:
        chunk = await reader.read(4096)
        if not chunk or len(buffered) > MAX_HEAD:
            raise ConnectionError("no 101 response head")
        buffered += chunk
    head, _, rest = buffered.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    if status_line.split(b" ")[1] != b"101":
        raise ConnectionError(status_line.decode("latin-1"))
    headers = []
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1"), value.strip(b" \t")))
    accept = [v for n, v in headers if n.lower() == "sec-websocket-accept"]
    if accept != [core.accept_key(key).encode()]:
        raise ConnectionError("wrong sec-websocket-accept")
    params = None if deflate is None else core.check_deflate_response(headers, deflate)
    session = core.session("client", None, None if params is None else (params, deflate))
    return reader, writer, session, params, rest
