"""The Autobahn TestSuite's own cases, driven by `kosoku` (pinned in requirements.txt),
against examples/echo_server.rs, wsbox-runner with its embedded default handler, and
`wsbox::client` (examples/autobahn_client.rs); and, but for the compression cases, against
wsbox-runner serving guests/echo-py. (guests/echo-js fails 9.1.4–9.1.6 and 9.3.x, text
messages of 4–16 MiB, with 1011: componentize-js's bindings take over the default 1 s
--guest-cpu to pass a 4 MiB string in and out; binary messages of that size pass.)

kosoku writes Autobahn's report files (`index.json` plus one JSON and HTML file per case) to
the directory given with `-o`; its exit code is 1 whenever a case is not OK, NON-STRICT or
INFORMATIONAL, so the verdicts are read from `index.json`. The echo server, the runner and
the client negotiate permessage-deflate, so 12.x and 13.x (216 cases) run compressed against
all three. Each case runs on its own connection, one at a time (`-p 1`,
kosoku's default, said explicitly: at most one connection is open at any moment, so a
per-address connection cap on the runner does not matter).
"""

import collections
import json
import pathlib
import subprocess
import sysconfig
import time

import pytest

from announced import announced
from binaries import BIN_DIR

RUNNER = BIN_DIR / "wsbox-runner"
CLIENT = BIN_DIR / "examples" / "autobahn_client"
KOSOKU = pathlib.Path(sysconfig.get_path("scripts")) / "kosoku"
# A whole run takes a minute without compression; 12.x/13.x (1,000 messages of up to 128 KiB
# per case, in a debug build) add about five. This bounds a run that hangs on a loaded machine.
SUITE_TIMEOUT = 1500
CASES = 517
# Against a Python handler: every case but the 216 of 12.x/13.x, whose
# compression is the host's alone (test_runner runs them); what reaches the guest is the
# same whole messages either way.
COMPRESSION_CASES = ["12.*", "13.*"]
GUEST_CASES = CASES - 216
# Compiling a 12–18 MB component takes seconds of CPU before the runner announces itself.
GUEST_STARTUP_TIMEOUT = 300
ROOT = pathlib.Path(__file__).resolve().parents[2]
ACCEPTED = {"OK", "INFORMATIONAL"}


def verdicts(outdir):
    """The single agent's results in `outdir/index.json`: {case id: (behavior, close)}."""
    index = json.loads((outdir / "index.json").read_text())
    assert len(index) == 1, f"expected one agent in the report, got {sorted(index)}"
    (cases,) = index.values()
    return {case: (r["behavior"], r["behaviorClose"]) for case, r in cases.items()}


def case_reports(outdir):
    """The single agent's full per-case reports in `outdir`: {case id: report}."""
    (cases,) = json.loads((outdir / "index.json").read_text()).values()
    return {
        case: json.loads((outdir / entry["reportfile"]).read_text())
        for case, entry in cases.items()
    }


def time_wait_towards(port):
    """How many loopback TCP sockets in TIME_WAIT have `port` as their remote port: the side
    that closes a connection first holds TIME_WAIT (60 s on Linux)."""
    count = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            _, _, remote, state, *_ = line.split()
            if state == "06" and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def offences(results):
    """Every case whose verdict is not OK/INFORMATIONAL for both the exchange and the close."""
    bad = []
    for case, (behavior, close) in sorted(results.items(), key=lambda c: _case_key(c[0])):
        if behavior not in ACCEPTED or close not in ACCEPTED:
            bad.append(f"{case}: {behavior} / close {close}")
    return bad


def _case_key(case):
    return [int(part) for part in case.split(".")]


def check(name, results, elapsed, autobahn_summary, cases=CASES):
    counts = collections.Counter(behavior for behavior, _ in results.values())
    closes = collections.Counter(close for _, close in results.values() if close != "OK")
    line = f"autobahn {name}: {len(results)} cases in {elapsed:.1f} s: " + ", ".join(
        f"{n} {behavior}" for behavior, n in counts.most_common()
    )
    if closes:
        line += "; close: " + ", ".join(f"{n} {close}" for close, n in closes.most_common())
    autobahn_summary(line)
    bad = offences(results)
    assert not bad, f"{name}: {len(bad)} cases failed:\n" + "\n".join(bad)
    assert len(results) == cases, f"{name}: {len(results)} cases ran, expected {cases}"


