"""WebSocket echo benchmark: wsio against websockets, aiohttp, picows and Node ``ws``.

Every server runs pinned to core 0 and the C load generator (``wsload.c``,
compiled on the fly) to core 1. For each scenario the generator warms up, then
measures for a fixed time; the CPU each side used over that window is read from
``/proc``. A run in which the generator used more than ``GEN_LIMIT`` of its core
measured the generator, not the server, and is marked INVALID.

Results: a table in docs/benchmarks.md (section ``ws-echo``; only for a run of
every server) and raw JSON in bench/results/.

    .venv/bin/python bench/ws/run.py [--duration S] [--warmup S] [--rounds N]
                                     [--only NAME ...] [--scenario KEY ...]
                                     [--loop uvloop|asyncio] [--no-docs]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common

HERE = Path(__file__).resolve().parent
SERVERS_DIR = HERE / "servers"
MAX_SIZE = 64 * 1024 * 1024
GEN_LIMIT = 0.90
"""Generator CPU share (of one core) above which a measurement is invalid."""
NOISE_LIMIT = 0.05
"""Share of the window a side may wait for its core (other tasks on it) before the
measurement counts as noisy; noisy ones are used only when no clean one exists."""
BASELINE = "websockets"
SERVER_CORE, GEN_CORE = "0", "1"


@dataclass(frozen=True)
class Scenario:
    """One load shape: message size and type, connections, messages in flight per connection."""

    key: str
    title: str
    size: int
    binary: bool
    conns: int
    inflight: int

    @property
    def unit(self) -> str:
        """``msg/s`` for small messages, ``MB/s`` (10^6 payload bytes) for large ones."""
        return "MB/s" if self.binary else "msg/s"

    def rate(self, result: dict[str, Any]) -> float:
        """Throughput of a generator result in this scenario's unit."""
        if not result["seconds"]:
            return 0.0
        if self.binary:
            return float(result["bytes"]) / result["seconds"] / 1e6
        return float(result["messages"]) / result["seconds"]


SCENARIOS = [
    Scenario("text32-c1", "32 B text, 1 conn x 16 in flight", 32, False, 1, 16),
    Scenario("text32-c64", "32 B text, 64 conns x 16 in flight", 32, False, 64, 16),
    Scenario("bin64k", "64 KiB binary, 4 conns x 2 in flight", 64 * 1024, True, 4, 2),
    Scenario("bin1m", "1 MiB binary, 4 conns x 2 in flight", 1024 * 1024, True, 4, 2),
]


@dataclass
class Server:
    """An echo server under test: how to start it and what it is."""

    name: str
    cmd: list[str]
    """Command line; ``{port}`` is replaced by the port."""
    version: str
    env: dict[str, str] = field(default_factory=dict)
    optional: bool = False
    """Report "not available" instead of failing when it does not start."""


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def servers(loop: str) -> list[Server]:
    """Every server, wsio first; the Python anchors run on the ``loop`` event loop."""
    py = sys.executable
    env = {"BENCH_LOOP": loop}
    node = shutil.which("node") or "node"
    ws_pkg = common.NODE_DIR / "node_modules" / "ws" / "package.json"
    ws_version = json.loads(ws_pkg.read_text())["version"] if ws_pkg.exists() else "?"
    node_version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        Server(
            "wsio",
            [
                py,
                "-m",
                "wsio",
                "echo",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
                "--max-size",
                str(MAX_SIZE),
            ],
            _version("wsio"),
            optional=True,
        ),
        Server(
            "websockets",
            [py, str(SERVERS_DIR / "websockets_echo.py"), "{port}"],
            _version("websockets"),
            env,
        ),
        Server(
            "aiohttp",
            [py, str(SERVERS_DIR / "aiohttp_echo.py"), "{port}"],
            _version("aiohttp"),
            env,
        ),
        Server(
            "picows", [py, str(SERVERS_DIR / "picows_echo.py"), "{port}"], _version("picows"), env
        ),
        Server(
            "node-ws",
            [node, str(SERVERS_DIR / "ws_echo.js"), "{port}"],
            f"{ws_version} (Node {node_version})",
        ),
    ]


def build_generator(workdir: Path) -> Path:
    """Compile wsload.c into ``workdir``; returns the binary."""
    gcc = common.require_binary("gcc")
    binary = workdir / "wsload"
    subprocess.run(
        [gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(HERE / "wsload.c")],
        check=True,
    )
    return binary


