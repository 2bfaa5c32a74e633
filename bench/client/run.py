"""Socket.IO client benchmark: wsio.Client against python-socketio's AsyncClient.

Both clients are used as load generators against the official Node
``socket.io`` server (``node_server.js``, pinned to core 0): N clients (50 by
default), each with one ``echo`` call in flight (emit a 32-byte string with
an ack id, await the acknowledgement, repeat), over WebSocket. The generator
process (pinned to core 1) runs one library at a time on the same event loop
(uvloop by default); the two alternate in every round and a fresh Node
server is started for each measurement. Reported: acks per second, the CPU
share of each process over the measured window, and acks per second of
generator CPU time.

After the rounds, the wsio generator runs once more under cProfile and the
time is split by layer (Socket.IO client, packet codec, Engine.IO client,
WebSocket, event loop and the rest).

    .venv/bin/python bench/client/run.py [--clients N] [--duration S] [--warmup S]
                                         [--rounds N] [--loop uvloop|asyncio]
                                         [--no-profile] [--no-docs]

Results: the ``client`` section of docs/benchmarks.md (unless ``--no-docs``)
and raw JSON in bench/results/client-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import common  # bench/common.py  # noqa: E402

SECTION = "client"
SERVER_CORE, GEN_CORE = "0", "1"
LIBRARIES = ["wsio", "python-socketio"]
PAYLOAD = "x" * 32
NOISY = 0.05
"""Share of the window a pinned process may spend waiting for its core before the cell is noisy."""


# -- the generator (a child process) ------------------------------------------------------------


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _wsio_clients(url: str, count: int) -> tuple[list[Any], Any, Any]:
    import wsio

    clients = [
        wsio.Client(url, transports=("websocket",), reconnection=False) for _ in range(count)
    ]
    await asyncio.gather(*(c.connect() for c in clients))

    async def close() -> None:
        await asyncio.gather(*(c.manager.close() for c in clients))

    return clients, (lambda c: c.call("echo", PAYLOAD)), close


async def _psio_clients(url: str, count: int) -> tuple[list[Any], Any, Any]:
    import socketio

    clients = [socketio.AsyncClient(reconnection=False) for _ in range(count)]
    await asyncio.gather(*(c.connect(url, transports=["websocket"]) for c in clients))

    async def close() -> None:
        await asyncio.gather(*(c.disconnect() for c in clients))

    return clients, (lambda c: c.call("echo", PAYLOAD, timeout=60)), close


async def _generate(library: str, url: str, count: int, warmup: float, duration: float) -> None:
    make = _wsio_clients if library == "wsio" else _psio_clients
    clients, call, close = await make(url, count)
    done = 0
    errors = 0
    stopping = False

    async def loop(client: Any) -> None:
        nonlocal done, errors
        while not stopping:
            try:
                answer = await call(client)
            except Exception:
                errors += 1
                return
            if answer != PAYLOAD:
                errors += 1
                return
            done += 1

    tasks = [asyncio.ensure_future(loop(c)) for c in clients]
    await asyncio.sleep(warmup)
    _emit({"phase": "measure"})
    start_acks, start = done, time.perf_counter()
    start_cpu = time.process_time()
    await asyncio.sleep(duration)
    acks, seconds = done - start_acks, time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    _emit({"phase": "window-end"})
    stopping = True
    await asyncio.wait(tasks, timeout=10)
    await close()
    _emit({"phase": "done", "acks": acks, "seconds": seconds, "cpu": cpu, "errors": errors})


def generator_main(args: argparse.Namespace) -> int:
    coro = _generate(args.generator, args.url, args.clients, args.warmup, args.duration)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    return 0


# -- the parent ---------------------------------------------------------------------------------


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def _node_package(name: str) -> str:
    try:
        return str(
            json.loads((common.NODE_DIR / "node_modules" / name / "package.json").read_text())[
                "version"
            ]
        )
    except (OSError, ValueError, KeyError):
        return "?"


def _start_node() -> tuple[subprocess.Popen[Any], int]:
    node = common.require_binary("node")
    port = common.free_port()
    proc = common.start(
        ["taskset", "-c", SERVER_CORE, node, str(HERE / "node_server.js"), "--port", str(port)],
        port,
        cwd=common.NODE_DIR,
        env=common.node_env(),
        stdout=subprocess.DEVNULL,
    )
    return proc, port


def measure(library: str, args: argparse.Namespace, profile: Path | None = None) -> dict[str, Any]:
    """One measurement: a fresh Node server, one generator run; returns the cell."""
    server, port = _start_node()
    cmd = [
        "taskset",
        "-c",
        GEN_CORE,
        sys.executable,
        str(Path(__file__).resolve()),
        "--generator",
        library,
        "--url",
        f"http://127.0.0.1:{port}",
        "--clients",
        str(args.clients),
        "--warmup",
        str(args.warmup),
        "--duration",
        str(args.duration),
        "--loop",
        args.loop,
    ]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    samples: dict[str, tuple[float, float, float, float, float]] = {}
    result: dict[str, Any] = {"library": library}
    try:
        gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            assert gen.stdout is not None
            for line in gen.stdout:
                item = json.loads(line)
                phase = item.pop("phase")
                if phase in ("measure", "window-end"):
                    s_cpu, s_wait = common.usage(server.pid, group=True)
                    g_cpu, g_wait = common.usage(gen.pid)
                    samples[phase] = (time.perf_counter(), s_cpu, s_wait, g_cpu, g_wait)
                else:
                    result.update(item)
            gen.wait(timeout=args.warmup + args.duration + 120)
        finally:
            common.stop(gen)
    finally:
        common.stop(server)
    if "measure" not in samples or "window-end" not in samples or "acks" not in result:
        result["error"] = "the generator did not report"
        return result
    t0, s0, sw0, g0, gw0 = samples["measure"]
    t1, s1, sw1, g1, gw1 = samples["window-end"]
    window = t1 - t0
    result.update(
        rate=result["acks"] / result["seconds"],
        server_cpu=(s1 - s0) / window,
        generator_cpu=(g1 - g0) / window,
        server_waited=(sw1 - sw0) / window,
        generator_waited=(gw1 - gw0) / window,
    )
    result["per_cpu"] = result["rate"] / result["generator_cpu"] if result["generator_cpu"] else 0.0
    result["noisy"] = result["server_waited"] > NOISY or result["generator_waited"] > NOISY
    return result


_LAYERS = [
    ("wsio/socketio/client.py", "Socket.IO client (socketio/client.py)"),
    ("wsio/socketio/packets.py", "Socket.IO packet codec (socketio/packets.py)"),
    ("wsio/_json.py", "Socket.IO packet codec (socketio/packets.py)"),
    ("wsio/engineio/", "Engine.IO client (engineio/)"),
    ("wsio/websocket/", "WebSocket (websocket/)"),
    ("wsio/", "other wsio code"),
]


def _layer(filename: str) -> str:
    path = filename.replace(os.sep, "/")
    for marker, name in _LAYERS:
        if marker in path:
            return name
    if filename.startswith("~") or filename.startswith("<"):
        return "C built-ins (JSON, os.urandom for the frame masks ...)"
    if "asyncio" in path or "uvloop" in path:
        return "event loop (asyncio / uvloop, socket reads included)"
    return "the benchmark loop and the rest"


def _short(filename: str) -> str:
    parts = Path(filename).parts
    return "/".join(parts[-2:])


def profile_summary(stats_file: Path, top: int = 12) -> dict[str, Any]:
    """Own time by layer (shares) and the functions with the most own time."""
    stats = pstats.Stats(str(stats_file))
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    layers: dict[str, float] = {}
    for (filename, _line, _name), values in raw.items():
        layers[_layer(filename)] = layers.get(_layer(filename), 0.0) + values[2]
    functions = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    return {
        "total_seconds": total,
        "layers": {k: v / total for k, v in sorted(layers.items(), key=lambda kv: -kv[1])},
        "functions": [
            {
                "function": name if f.startswith("~") else f"{_short(f)}:{line}({name})",
                "share": v[2] / total,
                "calls": v[1],
            }
            for (f, line, name), v in functions
        ],
    }


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    a = report["args"]
    v = report["versions"]
    lines = [
        "## Socket.IO client: wsio.Client vs python-socketio's AsyncClient",
        "",
        f"Run of {report['date']}: {m['cores']} cores ({m['cpu']}), {m['system']}, "
        f"Python {m['python']} on {a['loop']}, wsio {v['wsio']}, python-socketio "
        f"{v['python-socketio']} (python-engineio {v['python-engineio']}, aiohttp "
        f"{v['aiohttp']}), against Node socket.io {v['socket.io']} ({v['node']}). "
        f"{a['clients']} clients over WebSocket, each with one `echo` call of 32 bytes in "
        f"flight (emit with an ack id, await the ack, repeat); {a['warmup']} s warm-up then "
        f"{a['duration']} s measured; {a['rounds']} rounds, the two libraries alternating, "
        "a fresh Node server for each measurement. Node pinned to core 0, the generator "
        "(`bench/client/run.py`) to core 1.",
        "",
        "| client | acks/s (median) | acks/s (each round) | generator CPU | Node CPU "
        "| acks per generator CPU-second |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for lib in LIBRARIES:
        s = report["summary"][lib]
        rounds = ", ".join(
            f"{c['rate']:,.0f}{'*' if c.get('noisy') else ''}" if "rate" in c else "error"
            for c in report["cells"][lib]
        )
        lines.append(
            f"| {s['label']} | {s['rate']:,.0f} | {rounds} | {_pct(s['generator_cpu'])} "
            f"| {_pct(s['server_cpu'])} | {s['per_cpu']:,.0f} |"
        )
    r = report["ratios"]
    lines += [
        "",
        f"wsio / python-socketio: **{r['rate']:.2f}x** the acks per second (median of the "
        f"rounds; per round: {', '.join(f'{x:.2f}x' for x in r['rounds'])}), "
        f"{r['per_cpu']:.2f}x the acks per generator CPU-second. "
        f"Target 2x: {'met' if r['rate'] >= 2 else 'NOT met'}.",
        "",
        "\\* noisy: a pinned process waited for its core more than "
        f"{_pct(NOISY)} of the window (another task held it). CPU is in % of one core over the "
        "measured window. When the generator is below 100% of its core, it is waiting for the "
        "server: the Node server then limits the rate, not the client.",
    ]
    prof = report.get("profile")
    if prof:
        lines += [
            "",
            "Where the wsio generator's time goes (cProfile, own time by layer, one extra run; "
            "the profiler slows the Python code down, so these are shares, not timings). "
            "uvloop's transport methods are not profiled as calls of their own: the send "
            "system call counts in the WebSocket layer (`_flush`), reading from the sockets "
            "in the event loop (`run`).",
            "",
            "| layer | share |",
            "| --- | ---: |",
        ]
        lines += [f"| {k} | {_pct(x)} |" for k, x in prof["layers"].items() if x >= 0.005]
        lines += ["", "Functions with the most own time:", "", "| function | share | calls |"]
        lines += ["| --- | ---: | ---: |"]
        lines += [
            f"| `{f['function']}` | {100 * f['share']:.1f}% | {f['calls']:,} |"
            for f in prof["functions"]
        ]
    return "\n".join(lines)


def parent_main(args: argparse.Namespace) -> int:
    for tool in ("taskset", "node"):
        if shutil.which(tool) is None:
            print(f"{tool} not found", file=sys.stderr)
            return 2
    cells: dict[str, list[dict[str, Any]]] = {lib: [] for lib in LIBRARIES}
    for n in range(args.rounds):
        order = LIBRARIES if n % 2 == 0 else LIBRARIES[::-1]
        for lib in order:
            cell = measure(lib, args)
            cells[lib].append(cell)
            if "rate" in cell:
                print(
                    f"round {n + 1} {lib:16} {cell['rate']:9,.0f} acks/s  generator "
                    f"{_pct(cell['generator_cpu'])}  node {_pct(cell['server_cpu'])}"
                    f"{'  NOISY' if cell['noisy'] else ''}  errors {cell.get('errors', 0)}",
                    flush=True,
                )
            else:
                print(f"round {n + 1} {lib}: {cell.get('error')}", flush=True)
    labels = {
        "wsio": f"wsio.Client ({_version('wsio')})",
        "python-socketio": f"socketio.AsyncClient ({_version('python-socketio')})",
    }
    summary: dict[str, dict[str, Any]] = {}
    for lib in LIBRARIES:
        good = [c for c in cells[lib] if "rate" in c and not c.get("errors")]
        if not good:
            print(f"no usable measurement for {lib}", file=sys.stderr)
            return 1
        summary[lib] = {
            "label": labels[lib],
            "rate": statistics.median(c["rate"] for c in good),
            "generator_cpu": statistics.median(c["generator_cpu"] for c in good),
            "server_cpu": statistics.median(c["server_cpu"] for c in good),
            "per_cpu": statistics.median(c["per_cpu"] for c in good),
        }
    pairs = zip(cells["wsio"], cells["python-socketio"], strict=True)
    ratios = {
        "rate": summary["wsio"]["rate"] / summary["python-socketio"]["rate"],
        "per_cpu": summary["wsio"]["per_cpu"] / summary["python-socketio"]["per_cpu"],
        "rounds": [w["rate"] / p["rate"] for w, p in pairs if "rate" in w and "rate" in p],
    }
    print(
        f"wsio / python-socketio: {ratios['rate']:.2f}x acks/s, "
        f"{ratios['per_cpu']:.2f}x acks per generator CPU-second"
    )
    profile = None
    if not args.no_profile:
        with tempfile.TemporaryDirectory() as tmp:
            stats_file = Path(tmp) / "wsio.prof"
            measure("wsio", args, profile=stats_file)
            if stats_file.exists():
                profile = profile_summary(stats_file)
                for layer, share in profile["layers"].items():
                    print(f"  {_pct(share):>4}  {layer}")
    report = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": common.machine(),
        "args": {
            "clients": args.clients,
            "duration": args.duration,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "loop": args.loop,
        },
        "versions": {
            "wsio": _version("wsio"),
            "python-socketio": _version("python-socketio"),
            "python-engineio": _version("python-engineio"),
            "aiohttp": _version("aiohttp"),
            "socket.io": _node_package("socket.io"),
            "node": subprocess.run(
                ["node", "--version"], capture_output=True, text=True, check=False
            ).stdout.strip(),
        },
        "cells": cells,
        "summary": summary,
        "ratios": ratios,
        "profile": profile,
    }
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = common.RESULTS_DIR / f"client-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"raw results: {out.relative_to(common.ROOT)}")
    if not args.no_docs:
        common.replace_section(SECTION, markdown(report))
        print(f"updated {common.DOCS_FILE.relative_to(common.ROOT)} (section {SECTION})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-docs", action="store_true")
    # the generator child
    parser.add_argument("--generator", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generator:
        return generator_main(args)
    return parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
