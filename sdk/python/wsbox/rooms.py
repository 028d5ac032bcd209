"""Topics that remember and who is in them: the `history` and `presence` imports
(wit/rooms.wit), re-exported by `wsbox`. A call that can fail returns its result or the error's
name, a `str` ("off", "gone", "not-subscribed", …); no result is a `str`."""

from typing import List, NamedTuple, Optional, Union

from wit_world.imports import history as _history
from wit_world.imports import presence as _presence

from ._values import Data, from_message, message, text_or_bytes, value_or_error


class Position(NamedTuple):
    """Where a message sits in its topic's history: `epoch` (16 hex digits) changes when the
    history starts anew, `offset` counts from 1 within it. Every message published to a topic
    with history reaches its clients carrying it (a JSON object gets a first member
    `"pos":{"epoch":…,"offset":…}`; see wit/rooms.wit for text and binary)."""

    epoch: str
    offset: int


class Published(NamedTuple):
    """What `publish_kept` answers: the message's position, and how many it was queued to."""

    position: Position
    count: int


class Entry(NamedTuple):
    """A message kept in a history, as published (no envelope)."""

    position: Position
    data: Data


class Member(NamedTuple):
    """A subscriber of a topic and the info it set there (empty if none)."""

    id: str
    info: bytes


class Page(NamedTuple):
    """A page of subscribers; `next` is the `after` of the next page, None after the last."""

    members: List[Member]
    next: Optional[str]


def _position(wit) -> Position:
    return Position(wit.epoch, wit.offset)


def _position_or_error(call) -> Union[Position, str]:
    result = value_or_error(call)
    return result if isinstance(result, str) else _position(result)


def enable_history(topic: str, max_messages: int, max_age_ms: int = 0) -> Optional[str]:
    """Turns history on for `topic` (or changes its bounds): the last `max_messages` (at most
    the host's bound), none older than `max_age_ms` (0: no age bound). Cheap and idempotent:
    call it whenever a room opens. An error name ("bad-name", "unsupported") or None."""
    bounds = _history.Bounds(max_messages, max_age_ms)
    return value_or_error(lambda: _history.enable(topic, bounds))


def history_head(topic: str) -> Union[Position, str]:
    """The position of the last message kept for `topic` (offset 0 before the first), or
    "off" without history."""
    return _position_or_error(lambda: _history.head(topic))


def publish_kept(topic: str, data: Data, include_self: bool = False) -> Union[Published, str]:
    """Publishes as `publish` does, to a topic with history: the position the message got and
    how many it was queued to, or an error name."""
    result = value_or_error(lambda: _history.publish(topic, message(data), include_self))
    if isinstance(result, str):
        return result
    at, count = result
    return Published(_position(at), count)


def subscribe_from(
    topic: str, *, after: Optional[Position] = None, last: Optional[int] = None
) -> Union[Position, str]:
    """Subscribes to `topic` from after the position `after` (a client's last one), or from the
    `last` n messages kept (give one of them): the host replays what is kept from there on,
    then the live messages, without calling the handler. The topic's head then, or an error
    name: "gone" when `after` is no longer kept (nothing was subscribed: start from `last`)."""
    if (after is None) == (last is None):
        raise TypeError("subscribe_from takes after=Position or last=n, one of them")
    if after is not None:
        start = _history.Start_After(_history.Position(after[0], after[1]))
    else:
        start = _history.Start_Last(last)
    return _position_or_error(lambda: _history.subscribe_from(topic, start))


def history(topic: str, n: int) -> Union[List[Entry], str]:
    """The last `n` messages kept for `topic`, oldest first, or an error name."""
    result = value_or_error(lambda: _history.last(topic, n))
    if isinstance(result, str):
        return result
    return [Entry(_position(entry.position), from_message(entry.message)) for entry in result]


def set_presence(topic: str, info: Union[str, bytes]) -> Optional[str]:
    """Sets this connection's info in `topic` (it must be subscribed), shown with it in
    `members`: a nickname, say (at most 256 bytes). "not-subscribed", "too-large" or None."""
    data = text_or_bytes(info)
    return value_or_error(lambda: _presence.set_info(topic, data))


def members(topic: str, after: Optional[str] = None, limit: int = 1000) -> Page:
    """`topic`'s subscribers on this runner in id order, after the id `after` if given, at most
    `limit` (at most 1000)."""
    page = _presence.members(topic, after, limit)
    return Page([Member(m.id, bytes(m.info)) for m in page.members], page.next)
