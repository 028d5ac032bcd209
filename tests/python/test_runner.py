"""wsbox-runner (serving its embedded echo handler) against the Python `websockets` client."""

import subprocess

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from announced import announced
from binaries import BIN_DIR

RUNNER = BIN_DIR / "wsbox-runner"
TIMEOUT = 10


@pytest.fixture(scope="module")
def runner(workspace_built):
    """Starts the runner on 127.0.0.1:0, yields its address, and stops it with SIGTERM (it
    must exit 0)."""
    with announced(
        [RUNNER, "--listen", "127.0.0.1:0",
         "--max-message-size", "64KiB", "--max-frame-size", "64KiB"],
        r"wsbox-runner listening on http://(127\.0\.0\.1:\d+)/\n",
        stderr=subprocess.DEVNULL,
    ) as (process, match):
        yield match[1]
        process.terminate()
        assert process.wait(timeout=TIMEOUT) == 0


def test_echoes_text_and_binary(runner):
    with connect(f"ws://{runner}/", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        for text in ["hello", "", "ünïcödé ✓" * 100]:
            ws.send(text)
            assert ws.recv(timeout=TIMEOUT) == text
        blob = bytes(range(256)) * 200
        ws.send(blob)
        assert ws.recv(timeout=TIMEOUT) == blob


def test_fragmented_message_is_reassembled(runner):
    with connect(f"ws://{runner}/", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send(["frag", "men", "ted"])
        assert ws.recv(timeout=TIMEOUT) == "fragmented"


def test_ping_is_answered(runner):
    with connect(f"ws://{runner}/", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        pong = ws.ping(b"py")
        assert pong.wait(timeout=TIMEOUT)


def test_close_code_is_echoed(runner):
    with connect(f"ws://{runner}/", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.close(code=4001, reason="done")
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 4001


def test_message_over_the_limit_closes_with_1009(runner):
    with connect(f"ws://{runner}/", open_timeout=TIMEOUT, close_timeout=TIMEOUT,
                 max_size=None) as ws:
        ws.send(b"x" * (64 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=TIMEOUT)
        assert closed.value.rcvd.code == 1009

