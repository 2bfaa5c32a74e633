"""Start, wait for and stop the real peers the tests talk to.

Every process is started in its own session (so in its own process group) and
stopped by signalling that group through the PID we got back, never by name.
Long-lived ones are started through :func:`guarded`, so that they end even if
the test process itself is killed (SIGKILL leaves no chance to clean up).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The repository root (the directory holding pyproject.toml)."""

NODE_DIR = REPO_ROOT / "tests" / "interop"
"""Directory of the Node interop scripts and their ``node_modules``."""

SETUP_HINT = "run scripts/setup.sh to install the test dependencies"


def guarded(cmd: Sequence[str | os.PathLike[str]]) -> list[str]:
    """*cmd* set to receive SIGTERM when the process that starts it dies.

    ``setpriv --pdeathsig`` (util-linux) sets the parent-death signal and execs
    *cmd*, which keeps the PID: stopping it by PID works as before. Start it
    from the main thread (the signal follows the thread that forked). Where
    ``setpriv`` is missing, *cmd* is returned as it is.
    """
    command = [os.fspath(part) for part in cmd]
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return command
    return [setpriv, "--pdeathsig", "TERM", "--", *command]


def require_binary(name: str) -> str:
    """Return the full path of executable ``name``.

    Raises:
        RuntimeError: when it is not on ``PATH``; the message says how to install it.
    """
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name!r} not found on PATH: {SETUP_HINT}")
    return path


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free when this function ran."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(
    port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 10.0
) -> None:
    """Block until something accepts TCP connections on ``127.0.0.1:port``.

    Args:
        port: the port to probe.
        proc: if given, fail as soon as this process exits.
        timeout: seconds to wait in total.

    Raises:
        RuntimeError: ``proc`` exited before the port opened.
        TimeoutError: nothing listened within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited early with rc={proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def start(
    cmd: Sequence[str | os.PathLike[str]],
    port: int,
    timeout: float = 10.0,
    **kwargs: Any,
) -> subprocess.Popen[Any]:
    """Start ``cmd`` in a new process group and wait until it listens on ``port``.

    Extra keyword arguments go to :class:`subprocess.Popen`; pass ``stdout`` /
    ``stderr`` as ``DEVNULL`` or a file, never an unread ``PIPE``. The process is
    stopped again if it fails to come up.
    """
    proc = subprocess.Popen(guarded(cmd), start_new_session=True, **kwargs)
    try:
        wait_listening(port, proc, timeout)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """Stop ``proc`` and its process group: SIGTERM, then SIGKILL after ``timeout`` s.

    Returns the exit status. Safe to call on a process that has already exited.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


NGINX_MAIN = """\
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{http}
}}
"""


def start_nginx(directory: Path, http: str, port: int) -> subprocess.Popen[Any]:
    """Start a private nginx whose ``http`` block holds *http*, listening on *port*.

    The configuration, pid file, logs and temporary files live in *directory*.
    Raises RuntimeError with nginx's own message when it refuses the
    configuration; stop the process with :func:`stop`.
    """
    binary = require_binary("nginx")
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_MAIN.format(tmp=directory, http=http))
    base = [binary, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]
    check = subprocess.run([*base, "-t", "-q"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        raise RuntimeError(f"nginx rejected its config:\n{check.stderr}")
    with (directory / "stderr.log").open("wb") as log:
        return start([*base, "-g", "daemon off;"], port, stderr=log)


def start_redis(port: int, directory: str | os.PathLike[str]) -> subprocess.Popen[Any]:
    """Start a private redis-server on ``127.0.0.1:port``, without persistence.

    *directory* is its working directory. Returns once it accepts connections;
    stop it with :func:`stop`.
    """
    return start(
        [require_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(directory),
         "--logfile", ""],
        port,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


class NodeResult(NamedTuple):
    """Outcome of :func:`run_node`."""

    returncode: int
    lines: list[Any]
    """Every non-empty stdout line, parsed as JSON."""
    stderr: str


def node_env() -> dict[str, str]:
    """Environment for Node processes: resolves packages from ``NODE_DIR/node_modules``.

    Raises:
        RuntimeError: the Node packages are not installed.
    """
    modules = NODE_DIR / "node_modules"
    if not (modules / ".package-lock.json").exists():
        raise RuntimeError(f"{modules} is missing or incomplete: {SETUP_HINT}")
    return {**os.environ, "NODE_PATH": str(modules)}


def run_node(script: str | os.PathLike[str], *args: object, timeout: float = 20.0) -> NodeResult:
    """Run a Node script to completion and parse its JSON-lines stdout.

    Args:
        script: path relative to :data:`NODE_DIR` (or absolute); the script can
            ``require`` any package of ``tests/interop/package.json`` wherever it lives.
        args: command-line arguments, converted with ``str``.
        timeout: seconds before the script is killed (:class:`subprocess.TimeoutExpired`).
    """
    node = require_binary("node")
    proc = subprocess.run(
        [node, str(NODE_DIR / script), *map(str, args)],
        cwd=NODE_DIR,
        env=node_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return NodeResult(proc.returncode, lines, proc.stderr)


async def run_node_async(
    script: str | os.PathLike[str], *args: object, timeout: float = 20.0
) -> NodeResult:
    """:func:`run_node` for async tests: the event loop (and a server on it) keeps running.

    The script runs in its own process group, which is killed if it outlives *timeout*.
    """
    node = require_binary("node")
    proc = await asyncio.create_subprocess_exec(
        *guarded([node, str(NODE_DIR / script), *map(str, args)]),
        cwd=NODE_DIR,
        env=node_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    text = out.decode()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    return NodeResult(proc.returncode if proc.returncode is not None else -1, lines, err.decode())


class NginxFactory(Protocol):
    """Type of the ``nginx_factory`` fixture: starts a reverse proxy, returns its port."""

    def __call__(self, upstreams: list[int], balance: str = "", websocket: bool = True) -> int:
        """Proxy ``127.0.0.1:<returned port>`` to the ``upstreams`` ports."""
        ...


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: str | os.PathLike[str]) -> Iterator[int]:
    """Serve ``directory`` over HTTP on 127.0.0.1 from a thread; yields the port."""
    handler = functools.partial(_QuietHandler, directory=os.fspath(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
