"""Where the suites find the workspace's native binaries (the runner, the examples).

Run alone, pytest builds them in target/debug (conftest's `workspace_built`). test.sh builds
every binary once, for all the suites, with its own profile, and names that directory in
WSBOX_BIN_DIR (relative to the workspace root, e.g. target/release) before running pytest."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN_DIR = ROOT / os.environ.get("WSBOX_BIN_DIR", "target/debug")
# Whether test.sh built the binaries already (so `workspace_built` must not build others).
PREBUILT = "WSBOX_BIN_DIR" in os.environ
