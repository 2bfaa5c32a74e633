"""The ``wsio`` command, run as a user runs it: ``python -m wsio ...`` in a subprocess.

Every command and every error message: --help, bad flags, port in use,
unreachable URLs, missing modules, attributes and optional dependencies;
``wsio run`` serving a Socket.IO server, an Engine.IO server and ASGI apps,
with several workers tied by Redis, and with --reload; the interactive
``wsio connect`` driven through its stdin and stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import wsio
from support.procs import NODE_DIR, REPO_ROOT, free_port, guarded, run_node, start, stop

CLIENT_DIST = NODE_DIR / "node_modules" / "socket.io-client" / "dist"

APP = textwrap.dedent(
    """\
    import os

    import wsio
    import wsio.engineio

    VERSION = "v1"

    sio = wsio.Server()


    @sio.on("connect")
    def connect(socket, auth):
        socket.emit("welcome", auth, socket.nsp.name)


    @sio.on("echo")
    def echo(socket, *args):
        return args


    @sio.on("version")
    def version(socket):
        return VERSION


    @sio.on("pid")
    def pid(socket):
        return os.getpid()


    @sio.on("shout")
    def shout(socket, text):
        sio.emit("shouted", text, os.getpid())


    @sio.on("kick")
    def kick(socket):
        socket.disconnect()


    admin = sio.of("/admin")


    @admin.on("connect")
    def admin_connect(socket, auth):
        socket.emit("welcome", auth, socket.nsp.name)


    asgi = sio.asgi_app()

    eio = wsio.engineio.Server()


    @eio.on("message")
    async def eio_echo(session, data):
        await session.send(data)


    async def plain(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"plain asgi"})


    number = 3
    """
)


# -- helpers ---------------------------------------------------------------------------


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "WSIO_CLIENT_DIST"}
    return {**base, "PYTHONPATH": str(REPO_ROOT / "src"), **extra}


def wsio_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "wsio", *args]


def run(
    *args: str, cwd: Path, timeout: float = 30, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        wsio_cmd(*args),
        cwd=cwd,
        env=kwargs.pop("env", None) or env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


@contextlib.contextmanager
def serving(
    args: list[str], port: int, cwd: Path, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[Any], Path]]:
    """A wsio server command running until the block ends; yields it and its log file."""
    log_path = cwd / f"server-{port}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        proc = start(
            wsio_cmd(*args),
            port,
            timeout=15,
            cwd=cwd,
            env=env(**(extra_env or {})),
            stdout=log,
            stderr=log,
        )
    try:
        yield proc, log_path
    finally:
        stop(proc)


async def sio_call(url: str, event: str, *args: Any, **options: Any) -> Any:
    async with wsio.Client(url, reconnection=False, timeout=5, **options) as client:
        return await client.call(event, *args, timeout=5)


@contextlib.contextmanager
def listening_socket() -> Iterator[int]:
    """A port taken by someone else."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def wait_for_line(log: Path, text: str, count: int = 1, timeout: float = 15) -> None:
    """Wait until *text* appears *count* times in the file *log*."""
    deadline = time.monotonic() + timeout
    while log.read_text().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not in:\n{log.read_text()}"
        time.sleep(0.05)


