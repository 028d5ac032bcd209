"""The `store` import (wit/store.wit): a key-value store the host keeps, in namespaces. Use it
as `wsbox.store.get(…)`. Keys are UTF-8, 1 to 512 bytes; values bytes (a `str` is stored as
UTF-8), at most 1 MiB; they outlive connections and runner restarts, and a write returns once
the host committed it to disk. Every call returns its result or the error's name, a `str`
("bad-key", "too-large", "quota", "full", "not-a-number", "overflow", "unavailable"); no result
is a `str`."""

from typing import List, Optional, Union

from wit_world.imports import store as _store

from ._values import text_or_bytes, value_or_error

Value = Union[str, bytes]
"""A value to store: `str` (stored as UTF-8) or bytes."""


def _maybe(value: Optional[Value]) -> Optional[bytes]:
    return None if value is None else text_or_bytes(value)


def get(namespace: str, key: str) -> Union[bytes, None, str]:
    """The value of `key`; None if unset (or its time to live is over)."""
    return value_or_error(lambda: _store.get(namespace, key))


def set(namespace: str, key: str, value: Value, ttl_ms: Optional[int] = None) -> Optional[str]:
    """Sets `key` to `value`, for `ttl_ms` milliseconds if given; None, or an error name."""
    data = text_or_bytes(value)
    return value_or_error(lambda: _store.set(namespace, key, data, ttl_ms))


def delete(namespace: str, key: str) -> Union[bool, str]:
    """Deletes `key`: whether it was set."""
    return value_or_error(lambda: _store.delete(namespace, key))


def keys(
    namespace: str, prefix: str = "", after: Optional[str] = None, limit: int = 1000
) -> Union[List[str], str]:
    """Keys starting with `prefix`, in byte order, after `after` if given, at most `limit` (at
    most 1000): pass the last one as `after` for the next page."""
    return value_or_error(lambda: _store.keys(namespace, prefix, after, limit))


def increment(namespace: str, key: str, delta: int = 1) -> Union[int, str]:
    """Adds `delta` to the decimal integer in `key` (0 if unset), in one step: the sum (a
    64-bit signed integer; past its range: "overflow")."""
    return value_or_error(lambda: _store.increment(namespace, key, delta))


def compare_and_swap(
    namespace: str,
    key: str,
    expected: Optional[Value],
    new: Optional[Value],
    ttl_ms: Optional[int] = None,
) -> Union[bool, str]:
    """Sets `key` to `new` (unsets it if None) only if it holds `expected` now (None: unset),
    in one step: whether it did."""
    before, after = _maybe(expected), _maybe(new)
    return value_or_error(lambda: _store.compare_and_swap(namespace, key, before, after, ttl_ms))
