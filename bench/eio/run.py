"""Engine.IO server benchmark: wsio against python-engineio (ASGI, uvicorn) and Node engine.io.

Every server runs pinned to core 0, freshly started for each scenario; the C
load generator (``bench/sio/ioload.c``, compiled on the fly) runs pinned to
core 1 and speaks Engine.IO over raw HTTP and WebSocket. Scenarios:

* ``sessions``: 32 clients open sessions one after the other, each a polling
  handshake, a WebSocket upgrade (``2probe``/``3probe``/``5``), one message
  echoed over the WebSocket, and a close; sessions per second.
* ``polling``: 16 polling sessions, each POSTing 16 messages of 32 bytes per
  payload and reading the echoes through long-poll GETs; messages per second.

Results: a section in docs/benchmarks.md (``eio``; only for a full run) and raw
JSON in bench/results/.

    .venv/bin/python bench/eio/run.py [--duration S] [--warmup S] [--rounds N]
                                      [--only NAME ...] [--profile auto|always|never]
                                      [--no-docs]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sio"))
import common as sc  # bench/sio/common.py
from common import PAR, Bench, Metric, Server, Target

HERE = Path(__file__).resolve().parent
SERVERS_DIR = HERE / "servers"
SUBJECT = "wsio"
REFS = ["python-engineio", "node"]

SESSION_SLOTS = 32
POLL_SESSIONS, POLL_BATCH, POLL_SIZE = 16, 16, 32

SCENARIOS = ["sessions", "polling"]
METRICS = [
    Metric(
        "sessions",
        "sessions",
        f"sessions opened (handshake + upgrade), {SESSION_SLOTS} at a time",
        "sessions/s",
        targets=(Target("node", PAR), Target("python-engineio", 2.0)),
    ),
    Metric(
        "polling",
        "polling",
        f"polling echo, {POLL_SESSIONS} sessions x {POLL_BATCH} messages of {POLL_SIZE} B per POST",
        "messages/s",
        targets=(Target("node", PAR), Target("python-engineio", 2.0)),
    ),
]


def servers() -> list[Server]:
    """Every server, wsio first."""
    return [
        *sc.wsio_servers(SERVERS_DIR / "wsio_eio.py", "sync handler"),
        sc.python_server("python-engineio", SERVERS_DIR / "peio_eio.py"),
        sc.node_server("engine.io", SERVERS_DIR / "node_eio.js"),
    ]


def measure(
    server: Server,
    scenario: str,
    gen: Path,
    args: argparse.Namespace,
    workdir: Path,
    profile: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Start ``server``, run one scenario against it, stop it; returns cells by metric key."""
    if scenario == "sessions":
        mode, options = "eio-sessions", ["--concurrency", str(SESSION_SLOTS)]
    else:
        mode = "eio-polling"
        options = [
            "--conns",
            str(POLL_SESSIONS),
            "--batch",
            str(POLL_BATCH),
            "--size",
            str(POLL_SIZE),
        ]
    with sc.running(server, workdir, profile=profile) as (proc, port):
        return {scenario: sc.rate_cell(gen, mode, port, proc.pid, options, args)}


PROFILE_TITLES = {"sessions": "Sessions opened", "polling": "Polling echo"}


def markdown(report: dict[str, Any]) -> str:
    """The ``eio`` section of docs/benchmarks.md."""
    lines = sc.section_head(
        "Engine.IO server",
        report,
        "Engine.IO spoken over raw HTTP/1.1 and WebSocket, every reply checked",
        "Default transports (polling and websocket, upgrades allowed), HTTP and WebSocket "
        "compression off, default heartbeat. The Python servers run on uvloop: wsio on its "
        "built-in HTTP server, python-engineio as its ASGI app under uvicorn "
        f"{sc.dist_version('uvicorn')} (httptools, websockets-sansio, log level warning). "
        "The `message` handler sends each message back: `async def` awaiting `send` in wsio "
        'and python-engineio, a plain function calling `session.write` in the "sync '
        'handler" column, a callback in Node.',
    )
    lines += sc.results_markdown(report, METRICS, SUBJECT, ["wsio-sync"], REFS)
    lines += [
        "",
        f"How each number is made: sessions: {SESSION_SLOTS} client slots, each in a loop: "
        "`GET /engine.io/?EIO=4&transport=polling` on a keep-alive connection (the open "
        'packet must offer `"upgrades":["websocket"]`), a new connection upgraded to '
        "WebSocket with that `sid`, `2probe` answered by `3probe`, `5`, one message `4...` "
        "whose echo must come back over the WebSocket, then a close frame answered by the "
        "server's; a session counts when its echo arrives. Polling: "
        f"{POLL_SESSIONS} sessions, each with a long-poll GET always pending on one keep-alive "
        f"connection and a POST of {POLL_BATCH} messages (one payload, `\\x1e`-separated) on "
        "another; the next POST goes when every echo of the previous one came back through "
        "the GETs, in order and byte for byte.",
    ]
    lines += sc.profiles_markdown(report, PROFILE_TITLES)
    return "\n".join(lines).rstrip() + "\n"


BENCH = Bench(
    section="eio",
    description=__doc__.split("\n\n")[0],
    subject=SUBJECT,
    servers=servers(),
    scenarios=SCENARIOS,
    metrics=METRICS,
    measure=measure,
    markdown=markdown,
    nofile=4 * SESSION_SLOTS + 256,
)

if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(sc.main(BENCH))
