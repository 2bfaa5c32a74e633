"""Pieces shared by the Socket.IO (bench/sio) and Engine.IO (bench/eio) benchmarks.

Builds the C load generator (``ioload.c``), starts servers pinned to core 0,
runs the generator pinned to core 1 while sampling both sides' CPU from
``/proc``, judges each measurement (ok / NOISY / INVALID / ERROR), and turns
cProfile output into a short "where the time goes" table.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parents[1]


def _load_bench_common() -> Any:
    """bench/common.py (paths, process and CPU helpers), loaded under its own name:
    this module is ``common`` too for the scripts that put bench/sio on sys.path."""
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_common"] = module
    spec.loader.exec_module(module)
    return module


common = _load_bench_common()

HERE = Path(__file__).resolve().parent
GENERATOR_SOURCE = HERE / "ioload.c"
SERVER_CORE, GEN_CORE = "0", "1"
GEN_LIMIT = 0.90
"""Generator CPU share (of one core) above which a measurement is INVALID."""
NOISE_LIMIT = 0.05
"""Share of a pinned core other processes may use during the window before the
measurement is NOISY."""
PAR = 0.90
""""On par" means at least this fraction of the reference figure."""

__all__ = [
    "GEN_LIMIT",
    "NOISE_LIMIT",
    "PAR",
    "Bench",
    "Metric",
    "Server",
    "Target",
    "build_generator",
    "cell",
    "close_quietly",
    "common",
    "dist_version",
    "main",
    "misses",
    "node_package_version",
    "node_server",
    "node_version",
    "pick",
    "profile_summary",
    "profiles_markdown",
    "python_server",
    "raise_nofile",
    "rate",
    "rate_cell",
    "results_markdown",
    "rss_kib",
    "run_generator",
    "running",
    "section_head",
    "start_server",
    "status",
    "usable",
    "window",
    "wsio_servers",
]


@dataclass
class Server:
    """A server under test: how to start it and what it is."""

    name: str
    label: str
    """Name in the tables, with its version."""
    cmd: list[str]
    """Command line; ``{port}`` is replaced by the port."""
    node: bool = False
    """Runs on Node (needs ``NODE_PATH``)."""
    profile_cmd: list[str] | None = None
    """Command line that runs it under cProfile; ``{profile}`` is the stats file."""
    env: dict[str, str] = field(default_factory=dict)


def dist_version(dist: str) -> str:
    """Installed version of a Python distribution, or ``?``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def node_package_version(package: str) -> str:
    """Version of a package under tests/interop/node_modules, or ``?``."""
    path = common.NODE_DIR / "node_modules" / package / "package.json"
    try:
        return str(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "?"


def node_version() -> str:
    """``node --version``."""
    node = common.require_binary("node")
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


def wsio_servers(script: Path, sync_label: str) -> list[Server]:
    """The wsio server ``script`` twice: with its coroutine handlers, and with ``--sync``
    (plain functions) as ``wsio-sync``, labelled ``wsio <version>, <sync_label>``."""
    cmd = [sys.executable, str(script), "--port", "{port}"]
    version = dist_version("wsio")
    return [
        Server("wsio", f"wsio {version}", cmd, profile_cmd=[*cmd, "--profile", "{profile}"]),
        Server(
            "wsio-sync",
            f"wsio {version}, {sync_label}",
            [*cmd, "--sync"],
            profile_cmd=[*cmd, "--sync", "--profile", "{profile}"],
        ),
    ]


def python_server(dist: str, script: Path) -> Server:
    """A reference Python server named after its distribution ``dist``, run from ``script``."""
    return Server(
        dist, f"{dist} {dist_version(dist)}", [sys.executable, str(script), "--port", "{port}"]
    )


def node_server(package: str, script: Path) -> Server:
    """The reference Node server ``node``, run from ``script`` on the npm ``package``."""
    return Server(
        "node",
        f"Node {package} {node_package_version(package)}",
        [shutil.which("node") or "node", str(script), "--port", "{port}"],
        node=True,
    )


def raise_nofile(need: int) -> tuple[int, int]:
    """Raise this process's soft open-file limit to the hard one (children inherit it).

    Returns ``(soft, hard)`` after the change.

    Raises:
        RuntimeError: the hard limit is below ``need``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if hard != resource.RLIM_INFINITY and hard < need:
        raise RuntimeError(
            f"the hard open-file limit is {hard}, below the {need} this benchmark needs "
            "(raise it, e.g. `ulimit -Hn`, as root)"
        )
    return soft, hard


def build_generator(workdir: Path) -> Path:
    """Compile ioload.c into ``workdir``; returns the binary."""
    gcc = common.require_binary("gcc")
    binary = workdir / "ioload"
    subprocess.run(
        [gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(GENERATOR_SOURCE)],
        check=True,
    )
    return binary


def start_server(
    server: Server, logs: Path, *, profile: Path | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``server`` pinned to the server core on a free port; returns (process, port)."""
    port = common.free_port()
    cmd = server.profile_cmd if profile is not None and server.profile_cmd else server.cmd
    args = [a.replace("{port}", str(port)).replace("{profile}", str(profile)) for a in cmd]
    env = {**(common.node_env() if server.node else os.environ), **server.env}
    log = logs / f"{server.name}.log"
    with log.open("ab") as out:
        try:
            proc = common.start(
                ["taskset", "-c", SERVER_CORE, *args],
                port,
                timeout=20,
                env=env,
                stdout=out,
                stderr=out,
            )
        except (RuntimeError, TimeoutError, OSError) as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{server.name} did not start: {exc}: {' | '.join(tail)}") from exc
    return proc, port


@contextlib.contextmanager
def running(
    server: Server, logs: Path, *, profile: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """:func:`start_server`, then a short settling pause; the server is stopped on exit."""
    proc, port = start_server(server, logs, profile=profile)
    try:
        time.sleep(0.3)
        yield proc, port
    finally:
        common.stop(proc, timeout=15)


def rss_kib(pid: int) -> int:
    """Resident memory (VmRSS, KiB) of ``pid`` and every process of its group."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2 :].split()[2]) != pid:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


_TICK = os.sysconf("SC_CLK_TCK")


def core_busy(core: str) -> float:
    """Seconds core ``core`` spent running tasks (user + nice + system) since boot."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                fields = line.split()
                return (int(fields[1]) + int(fields[2]) + int(fields[3])) / _TICK
    return 0.0


def run_generator(
    binary: Path,
    mode: str,
    port: int,
    server_pid: int,
    options: list[str],
    *,
    timeout: float,
    on_line: Any = None,
    keep_stdin: bool = False,
) -> dict[str, Any]:
    """Run ``ioload MODE`` pinned to the generator core and collect its result.

    CPU time and run-queue waits of both sides are sampled at every line the
    generator prints. The window between the ``measure`` phase line (or
    ``connect``/``connected`` for sio-idle) and the next line gives
    ``server_cpu``, ``gen_cpu`` (shares of one core), ``server_wait`` and
    ``gen_wait`` (time their threads waited for a core, all threads added up),
    and ``server_core_other`` / ``gen_core_other``: the share of each pinned
    core that other processes used. ``on_line(phase, stdin)`` is called for each phase line; with
    ``keep_stdin`` the generator's standard input stays open until ``on_line``
    closes it (sio-idle holds its clients until then).
    """
    cmd = ["taskset", "-c", GEN_CORE, str(binary), mode, "--port", str(port), *options]
    gen = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if keep_stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert gen.stdout is not None
    watchdog = threading.Timer(timeout, lambda: common.stop(gen, 1))
    watchdog.start()
    marks: list[tuple[str, float, tuple[float, float], tuple[float, float], float, float]] = []
    result: dict[str, Any] = {}
    phases: dict[str, Any] = {}
    try:
        for line in gen.stdout:
            sample = (
                time.monotonic(),
                common.usage(server_pid, group=True),
                common.usage(gen.pid),
                core_busy(SERVER_CORE),
                core_busy(GEN_CORE),
            )
            msg = json.loads(line)
            phase = msg.get("phase", "end")
            marks.append((phase, *sample))
            if phase == "end":
                result = msg
            else:
                phases[phase] = msg
                if on_line is not None:
                    on_line(phase, gen.stdin)
        gen.wait()
    finally:
        watchdog.cancel()
        if gen.stdin is not None and not gen.stdin.closed:
            gen.stdin.close()
        common.stop(gen)
    if "mode" not in result:
        result = {
            "count": 0,
            "seconds": 0,
            "errors": 1,
            "error": f"generator produced no result (rc={gen.returncode})",
        }
    if phases:
        result["phases"] = phases
    start = "connect" if mode == "sio-idle" else "measure"
    names = [m[0] for m in marks]
    if start in names and names.index(start) + 1 < len(marks):
        i = names.index(start)
        (_, t0, s0, g0, sc0, gc0), (_, t1, s1, g1, sc1, gc1) = marks[i], marks[i + 1]
        span = t1 - t0
        if span > 0:
            result["server_cpu"] = (s1[0] - s0[0]) / span
            result["gen_cpu"] = (g1[0] - g0[0]) / span
            result["server_wait"] = (s1[1] - s0[1]) / span
            result["gen_wait"] = (g1[1] - g0[1]) / span
            # tick-granular counters: small negative values are rounding
            other_s = (sc1 - sc0) / span - result["server_cpu"]
            other_g = (gc1 - gc0) / span - result["gen_cpu"]
            result["server_core_other"] = max(0.0, other_s)
            result["gen_core_other"] = max(0.0, other_g)
    return result


def status(result: dict[str, Any], *, counted: bool = True) -> str:
    """``ok``, or why this measurement does not count (ERROR, INVALID, NOISY)."""
    if result.get("errors"):
        return f"ERROR: {result.get('error') or 'generator error'}"
    if counted and not result.get("count"):
        return "ERROR: nothing counted"
    if result.get("gen_cpu", 0) > GEN_LIMIT:
        return f"INVALID: generator at {result['gen_cpu']:.0%} of its core"
    others = {
        "server's": result.get("server_core_other", 0),
        "generator's": result.get("gen_core_other", 0),
    }
    if max(others.values()) > NOISE_LIMIT:
        return "NOISY: other tasks used " + ", ".join(
            f"{v:.0%} of the {k} core" for k, v in others.items() if v > NOISE_LIMIT
        )
    return "ok"


def usable(cell: dict[str, Any] | None) -> bool:
    """Whether a measurement may be compared: clean, or only noisy."""
    return cell is not None and str(cell.get("status", "")).startswith(("ok", "NOISY"))


def pick(cells: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The median of the clean measurements over rounds (the lower middle one for an
    even count), else of the usable noisy ones, else the last one. The chosen cell
    gets ``range`` (lowest, highest of those considered) and ``of`` (how many)."""
    for prefix in ("ok", "NOISY"):
        chosen = sorted(
            (c for c in cells if str(c.get("status", "")).startswith(prefix)),
            key=lambda c: c["value"],
        )
        if chosen:
            middle = dict(chosen[(len(chosen) - 1) // 2])
            middle["range"] = (chosen[0]["value"], chosen[-1]["value"])
            middle["of"] = len(chosen)
            return middle
    return cells[-1] if cells else None


def _short(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    path = Path(filename)
    parts = path.parts
    if "wsio" in parts:
        where = "/".join(parts[parts.index("wsio") :])
    elif "site-packages" in parts:
        where = "/".join(parts[parts.index("site-packages") + 1 :])
    elif filename == "~":
        return name  # a built-in
    else:
        where = path.name
    return f"{where}:{line} {name}"


def profile_summary(stats_file: Path, top: int = 12) -> dict[str, Any]:
    """The functions with the most self time and cumulative time in a cProfile dump.

    Returns ``{"total": seconds, "self": [(function, seconds, share)], "cumulative":
    [...]}``; shares are of the total profiled time. The event loop's own
    ``run``/``select`` frames are left out of the cumulative list (they contain
    everything).
    """
    st = pstats.Stats(str(stats_file))
    raw: dict[Any, Any] = st.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    by_self = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    skip = ("run_async", "run_until_complete", "run_forever", "<module>", "main", "serve_wsio")
    by_cum = [
        kv
        for kv in sorted(raw.items(), key=lambda kv: kv[1][3], reverse=True)
        if kv[0][2] not in skip
        and not kv[0][2].startswith(("<built-in method builtins.exec",))
        and kv[0][0] != "~"
        and "uvloop" not in kv[0][0]
        and "cProfile" not in kv[0][0]
        and kv[0][2] not in ("run", "_run_once", "__call__")
    ][:top]
    layers: dict[str, float] = {}
    for k, v in raw.items():
        layer = _layer(k)
        layers[layer] = layers.get(layer, 0.0) + v[2]
    return {
        "total": total,
        "layers": sorted(((n, t / total) for n, t in layers.items()), key=lambda x: -x[1]),
        "self": [(_short(k), v[2], v[2] / total, v[1]) for k, v in by_self],
        "cumulative": [(_short(k), v[3], v[3] / total, v[1]) for k, v in by_cum],
    }


def _layer(func: tuple[str, int, str]) -> str:
    """Where a profiled function belongs, for the by-layer breakdown."""
    filename, _, name = func
    parts = Path(filename).parts
    if filename == "~":
        if "orjson" in name or "json" in name:
            return "JSON"
        return "other built-ins"
    if parts[-2:] == ("asyncio", "runners.py") and name == "run":
        # uvloop's compiled code is invisible to cProfile: its time lands in the
        # frame that started the loop
        return "event loop (uvloop C code: polling, reads, idle)"
    if "wsio" in parts:
        sub = parts[parts.index("wsio") + 1]
        return "wsio/" + (sub if not sub.endswith(".py") else sub[:-3].lstrip("_") or sub)
    if "servers" in parts:
        return "benchmark handlers"
    if "asyncio" in parts:
        return "asyncio (Python)"
    if "json" in parts:
        return "JSON"
    if "uvloop" in parts:
        return "event loop (uvloop)"
    return "other Python"


def close_quietly(stream: IO[str] | None) -> None:
    """Close a pipe if it is still open."""
    if stream is not None and not stream.closed:
        try:
            stream.close()
        except OSError:
            pass


# -- metrics, targets and the docs section ---------------------------------------------


@dataclass(frozen=True)
class Target:
    """What wsio must reach on a metric: a ratio to a reference server, or a bound."""

    ref: str | None
    """Server name the ratio is taken against; None for an absolute bound."""
    factor: float
    """Minimum ratio (higher-is-better metrics) or maximum value (``ref`` None)."""

    def describe(self, labels: dict[str, str], unit: str) -> str:
        """Human wording of the target."""
        if self.ref is None:
            return f"at most {self.factor:g} {unit}"
        name = labels.get(self.ref, self.ref)
        if self.factor == PAR:
            return f"on par with {name} (>= {PAR:.0%})"
        return f">= {self.factor:g}x {name}"

    def met(self, value: float, cells: dict[str, dict[str, Any] | None]) -> bool | None:
        """Whether ``value`` meets it; None when the reference has no usable measurement."""
        if self.ref is None:
            return value <= self.factor
        ref = cells.get(self.ref)
        if not usable(ref) or not ref or not ref["value"]:
            return None
        return value / ref["value"] >= self.factor


@dataclass(frozen=True)
class Metric:
    """One number a scenario produces."""

    key: str
    scenario: str
    title: str
    unit: str
    higher: bool = True
    decimals: int = 0
    targets: tuple[Target, ...] = ()

    def fmt(self, value: float) -> str:
        """The value with thousands separators."""
        return f"{value:,.{self.decimals}f}"


def ratio(cell: dict[str, Any] | None, ref: dict[str, Any] | None) -> str:
    """``cell / ref`` for the tables, with ``*`` when either is noisy."""
    if not usable(cell) or not usable(ref) or not ref or not ref["value"] or not cell:
        return "n/a"
    noisy = any(c["status"] != "ok" for c in (cell, ref))
    return f"{cell['value'] / ref['value']:.2f}x" + ("*" if noisy else "")


def cell_text(metric: Metric, cell: dict[str, Any] | None) -> str:
    """A measured value for the tables, or why there is none."""
    if cell is None:
        return "not run"
    if not usable(cell):
        return "invalid" if cell["status"].startswith("INVALID") else "error"
    return metric.fmt(cell["value"]) + ("*" if cell["status"] != "ok" else "")


def section_head(title: str, report: dict[str, Any], generator: str, setup: str) -> list[str]:
    """The start of a docs section: its title and the conditions of the run.

    ``generator`` says what the load generator speaks (after "C, epoll, "), ``setup``
    how the servers were configured.
    """
    m = report["machine"]
    return [
        f"## {title}",
        "",
        f"Run of {report['date']}: {m['cores']} cores ({m['cpu']}), {m['system']}, Python "
        f"{m['python']}, Node {report.get('node', node_version())}. {report['warmup']:g} s "
        f"warm-up then {report['duration']:g} s measured per scenario, median of "
        f"{report['rounds']} round(s); each server is started afresh for each scenario, "
        f"pinned to core 0. The load generator (`bench/sio/ioload.c`: C, epoll, {generator}) "
        f"is pinned to core 1; a measurement where it used more than {GEN_LIMIT:.0%} of its "
        f"core is INVALID. {setup}",
        "",
        "The machine is shared and noisy: compare the ratios, not the absolute numbers.",
        "",
    ]


def results_markdown(
    report: dict[str, Any],
    metrics: list[Metric],
    subject: str,
    extra_subjects: list[str],
    refs: list[str],
) -> list[str]:
    """The results table (one row per metric), the targets, and every measurement."""
    labels: dict[str, str] = {n: s["label"] for n, s in report["servers"].items()}
    names = list(report["servers"])
    cells_of: dict[str, dict[str, dict[str, Any] | None]] = report["chosen"]
    pairs = [(s, r) for s in [subject, *extra_subjects] for r in refs if s in names and r in names]
    head = ["metric", *[labels[n] for n in names], *[f"{s} / {r}" for s, r in pairs]]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    noisy = False
    for m in metrics:
        row_cells = [cells_of.get(n, {}).get(m.key) for n in names]
        if all(c is None for c in row_cells):
            continue
        row = [f"{m.title}, {m.unit} ({'higher' if m.higher else 'lower'} is better)"]
        row += [cell_text(m, c) for c in row_cells]
        row += [
            ratio(cells_of.get(s, {}).get(m.key), cells_of.get(r, {}).get(m.key)) for s, r in pairs
        ]
        noisy |= any(usable(c) and c is not None and c["status"] != "ok" for c in row_cells)
        lines.append("| " + " | ".join(row) + " |")
    if noisy:
        lines += [
            "",
            "\\* from noisy measurements only: in every round, other processes used more than "
            f"{NOISE_LIMIT:.0%} of a pinned core during the window.",
        ]
    if subject in names:
        lines += ["", f"Targets for {subject}:", ""]
        lines += ["| metric | target | result | met |", "| --- | --- | --- | --- |"]
        for m in metrics:
            cells = {n: cells_of.get(n, {}).get(m.key) for n in names}
            mine = cells.get(subject)
            if mine is None:
                continue
            for t in m.targets:
                want = t.describe(labels, m.unit)
                if not usable(mine):
                    lines.append(f"| {m.title} | {want} | no usable measurement | ? |")
                    continue
                ok = t.met(mine["value"], cells)
                got = (
                    f"{m.fmt(mine['value'])} {m.unit}"
                    if t.ref is None
                    else ratio(mine, cells.get(t.ref))
                )
                verdict = "?" if ok is None else "yes" if ok else "**no**"
                lines.append(f"| {m.title} | {want} | {got} | {verdict} |")
    lines += [
        "",
        'Every measurement kept. CPU is in % of one core over the measured window; "per '
        "server CPU-second\" divides the throughput by the server's CPU share, which moves "
        "less than the raw figure when other tasks compete for the server's core (it "
        "assumes the server was busy whenever it ran):",
        "",
        "| metric | server | value | range over rounds | per server CPU-second | server CPU "
        "| generator CPU | status |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in metrics:
        for n in names:
            c = cells_of.get(n, {}).get(m.key)
            if c is None:
                continue
            cpu = c.get("server_cpu", 0)
            per_cpu = f"{m.fmt(c.get('value', 0) / cpu)}" if m.higher and cpu > 0.05 else ""
            lo, hi = c.get("range", (c.get("value", 0), c.get("value", 0)))
            spread = f"{m.fmt(lo)} - {m.fmt(hi)} ({c.get('of', 1)})"
            lines.append(
                f"| {m.title} | {n} | {m.fmt(c.get('value', 0))} {m.unit} | {spread} | {per_cpu} "
                f"| {cpu:.0%} | {c.get('gen_cpu', 0):.0%} | {c['status']} |"
            )
    return lines


def misses(report: dict[str, Any], metrics: list[Metric], subject: str) -> list[Metric]:
    """Metrics on which ``subject`` misses a target (or has no usable measurement)."""
    out = []
    names = list(report["servers"])
    for m in metrics:
        cells = {n: report["chosen"].get(n, {}).get(m.key) for n in names}
        mine = cells.get(subject)
        if not m.targets or mine is None:
            continue
        if not usable(mine) or any(t.met(mine["value"], cells) is False for t in m.targets):
            out.append(m)
    return out


def profiles_markdown(report: dict[str, Any], titles: dict[str, str]) -> list[str]:
    """The "where the time goes" part: one block per profiled scenario."""
    if not report.get("profiles"):
        return []
    subject = report.get("subject", "wsio")
    lines = [
        "",
        f"### Where {subject}'s time goes",
        "",
        f"cProfile runs of the {subject} server (`async def` handlers) under the same load as "
        "above, made after the measurements (for the scenarios where it missed a target, "
        "unless asked for all). cProfile slows Python code down several times, so only the "
        'shares matter. "Layer" adds up self time by where the code lives. uvloop is compiled '
        "code that cProfile cannot see into: its own time (epoll, socket reads, dispatching "
        "callbacks, idle) shows as self time of `asyncio/runners.py run`, the frame that "
        "started the loop, and a socket write as self time of the wsio function that calls "
        "the transport.",
    ]
    for p in report["profiles"]:
        summary = p["summary"]
        under = ", ".join(f"{k} {v['value']:,.0f}" for k, v in p["under_profile"].items())
        lines += ["", f"#### {titles.get(p['scenario'], p['scenario'])}", ""]
        lines.append(f"{summary['total']:.1f} s profiled; under the profiler: {under}.")
        lines += ["", "| layer | self time |", "| --- | ---: |"]
        for name, share in summary["layers"]:
            if share >= 0.0005:
                lines.append(f"| {name} | {share:.1%} |")
        lines += ["", "| top self time | share | calls |", "| --- | ---: | ---: |"]
        for name, _secs, share, calls in summary["self"]:
            lines.append(f"| `{name}` | {share:.1%} | {calls:,} |")
        lines += ["", "| top cumulative time | share | calls |", "| --- | ---: | ---: |"]
        for name, _secs, share, calls in summary["cumulative"]:
            lines.append(f"| `{name}` | {share:.1%} | {calls:,} |")
    return lines


# -- the driver both run.py scripts use --------------------------------------------------


@dataclass
class Bench:
    """What a benchmark script provides to :func:`main`."""

    section: str
    """Marked section of docs/benchmarks.md, and the prefix of the JSON results."""
    description: str
    subject: str
    """The server whose targets are checked (and which is profiled when it misses one)."""
    servers: list[Server]
    scenarios: list[str]
    metrics: list[Metric]
    measure: Any
    """``measure(server, scenario, gen, args, workdir, profile=None) -> {metric: cell}``."""
    markdown: Any
    """``markdown(report) -> str``."""
    nofile: int = 1024
    """Open files the run needs (both processes)."""


def cell(value: float, result: dict[str, Any], *, counted: bool = True) -> dict[str, Any]:
    """A measurement: the generator's result with its ``value`` and ``status``."""
    return {**result, "value": value, "status": status(result, counted=counted)}


def rate(result: dict[str, Any]) -> float:
    """Counted units per second of a generator result."""
    return float(result["count"]) / result["seconds"] if result.get("seconds") else 0.0


def window(args: Any) -> list[str]:
    """The generator's ``--warmup``/``--duration`` options."""
    return ["--warmup", str(args.warmup), "--duration", str(args.duration)]


def rate_cell(
    binary: Path,
    mode: str,
    port: int,
    server_pid: int,
    options: list[str],
    args: Any,
    *,
    slack: float = 90,
) -> dict[str, Any]:
    """Run ``ioload MODE`` over the measured window; the rate it counted, as a cell.

    The generator is stopped if it runs ``slack`` seconds past warm-up and window.
    """
    res = run_generator(
        binary,
        mode,
        port,
        server_pid,
        [*options, *window(args)],
        timeout=args.warmup + args.duration + slack,
    )
    return cell(rate(res), res)


def _profiles(
    bench: Bench, missed: list[Metric], chosen: list[Server], gen: Path, args: Any, workdir: Path
) -> list[dict[str, Any]]:
    """Run the subject server under cProfile in each scenario where it missed a target."""
    server = next((s for s in chosen if s.name == bench.subject and s.profile_cmd), None)
    if server is None:
        return []
    out = []
    for scenario in dict.fromkeys(m.scenario for m in missed if m.higher):
        # (memory is not a matter of time: the RSS metric alone gets no profile)
        stats = workdir / f"profile-{scenario}.pstats"
        print(f"profiling {server.name} in {scenario} (cProfile)", flush=True)
        try:
            cells = bench.measure(server, scenario, gen, args, workdir, profile=stats)
        except RuntimeError as exc:
            print(f"  profile run failed: {exc}", flush=True)
            continue
        if not stats.exists():
            print("  no profile written", flush=True)
            continue
        out.append(
            {
                "scenario": scenario,
                "metrics": [m.key for m in missed if m.scenario == scenario],
                "summary": profile_summary(stats),
                "under_profile": {
                    k: {"value": c["value"], "status": c["status"]} for k, c in cells.items()
                },
            }
        )
    return out


def main(bench: Bench, argv: list[str] | None = None) -> int:
    """Parse the command line, run every round, report; returns the exit status."""
    import argparse
    import datetime as dt
    import tempfile

    names = [s.name for s in bench.servers]
    parser = argparse.ArgumentParser(description=bench.description)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds (1)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds; the median of the valid runs counts"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"a server ({', '.join(names)}) or a scenario ({', '.join(bench.scenarios)}); "
        "repeatable; docs are left alone",
    )
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help=f"cProfile runs of {bench.subject}: in the scenarios where it misses a target "
        "(auto, the default), in every scenario run (always), or none",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument(
        "--render",
        metavar="JSON",
        help="run nothing: rewrite the docs section from the raw results of an earlier full run",
    )
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads(Path(args.render).read_text())
        text = bench.markdown(report)
        print(text)
        if not args.no_docs:
            common.replace_section(bench.section, text)
            print("updated docs/benchmarks.md")
        return 0
    if unknown := set(args.only) - set(names) - set(bench.scenarios):
        parser.error(f"unknown name(s) {sorted(unknown)}; choose from {names + bench.scenarios}")
    only_servers = [n for n in args.only if n in names]
    only_scenarios = [n for n in args.only if n in bench.scenarios]
    chosen = [s for s in bench.servers if not only_servers or s.name in only_servers]
    scenarios = [s for s in bench.scenarios if not only_scenarios or s in only_scenarios]
    for tool in ("taskset", "node", "gcc"):
        common.require_binary(tool)
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 cores, server and generator share one", file=sys.stderr)
    soft, hard = raise_nofile(bench.nofile)
    print(f"open-file limit: {soft} (hard {hard})", flush=True)

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {s.name: {} for s in chosen}
    by_key = {m.key: m for m in bench.metrics}
    with tempfile.TemporaryDirectory(prefix=f"{bench.section}bench-") as tmp:
        workdir = Path(tmp)
        gen = build_generator(workdir)
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds}", flush=True)
            order = chosen[rnd % len(chosen) :] + chosen[: rnd % len(chosen)]
            for scenario in scenarios:
                for server in order:
                    try:
                        cells = bench.measure(server, scenario, gen, args, workdir)
                    except RuntimeError as exc:
                        err = {"value": 0.0, "status": f"ERROR: {exc}", "errors": 1}
                        cells = {m.key: dict(err) for m in bench.metrics if m.scenario == scenario}
                    for key, got in cells.items():
                        runs[server.name].setdefault(key, []).append(got)
                        metric = by_key[key]
                        print(
                            f"  {server.name:<16} {key:<9} {metric.fmt(got['value']):>12} "
                            f"{metric.unit:<13} server {got.get('server_cpu', 0):4.0%} "
                            f"gen {got.get('gen_cpu', 0):4.0%} others "
                            f"{got.get('server_core_other', 0):3.0%}/"
                            f"{got.get('gen_core_other', 0):3.0%}  {got['status']}",
                            flush=True,
                        )

        report: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "subject": bench.subject,
            "machine": common.machine(),
            "node": node_version(),
            "warmup": args.warmup,
            "duration": args.duration,
            "rounds": args.rounds,
            "open_files": {"soft": soft, "hard": hard},
            "servers": {s.name: {"label": s.label} for s in chosen},
            "chosen": {
                s.name: {
                    m.key: pick(runs[s.name][m.key]) for m in bench.metrics if m.key in runs[s.name]
                }
                for s in chosen
            },
            "runs": runs,
            "profiles": [],
        }
        missed = misses(report, bench.metrics, bench.subject)
        report["missed"] = [m.key for m in missed]
        if args.profile == "always":
            profiled = [m for m in bench.metrics if m.scenario in scenarios]
        else:
            profiled = missed if args.profile == "auto" else []
        if profiled:
            report["profiles"] = _profiles(bench, profiled, chosen, gen, args, workdir)

    text = bench.markdown(report)
    print("\n" + text)
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = common.RESULTS_DIR / f"{bench.section}-{stamp}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"raw results: {out.relative_to(common.ROOT)}")
    if args.no_docs or args.only:
        print("docs/benchmarks.md left alone (partial run or --no-docs)")
    else:
        common.replace_section(bench.section, text)
        print("updated docs/benchmarks.md")
    bad = [
        f"{name}/{key}"
        for name, cells in report["chosen"].items()
        for key, got in cells.items()
        if not usable(got)
    ]
    if bad:
        print("not valid: " + ", ".join(bad), file=sys.stderr)
    return 1 if bad else 0
