"""What the Python benchmark scripts here share: a process's RSS and CPU from /proc, and
quantiles of latency samples. Imported by scripts run as `python3 scripts/NAME.py` (their
folder is then on the path)."""

import os

_TICK = os.sysconf("SC_CLK_TCK")


def rss(pid):
    """Resident bytes of process `pid`."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid):
    """User and system CPU seconds process `pid` has used."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def quantile(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
