"""An echo in Python: every text and binary message back to its sender, on any path, and a
short text page for a plain GET. Built with sdk/python (scripts/build-guest.sh echo-py)."""

import wsbox


class Handler(wsbox.Handler):
    def handle(self, request):
        if wsbox.is_upgrade(request):
            return wsbox.accept(request)
        return wsbox.respond(200, "wsbox echo (Python)\n")

    def on_message(self, data):
        wsbox.send(data)
