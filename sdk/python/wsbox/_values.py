"""What the SDK's modules share: WIT messages from Python values, and WIT errors as values
(the generated bindings raise them as `Err`)."""

from typing import Callable, TypeVar, Union

from componentize_py_types import Err
from wit_world.imports.types import Message_Binary, Message_Text

Data = Union[str, bytes]
"""A message: `str` (text) or `bytes` (binary)."""

T = TypeVar("T")


def message(data: Data):
    """The WIT `message` for a `str` (text) or bytes (binary)."""
    if isinstance(data, str):
        return Message_Text(data)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return Message_Binary(bytes(data))
    raise TypeError("a message is a str (text) or bytes (binary)")


def from_message(wit) -> Data:
    """A WIT `message` as `str` (text) or `bytes` (binary)."""
    return wit.value if isinstance(wit, Message_Text) else bytes(wit.value)


def text_or_bytes(data: Union[str, bytes, bytearray, memoryview]) -> bytes:
    """Bytes from a `str` (UTF-8) or bytes."""
    return data.encode() if isinstance(data, str) else bytes(data)


def value_or_error(call: Callable[[], T]) -> Union[T, str]:
    """`call()`'s value, or the name of the WIT error it raised ("backpressure", "gone", …)."""
    try:
        return call()
    except Err as error:
        value = error.value
        return getattr(value, "name", str(value)).lower().replace("_", "-")
