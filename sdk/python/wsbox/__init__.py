"""The wsbox handler SDK for Python (componentize-py): subclass `Handler`, override any of
its five methods, and build with `scripts/build-guest.sh NAME` (a folder under `guests/`
holding `handler.py` with a class `Handler`).

Text messages are `str`, binary ones `bytes`. Every import is a function: those of
`connection` here, of `history` and `presence` here too (from `wsbox.rooms`), of `store` in
`wsbox.store`. A call that can fail returns the error's name (e.g. "backpressure"), a `str`,
where it would return None or its result otherwise; no result is a `str`.
"""

from typing import Optional, Union

from wit_world.imports import connection
from wit_world.imports.types import Request, Response

from . import store
from ._values import Data, message as _message, text_or_bytes as _text_or_bytes
from ._values import value_or_error as _error
from .rooms import (
    Entry, Member, Page, Position, Published, enable_history, history, history_head, members,
    publish_kept, set_presence, subscribe_from,
)

__all__ = [
    "Data", "Entry", "Handler", "Member", "Page", "Position", "Published", "Request",
    "Response", "accept", "attachment", "cancel_alarm", "clear_auto_response", "close",
    "close_other", "enable_history", "header", "history", "history_head", "is_upgrade",
    "limits", "members", "offered_protocols", "publish", "publish_kept", "request", "respond",
    "self_id", "send", "send_to", "set_alarm", "set_attachment", "set_auto_response",
    "set_presence", "store", "subscribe", "subscribe_from", "subscribers", "topics",
    "unsubscribe",
]


class Handler:
    """What a handler does with its connection; one instance per connection (a fresh one
    after hibernation: what must survive belongs in `set_attachment`)."""

    def handle(self, request: Request) -> Response:
        """Every HTTP request on the connection. By default: a WebSocket on any path."""
        return accept(request) if is_upgrade(request) else respond(404, "not found\n")

    def on_open(self) -> None:
        """The 101 is out: the handler may speak first."""

    def on_message(self, data: Data) -> None:
        """A complete message from the client: `str` (text) or `bytes` (binary)."""

    def on_alarm(self) -> None:
        """The alarm set with `set_alarm` is due."""

    def on_close(self, code: int, reason: str, clean: bool) -> None:
        """The connection ended; no call follows."""


def header(request, name: str) -> Optional[str]:
    """The request's header `name` (case-insensitive), decoded; None if absent."""
    wanted = name.lower()
    for key, value in request.headers:
        if key.lower() == wanted:
            return value.decode("utf-8", "replace")
    return None


def is_upgrade(request: Request) -> bool:
    """Whether the request asks for a WebSocket (`upgrade: websocket`)."""
    return (header(request, "upgrade") or "").lower() == "websocket"


def offered_protocols(request) -> list:
    """The subprotocols the client offered, in its order of preference."""
    offered = []
    for key, value in request.headers:
        if key.lower() == "sec-websocket-protocol":
            offered += [p.strip() for p in value.decode("utf-8", "replace").split(",") if p.strip()]
    return offered


def accept(request: Request, protocol: Optional[str] = None) -> Response:
    """Accepts the upgrade with a bare 101 (announcing `protocol`, one the client offered):
    the runner validates the request, computes the accept key and negotiates compression."""
    headers = [] if protocol is None else [("sec-websocket-protocol", protocol.encode())]
    return Response(101, headers, b"")


def respond(status: int, body: Union[str, bytes] = "", headers: Optional[dict] = None) -> Response:
    """An ordinary HTTP response (a `str` body is sent as UTF-8 text)."""
    headers = dict(headers or {})
    if isinstance(body, str):
        headers.setdefault("content-type", "text/plain; charset=utf-8")
        body = body.encode()
    return Response(status, [(k, v.encode()) for k, v in headers.items()], body)


def self_id() -> str:
    return connection.self_id()


def request():
    """The upgrade request as kept for the connection: path, query, headers, protocol."""
    return connection.request()


def send(data: Data) -> Optional[str]:
    return _error(lambda: connection.send(_message(data)))


def send_to(to: str, data: Data) -> Optional[str]:
    return _error(lambda: connection.send_to(to, _message(data)))


def close(code: int = 1000, reason: str = "") -> None:
    connection.close(code, reason)


def close_other(to: str, code: int = 1000, reason: str = "") -> Optional[str]:
    return _error(lambda: connection.close_other(to, code, reason))


def subscribe(topic: str) -> Optional[str]:
    return _error(lambda: connection.subscribe(topic))


def unsubscribe(topic: str) -> bool:
    return connection.unsubscribe(topic)


def topics() -> list:
    return connection.topics()


def publish(topic: str, data: Data, include_self: bool = False) -> int:
    return connection.publish(topic, _message(data), include_self)


def subscribers(topic: str) -> int:
    return connection.subscribers(topic)


def attachment() -> bytes:
    return connection.attachment()


def set_attachment(data: Union[str, bytes]) -> Optional[str]:
    data = _text_or_bytes(data)
    return _error(lambda: connection.set_attachment(data))


def set_alarm(ms: int) -> None:
    connection.set_alarm(ms)


def cancel_alarm() -> None:
    connection.cancel_alarm()


def set_auto_response(request_data: Data, response_data: Data) -> Optional[str]:
    return _error(lambda: connection.set_auto_response(_message(request_data), _message(response_data)))


def clear_auto_response(request_data: Data) -> bool:
    return connection.clear_auto_response(_message(request_data))


def limits() -> dict:
    return {
        "topics": connection.max_topics(),
        "topic_length": connection.max_topic_len(),
        "attachment": connection.max_attachment(),
        "auto_responses": connection.max_auto_responses(),
        "auto_response_size": connection.max_auto_response_size(),
    }
