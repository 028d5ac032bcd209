"""wsbox-runner's app world against the Python `websockets` client (asyncio), serving
guests/test-handler (its path-selected modes are listed in guests/test-handler/src/lib.rs):
ids and send-to, close-other, alarms, and a topic with 10,000 subscribers."""

import asyncio
import pathlib
import resource
import subprocess
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from announced import announced
from binaries import BIN_DIR

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNNER = BIN_DIR / "wsbox-runner"
HANDLER = ROOT / "target" / "wasm" / "wasm32-wasip2" / "guest" / "guest_test_handler.wasm"
TIMEOUT = 10
SUBSCRIBERS = 10_000
# Loopback source addresses the subscribers are spread over: 313 each, under the runner's
# default per-address cap (a quarter of --max-connections), as real clients would be.
SOURCES = 32
PUBLISHES = 20


@pytest.fixture(scope="module")
def test_handler(workspace_built):
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "guest-test-handler", "--target", "wasm32-wasip2",
         "--profile", "guest", "--target-dir", "target/wasm"],
        cwd=ROOT, check=True, timeout=1800,
    )
    return HANDLER


def rss_kib(pid):
    """The resident set of process `pid`, in KiB (Linux)."""
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


@pytest.fixture(scope="module")
def runner_process(test_handler):
    """The runner serving the test handler on 127.0.0.1:0; yields (address, pid)."""
    with announced(
        [RUNNER, "--listen", "127.0.0.1:0", "--handler", test_handler,
         "--guest-memory", "16MiB", "--max-message-size", "1MiB", "--max-frame-size", "1MiB"],
        r"wsbox-runner listening on http://(127\.0\.0\.1:\d+)/\n",
        stderr=subprocess.DEVNULL,
    ) as (process, match):
        yield match[1], process.pid
        process.terminate()
        assert process.wait(timeout=TIMEOUT) == 0


@pytest.fixture
def runner(runner_process):
    """The runner's address."""
    return runner_process[0]


def client(runner, path, **kwargs):
    return connect(f"ws://{runner}{path}", open_timeout=TIMEOUT, close_timeout=TIMEOUT,
                   compression=None, proxy=None, ping_interval=None, **kwargs)


async def ask(ws, command):
    await ws.send(command)
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


def test_send_to_and_close_other_by_id(runner):
    async def scenario():
        async with client(runner, "/id") as receiver, \
                client(runner, "/send-to") as sender, \
                client(runner, "/close-other") as closer:
            receiver_id = await asyncio.wait_for(receiver.recv(), TIMEOUT)
            sender_id = await asyncio.wait_for(sender.recv(), TIMEOUT)
            await asyncio.wait_for(closer.recv(), TIMEOUT)
            assert len(receiver_id) == 32 and receiver_id != sender_id
            for i in range(10):
                assert await ask(sender, f"{receiver_id}:hello {i}") == "ok"
            for i in range(10):
                assert await asyncio.wait_for(receiver.recv(), TIMEOUT) == f"hello {i}"
            # The receiver's own echo still works.
            assert await ask(receiver, "echo") == "echo"

            assert await ask(closer, f"{receiver_id} 4002 bye now") == "ok"
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(receiver.recv(), TIMEOUT)
            assert closed.value.rcvd.code == 4002 and closed.value.rcvd.reason == "bye now"
            # Once its close handshake is over, the id is gone.
            deadline = time.monotonic() + TIMEOUT
            while (answer := await ask(sender, f"{receiver_id}:late")) != "gone":
                assert answer == "closed" and time.monotonic() < deadline, answer
                await asyncio.sleep(0.05)

    asyncio.run(scenario())


def test_an_alarm_fires_on_a_silent_connection(runner):
    async def scenario():
        started = time.monotonic()
        async with client(runner, "/alarm?ms=400") as ws:
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "alarm"
            assert time.monotonic() - started >= 0.4
            assert await ask(ws, "300") == "set 300"
            assert await ask(ws, "cancel") == "cancelled"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 1.0)

    asyncio.run(scenario())


def raise_descriptor_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.fail(f"this test needs {needed} descriptors; the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def test_ten_thousand_subscribers_get_every_publish_in_order(runner_process):
    runner, pid = runner_process
    raise_descriptor_limit(SUBSCRIBERS + 256)

    async def subscribe(i, opening):
        async with opening:
            ws = await client(runner, "/topics", max_queue=PUBLISHES + 4,
                              local_addr=(f"127.0.0.{1 + i % SOURCES}", 0))
            assert await ask(ws, "sub crowd") == "subscribed"
            return ws

    async def receive_all(ws):
        return [await ws.recv() for _ in range(PUBLISHES)]

    async def scenario():
        opening = asyncio.Semaphore(256)
        started = time.monotonic()
        subscribers = await asyncio.gather(*(subscribe(i, opening) for i in range(SUBSCRIBERS)))
        opened = time.monotonic() - started
        rss = rss_kib(pid)
        try:
            async with client(runner, "/topics") as publisher:
                assert await ask(publisher, "count crowd") == f"subscribers {SUBSCRIBERS}"
                receiving = asyncio.gather(*(receive_all(ws) for ws in subscribers))
                started = time.monotonic()
                for i in range(PUBLISHES):
                    assert await ask(publisher, f"pub crowd m{i}") == f"published {SUBSCRIBERS}"
                received = await asyncio.wait_for(receiving, 60)
                delivered = time.monotonic() - started
            expected = [f"m{i}" for i in range(PUBLISHES)]
            wrong = [i for i, messages in enumerate(received) if messages != expected]
            assert not wrong, f"{len(wrong)} subscribers, e.g. {received[wrong[0]]}"
            print(f"\n{SUBSCRIBERS} subscribers opened in {opened:.1f} s (runner RSS "
                  f"{rss / 1024:.0f} MiB); {PUBLISHES * SUBSCRIBERS} deliveries in "
                  f"{delivered:.1f} s")
        finally:
            await asyncio.gather(*(ws.close() for ws in subscribers), return_exceptions=True)

    asyncio.run(scenario())
