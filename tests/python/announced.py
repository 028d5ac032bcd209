"""Starting a server process that announces its address in its first line of output."""

import contextlib
import pathlib
import re
import select
import subprocess

import pytest

STARTUP_TIMEOUT = 30


@contextlib.contextmanager
def announced(args, pattern, *, stream="stdout", stderr=None, timeout=STARTUP_TIMEOUT):
    """Starts `args` (stdout piped, stdin closed) and waits up to `timeout` s for the first
    line on `stream` ("stdout", or "stderr", which is then piped too; otherwise stderr goes
    to `stderr`), which must match the regex `pattern` in full. Yields (process, match);
    kills the process on the way out."""
    process = subprocess.Popen(
        [str(arg) for arg in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stream == "stderr" else stderr,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        output = getattr(process, stream)
        ready, _, _ = select.select([output], [], [], timeout)
        line = output.readline() if ready else ""
        match = re.fullmatch(pattern, line)
        if not match:
            name = pathlib.Path(args[0]).name
            pytest.fail(f"{name} did not announce its address: {line!r}")
        yield process, match
    finally:
        process.kill()
        process.wait(timeout=STARTUP_TIMEOUT)