class Interactive:
    """A ``wsio connect`` process: write lines to its stdin, wait for lines on its stdout."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.stderr_path = cwd / f"connect-{time.monotonic_ns()}.err"
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                guarded(wsio_cmd("connect", *args)),
                cwd=cwd,
                env=env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        """The next stdout line matching *pattern* (lines before it are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                line = None
                remaining = -1
            if line is None:
                raise AssertionError(
                    f"no line matching {pattern!r}; saw {self.seen}; "
                    f"stderr: {self.stderr_path.read_text()}"
                )
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r} in time; saw {self.seen}")

    def close_stdin(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def interactive(app_dir: Path) -> Iterator[Any]:
    made: list[Interactive] = []

    def make(*args: str) -> Interactive:
        client = Interactive(list(args), app_dir)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


# -- help and bad flags ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ([], ["demo", "run", "connect", "echo", "--log-level"]),
        (["demo"], ["--host", "--port", "--redis", "--client-dist", "WSIO_CLIENT_DIST"]),
        (
            ["run"],
            ["module:attribute", "--workers", "--redis", "--reload", "--log-level", "SO_REUSEPORT",
             "sticky"],
        ),
        (["connect"], ["--namespace", "--auth", "--transport", "--websocket", "emit EVENT", "call"]),
        (["echo"], ["--host", "--port", "--max-size", "--no-compression"]),
    ],
)  # fmt: skip
def test_help_everywhere(command: list[str], expected: list[str], tmp_path: Path) -> None:
    result = run(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: wsio {' '.join(command)}".rstrip())
    for word in expected:
        assert word in result.stdout


def test_no_command_prints_help(tmp_path: Path) -> None:
    result = run(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: wsio" in result.stdout and "demo" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--port", "http"], "not a port number: 'http'"),
        (["echo", "--port", "70000"], "70000 is not between 0 and 65535"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["connect"], "the following arguments are required: URL"),
        (["connect", "http://127.0.0.1:1", "--transport", "carrier-pigeon"], "invalid choice"),
        (["run"], "the following arguments are required: APP"),
        (["run", "app:sio", "--log-level", "loud"], "invalid choice: 'loud'"),
    ],
)
def test_bad_flags(args: list[str], message: str, tmp_path: Path) -> None:
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "usage: wsio" in result.stderr
    assert "Traceback" not in result.stderr


# -- errors, one line each ---------------------------------------------------------------


def test_port_in_use(app_dir: Path) -> None:
    with listening_socket() as port:
        for args in (
            ["demo", "--port", str(port), "--client-dist", str(CLIENT_DIST)],
            ["echo", "--port", str(port)],
            ["run", "app:sio", "--port", str(port)],
            ["run", "app:plain", "--port", str(port)],
            ["run", "app:sio", "--port", str(port), "--workers", "2", "--redis", "redis://127.0.0.1:1"],
        ):  # fmt: skip
            result = run(*args, cwd=app_dir)
            assert result.returncode == 1, (args, result.stderr)
            assert (
                f"wsio {args[0]}: cannot listen on 127.0.0.1:{port}: the port is already in use"
                in result.stderr
            ), args
            assert "--port" in result.stderr
            assert "Traceback" not in result.stderr


def test_unreachable_url(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    result = run("connect", f"http://127.0.0.1:{port}", cwd=tmp_path)
    assert result.returncode == 1
    assert f"wsio connect: cannot connect to http://127.0.0.1:{port}" in result.stderr
    result = run("connect", "--websocket", f"ws://127.0.0.1:{port}/", cwd=tmp_path)
    assert result.returncode == 1
    assert f"wsio connect: cannot connect to ws://127.0.0.1:{port}/" in result.stderr
    result = run("connect", "127.0.0.1:8000", cwd=tmp_path)
    assert result.returncode == 2
    assert "is not an http(s):// or ws(s):// URL" in result.stderr
    result = run("connect", f"http://127.0.0.1:{port}", "--auth", "{nope", cwd=tmp_path)
    assert result.returncode == 2
    assert "--auth is not valid JSON" in result.stderr
    result = run("connect", f"http://127.0.0.1:{port}", "--auth", "[1]", cwd=tmp_path)
    assert "--auth must be a JSON object" in result.stderr
    result = run("connect", "--websocket", "ws://x", "--namespace", "/a", cwd=tmp_path)
    assert result.returncode == 2
    assert "--namespace only apply to Socket.IO; drop --websocket" in result.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuchmodule:sio", "cannot import 'nosuchmodule': no such module"),
        ("app:nothere", "module 'app' has no attribute 'nothere'"),
        ("app", "APP must look like module:attribute"),
        ("app:number", "app:number is a int, not a wsio.Server"),
        ("broken:sio", "importing 'broken' failed: ZeroDivisionError"),
        ("needsdep:sio", "importing 'needsdep' failed: No module named 'somethingmissing'"),
    ],
)
def test_run_bad_app(spec: str, message: str, app_dir: Path) -> None:
    (app_dir / "broken.py").write_text("1 / 0\n")
    (app_dir / "needsdep.py").write_text("import somethingmissing\n")
    result = run("run", spec, "--port", "0", cwd=app_dir)
    assert result.returncode in (1, 2)
    assert message in result.stderr, result.stderr


