"""The component's entry (componentize-py's app module): the `handler` export of the app
world, forwarding to the guest's `handler.Handler` (a `wsbox.Handler`), made once per
instance, i.e. per connection."""

import handler as _guest
from wit_world import exports

_instance = None


def _handler():
    global _instance
    if _instance is None:
        _instance = _guest.Handler()
    return _instance


class Handler(exports.Handler):
    def handle(self, req):
        return _handler().handle(req)

    def on_open(self):
        _handler().on_open()

    def on_message(self, msg):
        _handler().on_message(msg.value)

    def on_alarm(self):
        _handler().on_alarm()

    def on_close(self, code, reason, clean):
        _handler().on_close(code, reason, clean)
