"""Cluster benchmark: broadcasts across nodes through Redis, wsio against python-socketio.

Each scenario starts a private redis-server and one or two nodes (all pinned to
core 0), then the load generator (``load.py``, pinned to core 1): room members
spread round-robin over the nodes, a controller on the first node triggering
bursts of broadcasts to the room, rounds checked for complete delivery.

* ``deliveries``: deliveries per second with 1 node (in-memory adapter, then the
  Redis adapter with no other node) and with 2 nodes sharing the room, for
  wsio (sharded and classic formats) and python-socketio (``AsyncRedisManager``).
* ``bystander``: 2 nodes, every member on the first, idle clients on the
  second: the CPU the second node spends per 1000 broadcasts that do not
  concern it.

On a 2-core machine the servers share one core, so two nodes get no more CPU
than one: the figures measure the cost of the Redis hop, not scaling.

    .venv/bin/python bench/redis/run.py [--duration S] [--warmup S] [--rounds N]
                                        [--only KEY ...] [--no-docs]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import (  # bench/common.py
    RESULTS_DIR,
    free_port,
    machine,
    replace_section,
    require_binary,
    start,
    stop,
    usage,
)

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "servers"
MEMBERS, BURST, SIZE, IDLE = 200, 20, 64, 100
GEN_LIMIT = 0.90
"""Generator CPU share above which a measurement is INVALID (it measured the generator)."""
NOISE_LIMIT = 0.05
"""Share of the window a process waited for its core above which a measurement is NOISY."""


@dataclass(frozen=True)
class Scenario:
    """One configuration: which server, how many nodes, which adapter."""

    key: str
    server: str  # "wsio" or "python-socketio"
    nodes: int
    adapter: str | None  # None (in-memory), "sharded", "classic", "redis" (python-socketio)
    label: str
    bystander: bool = False


SCENARIOS = [
    Scenario("wsio-1", "wsio", 1, None, "wsio, 1 node, in-memory adapter"),
    Scenario("wsio-redis-1", "wsio", 1, "sharded", "wsio, 1 node, Redis adapter (sharded)"),
    Scenario("wsio-redis-2", "wsio", 2, "sharded", "wsio, 2 nodes, Redis adapter (sharded)"),
    Scenario("wsio-classic-2", "wsio", 2, "classic", "wsio, 2 nodes, Redis adapter (classic)"),
    Scenario("psio-1", "python-socketio", 1, None, "python-socketio, 1 node, in-memory manager"),
    Scenario(
        "psio-redis-2", "python-socketio", 2, "redis", "python-socketio, 2 nodes, AsyncRedisManager"
    ),
    Scenario(
        "wsio-bystander", "wsio", 2, "sharded", "wsio, Redis adapter (sharded)", bystander=True
    ),
    Scenario(
        "psio-bystander",
        "python-socketio",
        2,
        "redis",
        "python-socketio, AsyncRedisManager",
        bystander=True,
    ),
]


def pinned(core: int, cmd: list[str]) -> list[str]:
    """``cmd`` run on one core (when taskset exists)."""
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(core), *cmd] if taskset else cmd


def dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


def run_scenario(sc: Scenario, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start Redis and the nodes, run the generator, return the measurement."""
    procs: list[subprocess.Popen[Any]] = []
    redis_port = free_port()
    result: dict[str, Any] = {"key": sc.key}
    try:
        redis_proc = start(
            pinned(0, [require_binary("redis-server"), "--port", str(redis_port),
                       "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                       "--daemonize", "no", "--dir", str(tmp), "--logfile", ""]),
            redis_port,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(redis_proc)
        ports = [free_port() for _ in range(sc.nodes)]
        nodes = []
        for port in ports:
            script = SERVERS / ("wsio_node.py" if sc.server == "wsio" else "psio_node.py")
            cmd = [sys.executable, str(script), "--port", str(port)]
            if sc.adapter is not None:
                cmd += ["--redis", f"redis://127.0.0.1:{redis_port}"]
            if sc.adapter in ("sharded", "classic"):
                cmd += ["--mode", sc.adapter]
            log_path = tmp / f"{sc.key}-{port}.log"
            with log_path.open("wb") as log:
                try:
                    proc = start(pinned(0, cmd), port, timeout=20, stdout=log, stderr=log)
                except (RuntimeError, TimeoutError) as exc:
                    tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
                    result["error"] = f"{exc} {' / '.join(tail)}"
                    return result
            procs.append(proc)
            nodes.append(proc)
        gen = [sys.executable, str(HERE / "load.py"), "--members", str(MEMBERS),
               "--burst", str(BURST), "--size", str(SIZE),
               "--warmup", str(args.warmup), "--duration", str(args.duration)]  # fmt: skip
        if sc.bystander:
            gen += ["--ports", str(ports[0]), "--idle-ports", str(ports[1]), "--idle", str(IDLE)]
        else:
            gen += ["--ports", ",".join(map(str, ports))]
        generator = subprocess.Popen(
            pinned(1, gen), stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        procs.append(generator)
        watched = {f"node{i}": p.pid for i, p in enumerate(nodes)}
        watched["redis"] = redis_proc.pid
        watched["generator"] = generator.pid
        before: dict[str, tuple[float, float]] = {}
        t0 = 0.0
        final: dict[str, Any] = {}
        assert generator.stdout is not None
        for line in generator.stdout:
            obj = json.loads(line)
            if obj.get("phase") == "measure":
                t0 = time.monotonic()
                before = {k: usage(pid, group=True) for k, pid in watched.items()}
            elif "count" in obj:
                window = time.monotonic() - t0
                after = {k: usage(pid, group=True) for k, pid in watched.items()}
                final = obj
                result["cpu"] = {k: (after[k][0] - before[k][0]) / window for k in watched}
                result["waited"] = {k: (after[k][1] - before[k][1]) / window for k in watched}
                break
        generator.wait(timeout=30)
        if not final:
            result["error"] = "the generator printed no result"
            return result
        error = final.pop("error", "")
        result.update(final)
        result["deliveries_per_s"] = final["count"] / final["seconds"]
        result["broadcasts_per_s"] = result["deliveries_per_s"] / MEMBERS
        server_cpu = sum(v for k, v in result["cpu"].items() if k != "generator")
        result["server_cpu"] = server_cpu
        result["per_cpu_s"] = result["deliveries_per_s"] / server_cpu if server_cpu else 0.0
        result["noisy"] = max(result["waited"].values()) > NOISE_LIMIT
        if sc.bystander:
            broadcasts = final["count"] / MEMBERS
            cpu_s = result["cpu"]["node1"] * final["seconds"]
            result["bystander_ms_per_1000"] = 1000 * cpu_s / broadcasts * 1000 if broadcasts else 0
        if final["errors"]:
            result["error"] = error
        elif result["cpu"]["generator"] > GEN_LIMIT:
            result["invalid"] = True
        return result
    finally:
        for proc in reversed(procs):
            stop(proc)


def usable(r: dict[str, Any] | None) -> bool:
    return r is not None and "error" not in r and not r.get("invalid")


def median(results: list[dict[str, Any]], sc: Scenario) -> dict[str, Any] | None:
    """The median usable round (clean rounds only, when there are any).

    The median, not the best: on a shared machine a single quiet moment would
    otherwise set the reference every other row is compared with.
    """
    good = [r for r in results if usable(r)]
    if not good:
        return results[0] if results else None
    clean = [r for r in good if not r.get("noisy")]
    good = clean or good
    key = "bystander_ms_per_1000" if sc.bystander else "deliveries_per_s"
    ordered = sorted(good, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


def status(r: dict[str, Any] | None) -> str:
    if not r:
        return "not run"
    if "error" in r:
        return f"ERROR: {r['error']}"
    if r.get("invalid"):
        return "INVALID: generator-bound"
    if r.get("noisy"):
        waited = max(r["waited"].values())
        return f"NOISY: a process waited {waited:.0%} for its core"
    return "ok"


def markdown(results: dict[str, dict[str, Any] | None], args: argparse.Namespace) -> str:
    m = machine()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "## Cluster: broadcasts across nodes through Redis",
        "",
        f"Run of {when}: {m['cores']} cores ({m['cpu']}), {m['system']}, Python {m['python']}; "
        f"wsio {dist_version('wsio')}, python-socketio {dist_version('python-socketio')}, "
        f"redis-py {dist_version('redis')}, Redis {redis_version()}. "
        f"{MEMBERS} room members, a controller sending bursts of {BURST} broadcasts of "
        f"{SIZE} B, every round checked for complete delivery; {args.warmup:g} s warm-up, "
        f"{args.duration:g} s measured, median of {args.rounds} round(s). "
        "Nodes and redis-server pinned to core 0, the generator (`bench/redis/load.py`) "
        "to core 1.",
        "",
        "**What this measures.** This machine has two cores, and every node shares the same "
        "one with Redis: two nodes get no more CPU than one. The 2-node rows therefore show "
        "what the Redis hop costs per delivery (publishing, Redis, receiving and decoding on "
        "the other node), not how a cluster scales; with a core per node, each node "
        "delivers to its own members in parallel. The machine is shared: rounds of one "
        'scenario differ by up to about 20%, so ratios within 0.8x-1.2x mean "no '
        'measurable difference".',
        "",
        "Deliveries per second, and per second of server CPU (nodes and Redis together: "
        "less sensitive to other load on the machine); the ratios compare each row with the "
        "same server on one node with its in-memory adapter:",
        "",
        "| scenario | deliveries/s | ratio | deliveries per server CPU-s | ratio | node CPU | Redis CPU | status |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base = {
        "wsio": results.get("wsio-1"),
        "python-socketio": results.get("psio-1"),
    }

    def ratio(value: float, ref: dict[str, Any] | None, key: str) -> str:
        return f"{value / ref[key]:.2f}x" if ref is not None and usable(ref) and ref[key] else "-"

    for sc in SCENARIOS:
        if sc.bystander:
            continue
        r = results.get(sc.key)
        if not r or "deliveries_per_s" not in r:
            lines.append(f"| {sc.label} | - | - | - | - | - | - | {status(r)} |")
            continue
        ref = base[sc.server]
        node_cpu = sum(v for k, v in r["cpu"].items() if k.startswith("node"))
        lines.append(
            f"| {sc.label} | {r['deliveries_per_s']:,.0f} | "
            f"{ratio(r['deliveries_per_s'], ref, 'deliveries_per_s')} | "
            f"{r['per_cpu_s']:,.0f} | {ratio(r['per_cpu_s'], ref, 'per_cpu_s')} | "
            f"{node_cpu:.0%} | {r['cpu']['redis']:.0%} | {status(r)} |"
        )
    w2, p2 = results.get("wsio-redis-2"), results.get("psio-redis-2")
    if usable(w2) and usable(p2):
        assert w2 is not None and p2 is not None
        lines += [
            "",
            "With two nodes on Redis, wsio delivers "
            f"{w2['deliveries_per_s'] / p2['deliveries_per_s']:.1f}x as many broadcasts per "
            f"second as python-socketio with `AsyncRedisManager` on the same setup, and "
            f"{w2['per_cpu_s'] / p2['per_cpu_s']:.1f}x as many per second of server CPU. "
            "Most of that gap is the servers' own broadcast speed (compare the 1-node "
            "rows); the adapters compare through the ratio columns (what going through "
            "Redis costs each server) and the bystander cost below.",
        ]
    lines += [
        "",
        f"**Bystander cost.** Two nodes; all {MEMBERS} members on the first, {IDLE} idle "
        "clients (in no room) on the second. CPU the second node spends per 1000 broadcasts "
        "to the room (none of which concern its clients):",
        "",
        "| server | 2nd node CPU per 1000 broadcasts | 2nd node CPU | deliveries/s | status |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for sc in SCENARIOS:
        if not sc.bystander:
            continue
        r = results.get(sc.key)
        if not r or "bystander_ms_per_1000" not in r:
            lines.append(f"| {sc.label} | - | - | - | {status(r)} |")
            continue
        lines.append(
            f"| {sc.label} | {r['bystander_ms_per_1000']:.1f} ms | {r['cpu']['node1']:.1%} | "
            f"{r['deliveries_per_s']:,.0f} | {status(r)} |"
        )
    lines += [
        "",
        "wsio publishes a broadcast to one room on that room's channel, which only the nodes "
        "holding members of the room subscribe to, so the second node receives nothing; "
        "python-socketio publishes every emit on one channel that every node receives and "
        "decodes.",
        "",
        "Node CPU is the sum over the nodes, in % of one core over the measured window. "
        f"INVALID: the generator used more than {GEN_LIMIT:.0%} of its core. NOISY: a "
        f"process waited for its core more than {NOISE_LIMIT:.0%} of the window (another "
        "task ran there); noisy rounds count only when no round was clean.",
    ]
    return "\n".join(lines)


def redis_version() -> str:
    try:
        out = subprocess.run(
            [require_binary("redis-server"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for part in out.split():
            if part.startswith("v="):
                return part[2:]
    except (OSError, RuntimeError):
        pass
    return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", default=[], help="a scenario key (repeatable)")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    chosen = [sc for sc in SCENARIOS if not args.only or sc.key in args.only]
    runs: dict[str, list[dict[str, Any]]] = {sc.key: [] for sc in chosen}
    with tempfile.TemporaryDirectory(prefix="wsio-bench-redis-") as tmp:
        for n in range(args.rounds):
            for sc in chosen:
                r = run_scenario(sc, args, Path(tmp))
                runs[sc.key].append(r)
                shown = (
                    f"{r['deliveries_per_s']:,.0f} deliveries/s" if "deliveries_per_s" in r else "-"
                )
                if "bystander_ms_per_1000" in r:
                    shown += f", 2nd node {r['bystander_ms_per_1000']:.1f} ms/1000 broadcasts"
                print(f"round {n + 1} {sc.key:22} {shown:50} {status(r)}", flush=True)
    results = {sc.key: median(runs[sc.key], sc) for sc in chosen}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    (RESULTS_DIR / f"redis-{stamp}.json").write_text(
        json.dumps({"machine": machine(), "runs": runs}, indent=1)
    )
    body = markdown(results, args)
    print("\n" + body)
    if not args.only and not args.no_docs:
        replace_section("redis", body)
    return 0 if all(usable(r) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