def fuzz_server(address, outdir, exclude=()):
    """Runs every case (but those matching `exclude`) against the server at `address`;
    returns (results, seconds)."""
    started = time.monotonic()
    excluded = [arg for pattern in exclude for arg in ("-x", pattern)]
    run = subprocess.run(
        [str(KOSOKU), "-m", "fuzzingclient", "-p", "1", "-o", str(outdir), *excluded, address],
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
    )
    elapsed = time.monotonic() - started
    assert (outdir / "index.json").exists(), (
        f"kosoku wrote no report (exit {run.returncode}):\n{run.stdout}\n{run.stderr}"
    )
    return verdicts(outdir), elapsed


@pytest.fixture
def runner(workspace_built):
    """wsbox-runner with its embedded default handler and default limits on 127.0.0.1:0,
    compressing every message: kosoku hands cases 12.x/13.x an uncompressed text message
    on a compressed connection as `str` (compressed ones as `bytes`), and their SHA-1 of it
    raises, so the runner's default threshold (messages under 128 bytes go uncompressed, as
    RFC 7692 allows) would end the 16- and 64-byte cases (x.y.1, x.y.2) in ERROR.
    test_runner_deflate.py checks the threshold."""
    with announced(
        [RUNNER, "--listen", "127.0.0.1:0", "--deflate-threshold", "0"],
        r"wsbox-runner listening on http://(127\.0\.0\.1:\d+)/\n",
        stderr=subprocess.DEVNULL,
    ) as (_, match):
        yield match[1]


@pytest.fixture(params=["echo-py"])
def guest_runner(request, workspace_built):
    """wsbox-runner serving guests/echo-py, built by scripts/build-guest.sh, with the same
    flags as `runner`."""
    built = subprocess.run(
        [str(ROOT / "scripts" / "build-guest.sh"), request.param],
        capture_output=True,
        text=True,
        timeout=GUEST_STARTUP_TIMEOUT,
        check=True,
    )
    wasm = built.stdout.strip().splitlines()[-1]
    with announced(
        [RUNNER, "--listen", "127.0.0.1:0", "--deflate-threshold", "0", "--handler", wasm],
        r"wsbox-runner listening on http://(127\.0\.0\.1:\d+)/\n",
        stderr=subprocess.DEVNULL,
        timeout=GUEST_STARTUP_TIMEOUT,
    ) as (_, match):
        yield request.param, match[1]


def test_runner_with_a_python_handler(guest_runner, tmp_path, autobahn_summary):
    name, address = guest_runner
    results, elapsed = fuzz_server(address, tmp_path, exclude=COMPRESSION_CASES)
    check(f"wsbox-runner with {name}", results, elapsed, autobahn_summary, cases=GUEST_CASES)


def test_echo_server(echo_server, tmp_path, autobahn_summary):
    host, port = echo_server
    results, elapsed = fuzz_server(f"{host}:{port}", tmp_path)
    check("echo_server", results, elapsed, autobahn_summary)


def test_runner(runner, tmp_path, autobahn_summary):
    results, elapsed = fuzz_server(runner, tmp_path)
    check("wsbox-runner", results, elapsed, autobahn_summary)


def test_client(workspace_built, tmp_path, autobahn_summary):
    with announced(
        [KOSOKU, "-m", "fuzzingserver", "-o", tmp_path, "127.0.0.1:0"],
        r"fuzzingserver listening on (ws://127\.0\.0\.1:\d+)\n",
        stream="stderr",
    ) as (kosoku, match):
        started = time.monotonic()
        client = subprocess.run(
            [str(CLIENT), "--server", match[1], "--agent", "wsbox"],
            capture_output=True,
            text=True,
            timeout=SUITE_TIMEOUT,
        )
        assert client.returncode == 0, f"autobahn_client failed:\n{client.stderr}"
        closed_first = time_wait_towards(int(match[1].rsplit(":", 1)[1]))
        # kosoku writes its reports and exits once the client asked for them.
        out, err = kosoku.communicate(timeout=SUITE_TIMEOUT)
        elapsed = time.monotonic() - started
        assert (tmp_path / "index.json").exists(), (
            f"kosoku wrote no report (exit {kosoku.returncode}):\n{out}\n{err}"
        )
        check("wsbox::client", verdicts(tmp_path), elapsed, autobahn_summary)
        # RFC 6455 §7.1.1: after the close handshake the server closes the TCP connection
        # first, so that it holds TIME_WAIT; a client waits for it. kosoku does not score
        # this (its reports never say it dropped a connection), but the kernel knows who
        # closed first. Only where the client failed the connection may it close first.
        failed = [
            case
            for case, report in case_reports(tmp_path).items()
            if not report["closedByMe"] or report["remoteCloseCode"] != report["localCloseCode"]
        ]
        assert closed_first <= len(failed), (
            f"the client closed TCP first on {closed_first} connections; it failed only "
            f"{len(failed)} cases"
        )