def measure(
    wsload: Path, port: int, server_pid: int, sc: Scenario, warmup: float, duration: float
) -> dict[str, Any]:
    """Run the generator once; returns its result plus both sides' CPU share."""
    cmd = [
        "taskset",
        "-c",
        GEN_CORE,
        str(wsload),
        "--port",
        str(port),
        "--conns",
        str(sc.conns),
        "--inflight",
        str(sc.inflight),
        "--size",
        str(sc.size),
        "--warmup",
        str(warmup),
        "--duration",
        str(duration),
    ]
    if sc.binary:
        cmd.append("--binary")
    gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert gen.stdout is not None
    watchdog = threading.Timer(warmup + duration + 30, lambda: common.stop(gen, 1))
    watchdog.start()
    try:
        marks: list[tuple[float, tuple[float, float], tuple[float, float]]] = []
        result: dict[str, Any] = {}
        for line in gen.stdout:
            # sample at the window's start (the "measure" line) and end (the result line)
            marks.append(
                (
                    time.monotonic(),
                    common.usage(server_pid, group=True),
                    common.usage(gen.pid),
                )
            )
            msg = json.loads(line)
            if "phase" not in msg:
                result = msg
        gen.wait()
    finally:
        watchdog.cancel()
        common.stop(gen)
    if not result:
        return {
            "messages": 0,
            "bytes": 0,
            "seconds": 0,
            "errors": 1,
            "error": f"generator produced no result (rc={gen.returncode})",
        }
    if len(marks) >= 2:
        (t0, s0, g0), (t1, s1, g1) = marks[0], marks[-1]
        span = t1 - t0
        result["server_cpu"] = (s1[0] - s0[0]) / span
        result["gen_cpu"] = (g1[0] - g0[0]) / span
        result["server_wait"] = (s1[1] - s0[1]) / span
        result["gen_wait"] = (g1[1] - g0[1]) / span
    return result


def status(result: dict[str, Any]) -> str:
    """``ok``, or why this measurement does not count."""
    if result.get("errors") or not result.get("messages"):
        return f"ERROR: {result.get('error') or 'no echo received'}"
    if result.get("gen_cpu", 0) > GEN_LIMIT:
        return f"INVALID: generator at {result['gen_cpu']:.0%} of its core"
    waits = {"server": result.get("server_wait", 0), "generator": result.get("gen_wait", 0)}
    if max(waits.values()) > NOISE_LIMIT:
        return "NOISY: " + ", ".join(f"{k} waited {v:.0%}" for k, v in waits.items())
    return "ok"


@dataclass
class Running:
    """A started server (``proc`` is None when it could not start, see ``reason``)."""

    server: Server
    port: int
    proc: subprocess.Popen[bytes] | None
    reason: str = ""


def launch(server: Server, logs: Path) -> Running:
    """Start ``server`` pinned to the server core; optional servers fail soft."""
    port = common.free_port()
    cmd = ["taskset", "-c", SERVER_CORE, *(a.replace("{port}", str(port)) for a in server.cmd)]
    env = {**(common.node_env() if server.name == "node-ws" else os.environ), **server.env}
    log = logs / f"{server.name}.log"
    with log.open("ab") as out:
        try:
            proc = common.start(cmd, port, timeout=15, env=env, stdout=out, stderr=out)
        except (RuntimeError, TimeoutError, OSError) as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            what = "did not listen in time" if isinstance(exc, TimeoutError) else "did not start"
            reason = (what + (f": {tail[0]}" if tail else "")).replace(str(common.ROOT), ".")
            if not server.optional:
                raise RuntimeError(f"{server.name} did not start: {reason}") from exc
            print(f"  {server.name:<11} not available: {reason}", flush=True)
            return Running(server, port, None, reason)
    return Running(server, port, proc)


