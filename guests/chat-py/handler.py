"""The chat of guests/chat in Python: rooms by path, a nickname from the query, join and
leave notices with the member count, rooms that remember their last 50 frames, pages that
resume after a dropped socket, a member list, and the same page (guests/chat/src/page.html)
and wire format, so that the same browser test runs against all three. See
guests/chat/src/lib.rs for the HTTP routes and the JSON frames. Built with sdk/python
(scripts/build-guest.sh chat-py).

The handler keeps no state of its own: the nickname lives in the connection's attachment,
the member count is the topic's subscriber count and the member list its presence, so an
instance made after hibernation has all it needs.
"""

import json
import os
import re
import sys
from urllib.parse import unquote_plus

import wsbox

MAX_ROOM = 64
MAX_NICK = 24
MAX_TEXT = 2000
# Messages a room keeps, and a newcomer gets before the live ones.
HISTORY = 50
# Members listed in a newcomer's `hello`, at most.
MAX_LISTED = 1000
ROOM = re.compile(r"^/chat/([A-Za-z0-9._-]{1,%d})$" % MAX_ROOM)
AFTER = re.compile(r"^after=([0-9a-fA-F]{16})-([0-9]+)$")


def _page():
    """guests/chat/src/page.html, read when the component is built: componentize-py runs
    this module's top level then and keeps the result (build-guest.sh gives the build
    `guests/` on its path; the component itself has no filesystem)."""
    for root in sys.path:
        path = os.path.join(root, "chat", "src", "page.html")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as page:
                return page.read()
    raise RuntimeError("guests/chat/src/page.html is not on the build's path")


PAGE = _page()


def nick(query):
    """The nickname asked for in the query: letters, digits, `-`, `_`, `.`, at most 24."""
    for pair in query.split("&"):
        if pair.startswith("nick="):
            wanted = unquote_plus(pair[5:])
            kept = "".join(c for c in wanted if c.isalnum() or c in "-_.")[:MAX_NICK]
            return kept or None
    return None


def after(query):
    """The position a reconnecting page asks to resume after (`after=EPOCH-OFFSET`), if
    well-formed."""
    for pair in query.split("&"):
        if pair.startswith("after="):
            match = AFTER.match(pair)
            return wsbox.Position(match[1], int(match[2])) if match else None
    return None


def join(topic, resume):
    """Subscribes to the room with its history on: from `resume` (a page reconnecting) if the
    host still keeps it, else the last HISTORY messages. Without history (a runner of a
    cluster) a plain subscription, and the page is told so by an empty epoch. (head, resumed),
    or None when the host refused the subscription."""
    if wsbox.enable_history(topic, HISTORY) is not None:
        return None if wsbox.subscribe(topic) else (wsbox.Position("", 0), False)
    if resume is not None:
        head = wsbox.subscribe_from(topic, after=resume)
        if not isinstance(head, str):
            return head, True
        if head != "gone":
            return None
    head = wsbox.subscribe_from(topic, last=HISTORY)
    return None if isinstance(head, str) else (head, False)


def member_nicks(topic):
    """The nicknames of the room's members, from presence (at most MAX_LISTED)."""
    nicks = []
    next_id = None
    while len(nicks) < MAX_LISTED:
        page = wsbox.members(topic, next_id, 1000)
        nicks += [member.info.decode("utf-8", "replace") for member in page.members]
        next_id = page.next
        if next_id is None:
            break
    return nicks[:MAX_LISTED]


def frame(**fields):
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def my_nick():
    return wsbox.attachment().decode("utf-8", "replace")


class Handler(wsbox.Handler):
    def handle(self, request):
        path, _, query = request.uri.partition("?")
        if path == "/":
            target = f"/chat/lobby?{query}" if query else "/chat/lobby"
            body = '<!doctype html><a href="/chat/lobby">the lobby</a>\n'
            return wsbox.respond(
                302, body, {"location": target, "content-type": "text/html; charset=utf-8"}
            )
        if not ROOM.match(path):
            return wsbox.respond(404, "no such room\n", {"content-type": "text/plain; charset=utf-8"})
        if wsbox.is_upgrade(request):
            return wsbox.accept(request)
        if request.method != "GET":
            return wsbox.respond(
                405, "GET only\n", {"content-type": "text/plain; charset=utf-8", "allow": "GET"}
            )
        return wsbox.respond(200, PAGE, {"content-type": "text/html; charset=utf-8"})

    def on_open(self):
        info = wsbox.request()
        name = nick(info.query) or f"guest-{wsbox.self_id()[-4:]}"
        joined = join(info.path, after(info.query)) if wsbox.set_attachment(name) is None else None
        if joined is None:
            wsbox.close(1011, "the host's limits are too small")
            return
        head, resumed = joined
        # Shown with this member in the others' `hello`; fails only if not subscribed.
        wsbox.set_presence(info.path, name)
        # Sent before the history the host replays once this call returns.
        hello = frame(type="hello", nick=name, members=member_nicks(info.path),
                      epoch=head.epoch, head=head.offset, resumed=resumed)
        wsbox.send(hello)
        count = wsbox.subscribers(info.path)
        wsbox.publish(info.path, frame(type="join", nick=name, count=count), True)

    def on_message(self, data):
        if not isinstance(data, str):
            wsbox.close(1003, "text only")
            return
        if data:
            said = data[:MAX_TEXT]
            wsbox.publish(wsbox.request().path, frame(type="message", nick=my_nick(), text=said), True)

    def on_close(self, code, reason, clean):
        path = wsbox.request().path
        # Not subscribed means on_open gave up: no one was told of a join.
        if wsbox.unsubscribe(path):
            count = wsbox.subscribers(path)
            wsbox.publish(path, frame(type="leave", nick=my_nick(), count=count), False)
