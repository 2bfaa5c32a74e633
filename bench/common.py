"""Shared pieces of the benchmarks: paths, process helpers, CPU accounting, docs output."""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository root."""
RESULTS_DIR = ROOT / "bench" / "results"
"""Raw JSON results (not versioned)."""
DOCS_FILE = ROOT / "docs" / "benchmarks.md"

sys.path.insert(0, str(ROOT / "tests"))
from support.procs import (  # noqa: E402  (the test helpers live under tests/)
    NODE_DIR,
    free_port,
    node_env,
    require_binary,
    start,
    stop,
    wait_listening,
)

__all__ = [
    "DOCS_FILE",
    "NODE_DIR",
    "RESULTS_DIR",
    "ROOT",
    "free_port",
    "machine",
    "node_env",
    "replace_section",
    "require_binary",
    "start",
    "stop",
    "usage",
    "wait_listening",
]

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return raw[raw.rindex(")") + 2 :].split()


def _waited(pid: int | str) -> int:
    """Nanoseconds the threads of ``pid`` spent runnable but waiting for a CPU."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total


def usage(pid: int, *, group: bool = False) -> tuple[float, float]:
    """``(cpu, waited)`` seconds so far for ``pid``, all threads included.

    ``cpu`` is user + system time; ``waited`` is the time its threads were ready
    to run but another task held the CPU: a sign that something else competed
    for the core. With ``group=True``, add up every live process of the process
    group ``pid`` leads (a server started in its own session and any workers it
    forked).
    """
    pids: list[int | str] = [pid]
    if group:
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _stat_fields(entry)
                if fields is not None and int(fields[2]) == pid:  # field 5: process group
                    pids.append(entry)
    ticks, waited = 0, 0
    for p in pids:
        fields = _stat_fields(p)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
            waited += _waited(p)
    return ticks / _TICK, waited / 1e9


def machine() -> dict[str, object]:
    """What the numbers were measured on: cores, CPU model, OS, Python."""
    model = "unknown CPU"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if found:
            model = found.group(1).strip()
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


DOCS_HEADER = """\
# Benchmarks

Produced by the scripts under `bench/` (how to run them: `bench/README.md`). Each
section is rewritten by its script. The machine is shared and noisy, so absolute
numbers move from run to run: compare the ratios between servers measured in the
same run.
"""


def replace_section(name: str, body: str, path: Path = DOCS_FILE) -> None:
    """Put ``body`` between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``path``.

    The section is replaced when present and appended otherwise; a missing file is
    created with a short header first.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.strip()}\n{end}\n"
    text = path.read_text() if path.exists() else DOCS_HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