def measure_cell(
    run: Running, wsload: Path, sc: Scenario, args: argparse.Namespace
) -> dict[str, Any]:
    """One measurement of one scenario against one running server."""
    assert run.proc is not None
    if run.proc.poll() is not None:
        error = f"server exited earlier (rc={run.proc.returncode})"
        return {"rate": 0.0, "errors": 1, "error": error, "status": f"ERROR: {error}"}
    res = measure(wsload, run.port, run.proc.pid, sc, args.warmup, args.duration)
    res["rate"] = sc.rate(res)
    cpu = res.get("server_cpu", 0)
    res["rate_per_cpu"] = res["rate"] / cpu if cpu > 0.05 else 0.0
    res["status"] = status(res)
    print(
        f"  {run.server.name:<11} {sc.title:<38} {res['rate']:>12,.1f} {sc.unit:<5}"
        f" server {res.get('server_cpu', 0):4.0%} gen {res.get('gen_cpu', 0):4.0%}"
        f" waits {res.get('server_wait', 0):3.0%}/{res.get('gen_wait', 0):3.0%}"
        f"  {res['status']}",
        flush=True,
    )
    return res


def usable(cell: dict[str, Any] | None) -> bool:
    """Whether a measurement may be compared: clean, or only noisy."""
    return cell is not None and cell["status"].startswith(("ok", "NOISY"))