def test_workers_need_redis(app_dir: Path) -> None:
    result = run("run", "app:sio", "--workers", "2", "--port", "0", cwd=app_dir)
    assert result.returncode == 2
    assert "wsio run: --workers 2 needs --redis URL" in result.stderr
    assert "long-polling" in result.stderr
    result = run("run", "app:eio", "--redis", "redis://127.0.0.1:1", cwd=app_dir)
    assert result.returncode == 2
    assert "--redis applies to a Socket.IO server" in result.stderr
    result = run("run", "app:sio", "--workers", "0", cwd=app_dir)
    assert result.returncode == 2
    assert "--workers must be at least 1" in result.stderr


def test_missing_optional_dependencies(app_dir: Path) -> None:
    # Packages that fail to import, shadowing the installed ones.
    blocked = app_dir / "blocked"
    for name in ("redis", "uvicorn"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(
            f"raise ModuleNotFoundError({f'No module named {name!r}'!r}, name={name!r})\n"
        )
    path = os.pathsep.join([str(blocked), str(REPO_ROOT / "src")])
    result = run("demo", "--redis", "redis://127.0.0.1:1", cwd=app_dir, env=env(PYTHONPATH=path))
    assert result.returncode == 1
    assert "wsio demo: --redis needs an optional dependency" in result.stderr
    assert "pip install 'wsio[redis]'" in result.stderr
    result = run("run", "app:plain", "--port", "0", cwd=app_dir, env=env(PYTHONPATH=path))
    assert result.returncode == 1
    assert "app:plain is an ASGI application; serving it needs uvicorn: pip install uvicorn" in (
        result.stderr
    )


def test_demo_without_the_browser_client_says_how_to_get_it(tmp_path: Path) -> None:
    result = run("demo", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    assert "wsio demo: the browser client is missing." in result.stderr
    assert "npm install socket.io-client" in result.stderr
    assert "WSIO_CLIENT_DIST" in result.stderr
    assert "scripts/run.sh" in result.stderr
    result = run("demo", "--client-dist", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.returncode == 2
    assert "is not a directory" in result.stderr


# -- wsio demo --------------------------------------------------------------------------------


def test_demo_serves_the_page_the_bundle_and_the_chat(tmp_path: Path) -> None:
    port = free_port()
    with serving(
        ["demo", "--port", str(port)], port, tmp_path, {"WSIO_CLIENT_DIST": str(CLIENT_DIST)}
    ) as (proc, log):
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(base + "/", timeout=5) as response:
            page = response.read().decode()
        assert "<title>wsio chat</title>" in page
        assert '<script src="/socket.io/socket.io.js"></script>' in page
        for name in ("app.js", "style.css", "socket.io/socket.io.js"):
            with urllib.request.urlopen(f"{base}/{name}", timeout=5) as response:
                assert response.status == 200
                assert len(response.read()) > 1000
        bundle = (CLIENT_DIST / "socket.io.js").read_bytes()
        with urllib.request.urlopen(base + "/socket.io/socket.io.js", timeout=5) as response:
            assert response.read() == bundle

        async def chat() -> None:
            async with (
                wsio.Client(base, auth={"nick": "ann"}, reconnection=False) as ann,
                wsio.Client(base, auth={"nick": "ben"}, reconnection=False) as ben,
            ):
                got: asyncio.Queue[Any] = asyncio.Queue()
                ben.on("message", got.put_nowait)
                await ann.call("join", "general", timeout=5)
                joined = await ben.call("join", "general", timeout=5)
                assert joined["members"] == ["ann", "ben"]
                receipt = await ann.call("message", {"room": "general", "text": "hi"}, timeout=5)
                message = await asyncio.wait_for(got.get(), 5)
                assert message["id"] == receipt["id"]
                assert (message["nick"], message["text"]) == ("ann", "hi")
                history = (await ben.call("join", "general", timeout=5))["history"]
                assert [m["text"] for m in history] == ["hi"]
                answer = await ann.call("message", {"room": "elsewhere", "text": "x"}, timeout=5)
                assert answer == {"error": "join the room first"}
                svg = {"room": "general", "mime": "image/svg+xml"}
                answer = await ann.call("image", svg, b"<svg/>", timeout=5)
                assert answer == {"error": "PNG, JPEG, GIF or WebP images only"}
                with pytest.raises(wsio.ConnectionError, match="pick a nickname"):
                    await sio_call(base, "join", "general", auth={"nick": ""})

        asyncio.run(chat())
        assert f"wsio demo: chat on http://127.0.0.1:{port}/" in log.read_text()
        assert stop(proc) == 0  # SIGTERM: clean exit


def test_demo_processes_share_rooms_through_redis(tmp_path: Path, redis_server: int) -> None:
    redis_url = f"redis://127.0.0.1:{redis_server}/0"
    ports = [free_port(), free_port()]
    extra = {"WSIO_CLIENT_DIST": str(CLIENT_DIST)}
    with (
        serving(["demo", "--port", str(ports[0]), "--redis", redis_url], ports[0], tmp_path, extra)
        as (_, log),
        serving(["demo", "--port", str(ports[1]), "--redis", redis_url], ports[1], tmp_path, extra),
    ):  # fmt: skip

        async def chat() -> None:
            one, two = (f"http://127.0.0.1:{port}" for port in ports)
            async with (
                wsio.Client(one, auth={"nick": "ann"}, reconnection=False) as ann,
                wsio.Client(two, auth={"nick": "ben"}, reconnection=False) as ben,
            ):
                got: asyncio.Queue[Any] = asyncio.Queue()
                presence: asyncio.Queue[Any] = asyncio.Queue()
                ben.on("message", got.put_nowait)
                ann.on("presence", presence.put_nowait)
                await ann.call("join", "general", timeout=5)
                joined = await ben.call("join", "general", timeout=5)
                assert joined["members"] == ["ann", "ben"]  # across the two processes
                while (await asyncio.wait_for(presence.get(), 5))["members"] != ["ann", "ben"]:
                    pass
                await ann.call("message", {"room": "general", "text": "across"}, timeout=5)
                message = await asyncio.wait_for(got.get(), 5)
                assert (message["nick"], message["text"]) == ("ann", "across")

        asyncio.run(chat())
        assert f"rooms and presence shared through Redis at redis://127.0.0.1:{redis_server}" in (
            log.read_text()
        )


# -- wsio run ---------------------------------------------------------------------------------


def test_run_serves_a_socketio_server_to_python_and_node(app_dir: Path) -> None:
    port = free_port()
    with serving(["run", "app:sio", "--port", str(port)], port, app_dir) as (proc, log):
        url = f"http://127.0.0.1:{port}"
        assert asyncio.run(sio_call(url, "echo", "a", {"n": 1})) == ("a", {"n": 1})
        assert asyncio.run(sio_call(url + "/admin", "echo", 2)) is None  # no handler there
        script = app_dir / "node_client.js"
        script.write_text(
            textwrap.dedent(
                """\
                const { io } = require("socket.io-client");
                const s = io(process.argv[2], { reconnection: false, timeout: 4000 });
                setTimeout(() => process.exit(1), 8000);
                s.on("connect_error", (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });
                s.on("connect", () => {
                  s.timeout(4000).emit("echo", "from node", [1, 2], (err, ...answer) => {
                    console.log(JSON.stringify({ err: err && err.message, answer }));
                    s.close();
                    process.exit(err ? 1 : 0);
                  });
                });
                """
            )
        )
        result = run_node(script, url)
        assert result.returncode == 0, result.stderr
        assert result.lines[0]["answer"] == ["from node", [1, 2]]
        text = log.read_text()
        assert f"wsio run: serving app:sio (Socket.IO server) on {url}/socket.io/" in text
        assert stop(proc) == 0


def test_run_serves_engineio_and_asgi_apps(app_dir: Path) -> None:
    port = free_port()
    with serving(["run", "app:eio", "--port", str(port)], port, app_dir):

        async def eio_echo() -> Any:
            client = wsio.engineio.Client(f"http://127.0.0.1:{port}", transports=["websocket"])
            got: asyncio.Queue[Any] = asyncio.Queue()
            client.on("message", got.put_nowait)
            await client.connect()
            await client.send("ping")
            try:
                return await asyncio.wait_for(got.get(), 5)
            finally:
                await client.close()

        assert asyncio.run(eio_echo()) == "ping"

    port = free_port()
    with serving(["run", "app:asgi", "--port", str(port)], port, app_dir) as (_, log):
        url = f"http://127.0.0.1:{port}"
        for transport in ("polling", "websocket"):
            answer = asyncio.run(sio_call(url, "echo", transport, transports=[transport]))
            assert answer == transport
        assert "(ASGI app, on uvicorn)" in log.read_text()

    port = free_port()
    with (
        serving(["run", "app:plain", "--port", str(port)], port, app_dir),
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response,
    ):
        assert response.read() == b"plain asgi"


def test_run_workers_share_the_port_and_rooms_through_redis(
    app_dir: Path, redis_server: int
) -> None:
    port = free_port()
    redis_url = f"redis://127.0.0.1:{redis_server}/0"
    args = ["run", "app:sio", "--port", str(port), "--workers", "2", "--redis", redis_url]
    with serving(args, port, app_dir) as (proc, log):
        url = f"http://127.0.0.1:{port}"
        wait_for_line(log, "wsio run: ready (worker pids ")

        async def scenario() -> tuple[set[int], list[Any]]:
            clients = []
            pids: dict[wsio.Client, int] = {}
            inboxes: dict[wsio.Client, asyncio.Queue[Any]] = {}
            try:
                # Connections are spread by the kernel: open some until both workers have one.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    client = wsio.Client(url, transports=["websocket"], reconnection=False)
                    inboxes[client] = asyncio.Queue()
                    client.on("shouted", lambda *a, q=inboxes[client]: q.put_nowait(a))
                    await client.connect()
                    clients.append(client)
                    pids[client] = await client.call("pid", timeout=5)
                    if len(set(pids.values())) == 2 and len(clients) >= 4:
                        break
                    await asyncio.sleep(0.05)
                await clients[0].call("shout", "hello all", timeout=5)  # from one worker
                got = [await asyncio.wait_for(inboxes[c].get(), 5) for c in clients]
                return set(pids.values()), got
            finally:
                for client in clients:
                    await client.disconnect()

        workers, got = asyncio.run(scenario())
        assert len(workers) == 2 and proc.pid not in workers
        sender = got[0][1]
        assert all(g == ("hello all", sender) for g in got)  # every worker's clients heard it

        async def polling() -> list[Any]:
            # Long-polling: the client's requests reach both workers through the
            # shared port and are served through the worker owning the session.
            client = wsio.Client(url, transports=["polling"], reconnection=False)
            await client.connect()
            try:
                return [await client.call("echo", i, timeout=5) for i in range(40)]
            finally:
                await client.disconnect()

        for _ in range(3):
            assert asyncio.run(polling()) == list(range(40))

        # A worker that dies is replaced; the master ends them all by PID on SIGTERM.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        wait_for_line(log, f"wsio run: worker {victim} exited with status -9; starting another")
        wait_for_line(log, "wsio run: ready (worker pids ", count=2)
        assert asyncio.run(sio_call(url, "echo", 1, transports=["websocket"])) == 1
        assert stop(proc) == 0
        for pid in workers - {victim}:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        text = log.read_text()
        assert (
            f"wsio run: serving app:sio (Socket.IO server, 2 workers) on {url}/socket.io/" in text
        )


def test_run_reload_restarts_after_an_edit(app_dir: Path) -> None:
    port = free_port()
    with serving(["run", "app:sio", "--port", str(port), "--reload"], port, app_dir) as (
        proc,
        log,
    ):
        url = f"http://127.0.0.1:{port}"
        assert asyncio.run(sio_call(url, "version")) == "v1"
        source = app_dir / "app.py"
        source.write_text(APP.replace('VERSION = "v1"', 'VERSION = "v2"'))
        later = time.time() + 2
        os.utime(source, (later, later))
        deadline = time.monotonic() + 15
        answer = None
        while answer != "v2":
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
            # The old worker may still accept a connection, then go away mid-call.
            with contextlib.suppress(wsio.ConnectionError, wsio.Disconnected, OSError):
                answer = asyncio.run(sio_call(url, "version"))
        assert "wsio run: app.py changed; restarting" in log.read_text()
        assert stop(proc) == 0


# -- wsio connect ---------------------------------------------------------------------------


def test_connect_prints_events_emits_calls_and_reconnects(app_dir: Path, interactive: Any) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(["run", "app:sio", "--port", str(port)], port, app_dir) as (proc, _):
        client = interactive(url, "--auth", '{"token": "t"}')
        # Polling first, then the upgrade: which of the two is current when the
        # connect line prints depends on timing (each is asserted exactly with
        # --transport in the next test).
        first = client.expect(r"^\* connected id=(\S+) transport=(polling|websocket)$").group(1)
        client.expect(r'^< welcome \[\{"token": "t"\}, "/"\]$')
        client.send('call echo "a" {"n": 1} [true, null]')
        client.expect(r'^> ack: \["a", \{"n": 1\}, \[true, null\]\]$')
        client.send("call version")
        client.expect(r'^> ack: \["v1"\]$')
        client.send('emit shout "hi there"')
        client.expect(r'^< shouted \["hi there", \d+\]$')
        client.send("help")
        client.expect(r"emit EVENT \[JSON \.\.\.\]")
        client.send("bogus")
        client.expect(r"^! unknown command 'bogus'; type help$")
        client.send("emit shout hello")
        client.expect(r'^! argument 1 is not JSON: hello \(strings need quotes: "hello"\)$')
        client.send("call")
        client.expect(r"^! usage: call EVENT \[JSON \.\.\.\]$")
        stop(proc)
        client.expect(r"^\* disconnected \(transport close\)$")
        client.expect(r"^\* reconnecting \(attempt 1\)$")
    with serving(["run", "app:sio", "--port", str(port)], port, app_dir):
        second = client.expect(r"^\* connected id=(\S+)", timeout=15).group(1)
        assert second != first
        client.send('call echo "back"')
        client.expect(r'^> ack: \["back"\]$')
        assert client.close_stdin() == 0  # Ctrl-D


def test_connect_namespace_transport_and_server_disconnect(app_dir: Path, interactive: Any) -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    with serving(["run", "app:sio", "--port", str(port)], port, app_dir):
        client = interactive(url, "--namespace", "/admin", "--transport", "websocket")
        client.expect(r"^\* connected id=\S+ transport=websocket$")
        client.expect(r'^< welcome \[null, "/admin"\]$')
        client.send("call echo 1")
        client.expect(r"^> ack: \[\]$")  # /admin has no echo handler: an empty ack
        client.send("quit")
        assert client.proc.wait(10) == 0

        client = interactive(f"http://127.0.0.1:{port}", "--transport", "polling")
        client.expect(r"^\* connected id=\S+ transport=polling$")
        client.send("emit kick")
        client.expect(r"^\* disconnected \(io server disconnect\)$")
        client.expect(r"^\* the server ended the connection; exiting$")
        assert client.proc.wait(10) == 0


def test_echo_and_plain_websocket_connect(tmp_path: Path, interactive: Any) -> None:
    port = free_port()
    with serving(["echo", "--port", str(port)], port, tmp_path) as (proc, log):
        client = interactive("--websocket", f"ws://127.0.0.1:{port}/")
        client.send("hello")
        client.expect(r"^< hello$")
        client.send("second line")
        client.expect(r"^< second line$")
        assert client.close_stdin() == 0
        assert f"wsio echo: WebSocket echo server on ws://127.0.0.1:{port}/" in log.read_text()
        assert stop(proc) == 0


def test_python_dash_m_and_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"wsio {wsio.__version__}"
    data = json.loads(
        subprocess.run(
            [sys.executable, "-c", "import json, wsio.cli; print(json.dumps(wsio.cli.__all__))"],
            capture_output=True,
            text=True,
            check=True,
            env=env(),
        ).stdout
    )
    assert "main" in data


async def test_set_adapter_replaces_every_namespace_adapter_before_clients() -> None:
    """What ``wsio run --redis`` does to an app built without an adapter."""
    made: list[str] = []

    class Recording(wsio.Adapter):
        def __init__(self, nsp: Any) -> None:
            super().__init__(nsp)
            made.append(nsp.name)

    sio = wsio.Server()
    sio.of("/admin")
    sio.set_adapter(Recording)
    assert sorted(made) == ["/", "/admin"]
    assert all(type(nsp.adapter) is Recording for nsp in sio.namespaces.values())
    sio.of("/later")  # namespaces made afterwards use it too
    assert made[-1] == "/later"
    server = await sio.start("127.0.0.1", 0)
    try:
        async with wsio.Client(f"http://127.0.0.1:{server.port}", reconnection=False):
            with pytest.raises(RuntimeError, match="without clients"):
                sio.set_adapter(wsio.Adapter)
    finally:
        await sio.shutdown()
