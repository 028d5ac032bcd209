"""The runner's tests for Python handlers (host-runner/tests/python_guest.rs): imports through
the SDK, driven by text commands on a WebSocket, answered in text:

    id | echo TEXT | sub T | unsub T | pub T TEXT | count T
    and `history`, `presence` and `store` in the words of guests/test-js and test-rust, which
    answer them the same way (host-runner/tests/common/sdk_imports.rs drives all three):
    rooms_and_store.py.

A binary message comes back as it is. Built with sdk/python (scripts/build-guest.sh test-py).
"""

import wsbox

from rooms_and_store import rooms_or_store


def command(text: str) -> str:
    verb, _, rest = text.partition(" ")
    a = rest.split(" ")[0]
    if verb == "id":
        return wsbox.self_id()
    if verb == "echo":
        return rest
    if verb == "sub":
        return wsbox.subscribe(a) or "ok"
    if verb == "unsub":
        return str(wsbox.unsubscribe(a)).lower()
    if verb == "pub":
        return str(wsbox.publish(a, rest.partition(" ")[2]))
    if verb == "count":
        return str(wsbox.subscribers(a))
    answer = rooms_or_store(text.split(" "))
    return f"unknown command: {verb}" if answer is None else answer


class Handler(wsbox.Handler):
    def handle(self, request):
        if wsbox.is_upgrade(request):
            return wsbox.accept(request)
        return wsbox.respond(200, "test-py\n")

    def on_message(self, data):
        wsbox.send(command(data) if isinstance(data, str) else data)