def best(cells: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest clean measurement of a cell over the rounds, else the fastest
    noisy one, else the last one."""
    for pick in ("ok", "NOISY"):
        if chosen := [r for r in cells if r["status"].startswith(pick)]:
            return max(chosen, key=lambda r: r["rate"])
    return cells[-1] if cells else None


def fmt_rate(value: float, unit: str) -> str:
    """Throughput for the table."""
    return f"{value:,.0f} {unit}" if unit == "msg/s" else f"{value:,.1f} {unit}"


def ratio_table(
    report: dict[str, Any], scenarios: list[Scenario], metric: str
) -> tuple[list[str], bool]:
    """Markdown rows of ``metric`` relative to the baseline; also whether a noisy cell was used."""
    cells: dict[str, dict[str, dict[str, Any] | None]] = report["best"]
    base = cells.get(BASELINE, {})
    lines = [
        "| server | " + " | ".join(s.title for s in scenarios) + " |",
        "| --- | " + " | ".join("---:" for _ in scenarios) + " |",
    ]
    any_noisy = False
    for name, info in report["servers"].items():
        row = [f"{name} {info['version']}"]
        for s in scenarios:
            cell, ref = cells.get(name, {}).get(s.key), base.get(s.key)
            if not info["available"]:
                row.append("not available")
            elif cell is None or not usable(cell):
                row.append("invalid" if cell and cell["status"].startswith("INVALID") else "error")
            elif ref is None or not usable(ref) or not ref.get(metric):
                row.append("n/a")
            else:
                noisy = any(c["status"] != "ok" for c in (cell, ref))
                any_noisy |= noisy
                row.append(f"{cell.get(metric, 0) / ref[metric]:.2f}x" + ("*" if noisy else ""))
        lines.append("| " + " | ".join(row) + " |")
    return lines, any_noisy


def markdown(report: dict[str, Any]) -> str:
    """The ``ws-echo`` section of docs/benchmarks.md."""
    scenarios = [s for s in SCENARIOS if s.key in report["scenarios"]]
    cells: dict[str, dict[str, dict[str, Any] | None]] = report["best"]
    m = report["machine"]
    lines = [
        "## WebSocket echo",
        "",
        f"Run of {report['date']}: {m['cores']} cores ({m['cpu']}), {m['system']}, "
        f"Python {m['python']} on {report['loop']} for the Python anchors, "
        f"{report['warmup']:g} s warm-up then {report['duration']:g} s measured per scenario, "
        f"best of {report['rounds']} round(s). Server pinned to core 0, load generator "
        f"(`bench/ws/wsload.c`, pre-built masked frames, epoll) to core 1. A measurement "
        f"where the generator used more than {GEN_LIMIT:.0%} of its core is INVALID.",
        "",
        f"Throughput relative to the `{BASELINE}` library (higher is faster; the "
        "absolute numbers below are noisy, the ratios are what to compare):",
        "",
    ]
    ratios, any_noisy = ratio_table(report, scenarios, "rate")
    lines += [*ratios, ""]
    lines += [
        "The same ratios for throughput per second of server CPU time (throughput divided "
        "by the server's CPU share). With one connection the server is often not busy all "
        "the time, so this differs from the above; with many connections it estimates the "
        "throughput of a whole core and is less sensitive to other load on the machine:",
        "",
    ]
    lines += ratio_table(report, scenarios, "rate_per_cpu")[0]
    if any_noisy:
        lines += [
            "",
            f"\\* from a noisy measurement: another task held a pinned core for more than "
            f"{NOISE_LIMIT:.0%} of the window in every round.",
        ]
    lines += [
        "",
        "Measured (throughput counts echoed payload; MB = 10^6 bytes; CPU in % of one core "
        "over the measured window):",
        "",
        "| scenario | server | throughput | per server CPU-s | server CPU | generator CPU "
        "| status |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in scenarios:
        for name, info in report["servers"].items():
            cell = cells.get(name, {}).get(s.key)
            if not info["available"]:
                lines.append(f"| {s.title} | {name} | | | | | not available |")
            elif cell is not None:
                lines.append(
                    f"| {s.title} | {name} | {fmt_rate(cell['rate'], s.unit)} "
                    f"| {fmt_rate(cell.get('rate_per_cpu', 0), s.unit)} "
                    f"| {cell.get('server_cpu', 0):.0%} | {cell.get('gen_cpu', 0):.0%} "
                    f"| {cell['status']} |"
                )
    unavailable = [n for n, i in report["servers"].items() if not i["available"]]
    if unavailable:
        lines += [
            "",
            "Not available in this run: "
            + "; ".join(f"{n} ({report['servers'][n]['reason']})" for n in unavailable),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds (1)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; the best valid run counts")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this server (repeatable); docs are left alone",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="KEY",
        choices=[s.key for s in SCENARIOS],
        help="run only this scenario",
    )
    parser.add_argument(
        "--loop",
        choices=["uvloop", "asyncio"],
        default="uvloop",
        help="event loop of the Python anchor servers (uvloop)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args(argv)

    all_servers = servers(args.loop)
    names = [s.name for s in all_servers]
    if unknown := set(args.only) - set(names):
        parser.error(f"unknown server(s) {sorted(unknown)}; choose from {names}")
    chosen = [s for s in all_servers if not args.only or s.name in args.only]
    scenarios = [s for s in SCENARIOS if not args.scenario or s.key in args.scenario]
    for tool in ("taskset", "node"):
        common.require_binary(tool)
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 cores, server and generator share one", file=sys.stderr)

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.name: {sc.key: [] for sc in scenarios} for s in chosen
    }
    with tempfile.TemporaryDirectory(prefix="wsbench-") as tmp, contextlib.ExitStack() as stack:
        wsload = build_generator(Path(tmp))
        # All servers run at once (an idle one costs nothing), so that the servers of
        # one scenario are measured back to back and see the same machine.
        started: list[Running] = []
        for server in chosen:
            running = launch(server, Path(tmp))
            if running.proc is not None:
                stack.callback(common.stop, running.proc)
            started.append(running)
        live = [r for r in started if r.proc is not None]
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds}", flush=True)
            for sc in scenarios:
                shift = rnd % len(live) if live else 0
                for running in live[shift:] + live[:shift]:
                    runs[running.server.name][sc.key].append(
                        measure_cell(running, wsload, sc, args)
                    )

    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": common.machine(),
        "loop": args.loop,
        "warmup": args.warmup,
        "duration": args.duration,
        "rounds": args.rounds,
        "scenarios": {s.key: s.title for s in scenarios},
        "servers": {},
        "best": {},
        "runs": runs,
    }
    for running in started:
        name = running.server.name
        report["servers"][name] = {
            "version": running.server.version,
            "available": running.proc is not None,
            "reason": running.reason or None,
        }
        report["best"][name] = {sc.key: best(runs[name][sc.key]) for sc in scenarios}

    text = markdown(report)
    print("\n" + text)
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = common.RESULTS_DIR / f"ws-echo-{stamp}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"raw results: {out.relative_to(common.ROOT)}")
    if args.no_docs or args.only or args.scenario:
        print("docs/benchmarks.md left alone (partial run or --no-docs)")
    else:
        common.replace_section("ws-echo", text)
        print("updated docs/benchmarks.md")
    bad = [
        f"{name}/{key}"
        for name, cells in report["best"].items()
        if report["servers"][name]["available"]
        for key, cell in cells.items()
        if not usable(cell)
    ]
    if bad:
        print("not valid: " + ", ".join(bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
