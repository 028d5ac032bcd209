"""Fixtures for the Python peers: the `examples/echo_server.rs` binary, run as a process on
an ephemeral loopback port and killed when the tests that use it are done; the Autobahn
summary lines printed at the end of the run."""

import subprocess

import pytest

from announced import announced
from binaries import BIN_DIR, PREBUILT, ROOT

ECHO_SERVER = BIN_DIR / "examples" / "echo_server"
AUTOBAHN_SUMMARIES = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def workspace_built():
    """Builds the binaries and examples the suites run, so pytest can run alone (in
    target/debug). The targets and features are those of `cargo test --workspace --all-targets`,
    which makes this a no-op after it; building one package alone (`-p`) would unify features
    differently and rebuild wasmtime. Under test.sh, which builds them itself with its own
    profile and package selections (WSBOX_BIN_DIR, see binaries.py), nothing is built here."""
    if PREBUILT:
        return
    subprocess.run(
        ["cargo", "build", "--quiet", "--workspace", "--bins", "--examples", "--tests"],
        cwd=ROOT,
        check=True,
        timeout=1800,
    )


@pytest.fixture(scope="session")
def echo_server_binary(workspace_built):
    return ECHO_SERVER


@pytest.fixture(scope="module")
def echo_server(echo_server_binary):
    """Starts the echo server on 127.0.0.1:0; yields (host, port)."""
    with announced(
        [echo_server_binary, "--listen", "127.0.0.1:0"],
        r"listening on ws://(127\.0\.0\.1):(\d+)/\n",
    ) as (_, match):
        yield match[1], int(match[2])


@pytest.fixture
def autobahn_summary(request):
    """Records a one-line summary that is printed at the end of the run, even under `-q`
    (which hides what passing tests print)."""
    return request.config.stash.setdefault(AUTOBAHN_SUMMARIES, []).append


def pytest_terminal_summary(terminalreporter, config):
    summaries = config.stash.get(AUTOBAHN_SUMMARIES, [])
    if summaries:
        terminalreporter.section("Autobahn TestSuite (kosoku)")
        for line in summaries:
            terminalreporter.write_line(line)
