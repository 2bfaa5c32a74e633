"""Socket.IO server benchmark: wsio against python-socketio (ASGI, uvicorn) and Node socket.io.

Every server runs pinned to core 0, freshly started for each scenario; the C
load generator (``ioload.c``, compiled on the fly) runs pinned to core 1 and
speaks Socket.IO over raw WebSocket. Scenarios:

* ``acks``: 100 clients, each emits a 32-byte ``echo`` event and awaits its ack
  before the next one; acks per second.
* ``fanout``: 1000 clients join a room; a controller client triggers bursts of
  200 broadcasts of 64 bytes to it; deliveries per second.
* ``idle``: 5000 clients connect (64 handshakes in flight at a time) and stay
  idle; server RSS growth per client and connections completed per second.

Results: a section in docs/benchmarks.md (``sio``; only for a full run) and raw
JSON in bench/results/.

    .venv/bin/python bench/sio/run.py [--duration S] [--warmup S] [--rounds N]
                                      [--only NAME ...] [--profile auto|always|never]
                                      [--no-docs]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as sc  # bench/sio/common.py
from common import PAR, Bench, Metric, Server, Target

HERE = Path(__file__).resolve().parent
SERVERS_DIR = HERE / "servers"
SUBJECT = "wsio"
REFS = ["python-socketio", "node"]

ACK_CLIENTS, ACK_SIZE = 100, 32
FAN_CLIENTS, FAN_MSGS, FAN_SIZE = 1000, 200, 64
IDLE_CLIENTS, IDLE_CONCURRENCY, IDLE_WARM = 5000, 64, 50
SETTLE = 2.0
"""Seconds between the last idle client connecting and the RSS reading."""

SCENARIOS = ["acks", "fanout", "idle"]
METRICS = [
    Metric(
        "acks",
        "acks",
        f"(a) acks, {ACK_CLIENTS} clients x 1 event of {ACK_SIZE} B awaiting its ack",
        "acks/s",
        targets=(Target("node", PAR),),
    ),
    Metric(
        "fanout",
        "fanout",
        f"(b) broadcast to {FAN_CLIENTS} clients in a room, bursts of {FAN_MSGS} x {FAN_SIZE} B",
        "deliveries/s",
        targets=(Target("node", PAR),),
    ),
    Metric(
        "rss",
        "idle",
        f"(c) server RSS growth per idle client, {IDLE_CLIENTS} clients",
        "KiB/client",
        higher=False,
        decimals=1,
        targets=(Target(None, 24.0),),
    ),
    Metric(
        "connects",
        "idle",
        f"(c) connections accepted, {IDLE_CLIENTS} clients, {IDLE_CONCURRENCY} at a time",
        "connects/s",
        targets=(Target("node", PAR),),
    ),
]


def servers() -> list[Server]:
    """Every server, wsio first."""
    return [
        *sc.wsio_servers(SERVERS_DIR / "wsio_sio.py", "sync handlers"),
        sc.python_server("python-socketio", SERVERS_DIR / "psio_sio.py"),
        sc.node_server("socket.io", SERVERS_DIR / "node_sio.js"),
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
    with sc.running(server, workdir, profile=profile) as (proc, port):
        if scenario == "acks":
            options = ["--conns", str(ACK_CLIENTS), "--size", str(ACK_SIZE)]
            return {"acks": sc.rate_cell(gen, "sio-acks", port, proc.pid, options, args)}
        if scenario == "fanout":
            options = [
                "--conns",
                str(FAN_CLIENTS),
                "--msgs",
                str(FAN_MSGS),
                "--size",
                str(FAN_SIZE),
            ]
            fanout = sc.rate_cell(gen, "sio-fanout", port, proc.pid, options, args, slack=120)
            return {"fanout": fanout}
        return _idle(gen, port, proc.pid)


def _idle(gen: Path, port: int, pid: int) -> dict[str, dict[str, Any]]:
    """Warm the server up, read its RSS, connect the idle clients, read it again."""
    warm = sc.run_generator(
        gen, "sio-idle", port, pid, ["--conns", str(IDLE_WARM), "--hold", "0"], timeout=60
    )
    time.sleep(1.0)
    before = sc.rss_kib(pid)
    seen: dict[str, int] = {}

    def on_line(phase: str, stdin: IO[str] | None) -> None:
        if phase == "connected":
            time.sleep(SETTLE)
            seen["after"] = sc.rss_kib(pid)
            sc.close_quietly(stdin)  # the generator lets its clients go and reports

    res = sc.run_generator(
        gen,
        "sio-idle",
        port,
        pid,
        ["--conns", str(IDLE_CLIENTS), "--concurrency", str(IDLE_CONCURRENCY)],
        timeout=240,
        on_line=on_line,
        keep_stdin=True,
    )
    if warm.get("errors"):
        res = {**res, "errors": res.get("errors", 0) + warm["errors"], "error": warm["error"]}
    connected = res.get("phases", {}).get("connected", {})
    conns, secs = connected.get("conns", 0), connected.get("seconds", 0)
    res["rss_before_kib"], res["rss_after_kib"] = before, seen.get("after", 0)
    if conns != IDLE_CLIENTS and not res.get("errors"):
        res = {**res, "errors": 1, "error": f"only {conns} of {IDLE_CLIENTS} clients connected"}
    per_client = (seen.get("after", before) - before) / conns if conns else 0.0
    return {
        "rss": sc.cell(per_client, res, counted=False),
        "connects": sc.cell(conns / secs if secs else 0.0, res, counted=False),
    }


PROFILE_TITLES = {
    "acks": "(a) acks",
    "fanout": "(b) broadcast fan-out",
    "idle": f"(c) connecting {IDLE_CLIENTS} clients",
}


def markdown(report: dict[str, Any]) -> str:
    """The ``sio`` section of docs/benchmarks.md."""
    lines = sc.section_head(
        "Socket.IO server",
        report,
        "Socket.IO spoken over raw WebSocket, every reply checked byte for byte",
        "WebSocket transport only, no compression anywhere, default heartbeat (25 s). The "
        "Python servers run on uvloop: wsio on its built-in HTTP server, python-socketio as "
        f"its ASGI app under uvicorn {sc.dist_version('uvicorn')} (httptools, "
        "websockets-sansio, log level warning). Handlers: `echo` returns its argument as the "
        "ack, `join` joins the named room then acks, `blast` emits `msg` to the room. wsio "
        'and python-socketio run `async def` handlers; the "sync handlers" column is wsio '
        "with plain functions (which it calls inline), like Node's callbacks.",
    )
    lines += sc.results_markdown(report, METRICS, SUBJECT, ["wsio-sync"], REFS)
    lines += [
        "",
        "How each number is made: (a) each client keeps exactly one "
        '`42<id>["echo","<32 B>"]` outstanding and sends the next when '
        '`43<id>["<same 32 B>"]` comes back. (b) the room members join with an acked '
        "`join` event; then a controller client (not in the room) emits 200 `blast` events "
        "at once, each making the server emit `msg` to the room; when every member has "
        "received every message of the burst exactly once the next burst goes; deliveries "
        f"are counted over the window. (c) after a {IDLE_WARM}-client warm-up the server's "
        f"VmRSS is read, {IDLE_CLIENTS} clients connect (WebSocket handshake, open packet, "
        '`40`, `40{"sid":...}`) and RSS is read again '
        f"{SETTLE:g} s after the last one; the connect rate is clients divided by the time "
        "from the first connect to the last `40{...}` reply.",
    ]
    lines += sc.profiles_markdown(report, PROFILE_TITLES)
    return "\n".join(lines).rstrip() + "\n"


BENCH = Bench(
    section="sio",
    description=__doc__.split("\n\n")[0],
    subject=SUBJECT,
    servers=servers(),
    scenarios=SCENARIOS,
    metrics=METRICS,
    measure=measure,
    markdown=markdown,
    nofile=2 * IDLE_CLIENTS + 256,
)

if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(sc.main(BENCH))
