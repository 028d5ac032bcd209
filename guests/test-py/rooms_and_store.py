"""The `history`, `presence` and `store` commands of guests/test-py, answered exactly as
guests/test-js and guests/test-rust answer them (test-js's rooms.js lists them;
host-runner/tests/common/sdk_imports.rs drives all three); an error is answered with its name
("gone", "bad-key", …), as the SDK returns it. `-` stands for none (an `after`, an
`expected`, a `new`), or for the empty prefix."""

from typing import Callable, List, Optional

import wsbox
from wsbox import store


def _none(word: str) -> Optional[str]:
    return None if word == "-" else word


def _at(position: wsbox.Position) -> str:
    return f"{position.epoch} {position.offset}"


def _data(value) -> str:
    return value if isinstance(value, str) else f"binary:{len(value)}"


def _answer(result, format: Callable) -> str:
    """`format(result)`, or the error's name."""
    return result if isinstance(result, str) else format(result)


def _kept(result) -> str:
    return _answer(result, lambda k: f"position {_at(k.position)} count {k.count}")


def _ttl(words: List[str], i: int) -> Optional[int]:
    return int(words[i]) if len(words) > i else None


def rooms_or_store(words: List[str]) -> Optional[str]:
    """The answer to a command of the list in guests/test-js/rooms.js; None for any other."""
    verb, args = words[0], words[1:] + [""] * 4
    a, b, c, d = args[:4]
    rest = " ".join(words[2:])
    if verb == "history":
        return wsbox.enable_history(a, int(b), int(c)) or "ok"
    if verb == "head":
        return _answer(wsbox.history_head(a), lambda head: f"head {_at(head)}")
    if verb == "pubkept":
        return _kept(wsbox.publish_kept(a, rest))
    if verb == "pubkeptbin":
        return _kept(wsbox.publish_kept(a, rest.encode()))
    if verb == "from":
        after = wsbox.Position(b, int(c))
        return _answer(wsbox.subscribe_from(a, after=after), lambda h: f"from {_at(h)}")
    if verb == "fromlast":
        return _answer(wsbox.subscribe_from(a, last=int(b)), lambda h: f"from {_at(h)}")
    if verb == "kept":
        return _answer(wsbox.history(a, int(b)), lambda entries: "|".join(
            ["kept " + ",".join(str(e.position.offset) for e in entries)]
            + [_data(e.data) for e in entries]))
    if verb == "info":
        return wsbox.set_presence(a, rest) or "ok"
    if verb == "members":
        page = wsbox.members(a, _none(b), int(c))
        listed = ",".join(f"{m.id}={m.info.decode()}" for m in page.members)
        return f"members {listed}" + ("" if page.next is None else f" next {page.next}")
    if verb == "set":
        return store.set(a, b, c, _ttl(words, 4)) or "ok"
    if verb == "big":
        return store.set(a, b, bytes(1024 * 1024 + 1)) or "ok"
    if verb == "get":
        value = store.get(a, b)
        if value is None:
            return "unset"
        return _answer(value, lambda data: f"value {data.decode()}")
    if verb == "del":
        return str(store.delete(a, b)).lower()
    if verb == "keys":
        found = store.keys(a, _none(b) or "", _none(c), int(d))
        return _answer(found, lambda keys: "keys " + ",".join(keys))
    if verb == "incr":
        return _answer(store.increment(a, b, int(c)), lambda total: f"sum {total}")
    if verb == "cas":
        swapped = store.compare_and_swap(a, b, _none(c), _none(d), _ttl(words, 5))
        return str(swapped).lower()
    return None
