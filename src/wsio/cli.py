"""The ``wsio`` command line (also ``python -m wsio``).

* ``wsio demo``: the demo chat app on the built-in server.
* ``wsio run module:attr``: serve your own ``wsio.Server``, Engine.IO server
  or ASGI app; ``--workers N`` processes sharing the port, ``--reload``.
* ``wsio connect URL``: an interactive Socket.IO client (``--websocket``: a
  plain WebSocket client).
* ``wsio echo``: a WebSocket echo server.

``wsio COMMAND --help`` describes each one.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import importlib
import inspect
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["CLIError", "load_app", "main", "run_async", "serve_until_signal"]

LOG_LEVELS = ["debug", "info", "warning", "error"]


class CLIError(Exception):
    """A failure the command reports in one line (no traceback) before exiting with *status*."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def run_async(main: Coroutine[Any, Any, Any]) -> Any:
    """Run *main* on a new event loop: uvloop's when installed, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _until_signal(parent: int | None = None) -> None:
    """Wait for SIGINT or SIGTERM (or, given *parent*, for that parent process to go away)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    if parent is None:
        await stop.wait()
        return
    while not stop.is_set() and os.getppid() == parent:
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


async def serve_until_signal(shutdown: Callable[[], Awaitable[Any]]) -> None:
    """Wait for SIGINT/SIGTERM, then await *shutdown*."""
    try:
        await _until_signal()
    finally:
        await shutdown()


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _url(host: str, port: int, path: str = "/") -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
    return f"http://{_hostport(shown, port)}{path}"


def _listen_error(command: str, host: str, port: int, exc: OSError) -> CLIError:
    where = _hostport(host, port)
    if exc.errno == errno.EADDRINUSE:
        return CLIError(
            f"wsio {command}: cannot listen on {where}: the port is already in use "
            "(another server runs there?); choose another one with --port"
        )
    if exc.errno == errno.EACCES:
        return CLIError(
            f"wsio {command}: cannot listen on {where}: permission denied "
            "(ports below 1024 need privileges); choose another one with --port"
        )
    return CLIError(f"wsio {command}: cannot listen on {where}: {exc.strerror or exc}")


def _redis_adapter(command: str, url: str) -> Any:
    """The Redis adapter factory for *url*, or a :class:`CLIError` that says what is missing."""
    try:
        from .adapters import RedisAdapter

        return RedisAdapter(url)
    except ImportError as exc:
        raise CLIError(f"wsio {command}: --redis needs an optional dependency: {exc}") from None
    except ValueError as exc:
        raise CLIError(f"wsio {command}: bad --redis URL {url!r}: {exc}", 2) from None


# -- wsio echo ------------------------------------------------------------------------


async def _echo(args: argparse.Namespace) -> int:
    from .websocket import ConnectionClosed, WebSocket, serve

    async def echo(ws: WebSocket) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass

    max_size = args.max_size if args.max_size > 0 else None
    try:
        server = await serve(
            echo,
            args.host,
            args.port,
            max_size=max_size,
            compression=None if args.no_compression else "deflate",
        )
    except OSError as exc:
        raise _listen_error("echo", args.host, args.port, exc) from None
    print(
        f"wsio echo: WebSocket echo server on ws://{_hostport(args.host, server.port)}/", flush=True
    )
    try:
        await _until_signal()
    finally:
        await server.close()
    return 0


# -- wsio demo ------------------------------------------------------------------------


async def _demo(args: argparse.Namespace) -> int:
    from .demo import CLIENT_HINT, ChatApp

    if args.client_dist is not None and not os.path.isdir(args.client_dist):
        raise CLIError(f"wsio demo: --client-dist {args.client_dist!r} is not a directory", 2)
    adapter = _redis_adapter("demo", args.redis) if args.redis else None
    app = ChatApp(adapter=adapter, client_dist=args.client_dist)
    sio = app.sio
    dist = sio._client_dist_dir()
    if dist is None or not os.path.isfile(os.path.join(dist, "socket.io.js")):
        where = f" ({dist} has no socket.io.js)" if dist is not None else ""
        raise CLIError(f"wsio demo: the browser client is missing{where}.\n{CLIENT_HINT}")
    try:
        http = await sio.start(args.host, args.port, static_files=app.static_files)
    except OSError as exc:
        await sio.shutdown()
        raise _listen_error("demo", args.host, args.port, exc) from None
    print(f"wsio demo: chat on {_url(args.host, http.port)} (Ctrl-C to stop)", flush=True)
    if adapter is not None:
        print(
            f"wsio demo: rooms and presence shared through Redis at {adapter.safe_url}; "
            "each process keeps its own message history",
            flush=True,
        )
    await serve_until_signal(sio.shutdown)
    return 0


# -- wsio run -------------------------------------------------------------------------


def load_app(spec: str) -> Any:
    """Import ``module:attribute`` (dotted names allowed on both sides) from the current directory.

    Raises:
        CLIError: the spec is malformed, the module cannot be imported or has
            no such attribute.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CLIError(
            f"wsio run: APP must look like module:attribute (for example app:sio), not {spec!r}", 2
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise CLIError(
                f"wsio run: cannot import {module_name!r}: no such module "
                f"(looked in {cwd} and on the Python path)"
            ) from None
        traceback.print_exc()
        raise CLIError(f"wsio run: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        traceback.print_exc()
        raise CLIError(
            f"wsio run: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CLIError(f"wsio run: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _classify(spec: str, app: Any) -> tuple[str, Any]:
    """``(kind, socket.io server or None)``; kind is ``socketio``, ``engineio`` or ``asgi``."""
    from .engineio import Server as EngineServer
    from .socketio import Server as SocketServer

    if isinstance(app, SocketServer):
        return "socketio", app
    if isinstance(app, EngineServer):
        return "engineio", getattr(app, "sio", None)
    if inspect.isclass(app):
        raise CLIError(f"wsio run: {spec} is a class; point at an instance (or an ASGI app)", 2)
    if callable(app):
        server = getattr(app, "server", None)  # sio.asgi_app() keeps its Engine.IO server
        return "asgi", getattr(server, "sio", None)
    raise CLIError(
        f"wsio run: {spec} is a {type(app).__name__}, not a wsio.Server, a "
        "wsio.engineio.Server or an ASGI application",
        2,
    )


def _in_memory(sio: Any) -> bool:
    from .socketio import Adapter

    return type(sio.namespaces["/"].adapter) is Adapter


WORKERS_NEED_REDIS = (
    "each worker is a separate process: without the Redis adapter a room or a "
    "broadcast only reaches the clients of one worker, and a long-polling client's "
    "requests (spread over the workers by the shared port) cannot reach the worker "
    "that holds its session"
)


def _check_app(args: argparse.Namespace, app: Any) -> tuple[str, Any]:
    kind, sio = _classify(args.app, app)
    if args.redis and sio is None:
        raise CLIError(
            f"wsio run: --redis applies to a Socket.IO server (wsio.Server); {args.app} is "
            f"{'an Engine.IO server' if kind == 'engineio' else 'an ASGI app without one'}",
            2,
        )
    if args.workers > 1 and sio is not None and not args.redis and _in_memory(sio):
        raise CLIError(
            f"wsio run: --workers {args.workers} needs --redis URL: {WORKERS_NEED_REDIS}", 2
        )
    return kind, sio


def _describe(kind: str, app: Any) -> tuple[str, str]:
    if kind == "socketio":
        return "Socket.IO server", app.eio.path
    if kind == "engineio":
        return "Engine.IO server", app.path
    return "ASGI app, on uvicorn", "/"


def _bind(host: str, port: int, *, reuse_port: bool = False, hold: bool = False) -> socket.socket:
    """A TCP socket bound to *host*:*port* (not listening yet).

    ``reuse_port``: share the port with other SO_REUSEPORT sockets. ``hold``:
    bind exclusively, then allow SO_REUSEPORT sockets in: the port is taken
    for everyone but the workers that will share it.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if hold:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except BaseException:
        sock.close()
        raise
    return sock


async def _serve_app(args: argparse.Namespace) -> int:
    """Serve the app in this process (a single process, or one worker of several)."""
    app = load_app(args.app)
    kind, sio = _check_app(args, app)
    adapter = None
    if args.redis:
        adapter = _redis_adapter("run", args.redis)
        # Several workers share the port per TCP connection: a long-polling
        # session is then served through the worker that owns it (over Redis).
        sio.set_adapter(adapter, sticky_sessions=False if args.workers > 1 else None)
    elif args.workers > 1 and sio is not None and hasattr(sio._adapter_factory, "bus"):
        sio.sticky_sessions = False
        sio._route_sessions()
    parent = os.getppid() if args.worker else None
    label, path = _describe(kind, app)
    if kind == "asgi":
        return await _serve_asgi(args, app, parent, label)
    try:
        http = await app.start(args.host, args.port, reuse_port=args.worker)
    except OSError as exc:
        await app.shutdown()
        raise _listen_error("run", args.host, args.port, exc) from None
    _signal_ready(args)
    if not args.worker:
        via = f", Redis adapter at {adapter.safe_url}" if adapter is not None else ""
        print(
            f"wsio run: serving {args.app} ({label}{via}) on {_url(args.host, http.port, path)} "
            "(Ctrl-C to stop)",
            flush=True,
        )
    try:
        await _until_signal(parent)
    finally:
        await app.shutdown()
    return 0


def _signal_ready(args: argparse.Namespace) -> None:
    """Tell the master (``--ready-fd``) that this worker listens."""
    if args.ready_fd is not None:
        try:
            os.write(args.ready_fd, b"1")
            os.close(args.ready_fd)
        except OSError:
            pass
        args.ready_fd = None


async def _serve_asgi(args: argparse.Namespace, app: Any, parent: int | None, label: str) -> int:
    try:
        import uvicorn
    except ImportError:
        raise CLIError(
            f"wsio run: {args.app} is an ASGI application; serving it needs uvicorn: "
            "pip install uvicorn"
        ) from None
    try:
        sock = _bind(args.host, args.port, reuse_port=args.worker)
    except OSError as exc:
        raise _listen_error("run", args.host, args.port, exc) from None
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level=args.log_level, lifespan="auto")
    server = uvicorn.Server(config)
    if not args.worker:
        print(
            f"wsio run: serving {args.app} ({label}) on {_url(args.host, port)} (Ctrl-C to stop)",
            flush=True,
        )

    async def watch() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        _signal_ready(args)
        while parent is None or os.getppid() == parent:
            await asyncio.sleep(1.0)
        server.should_exit = True

    watcher = asyncio.ensure_future(watch())
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()
        sock.close()
    return 0


def _python_files(root: str) -> Iterator[str]:
    skip = {"__pycache__", "node_modules", "site-packages"}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in skip]
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def _snapshot(root: str) -> dict[str, float]:
    mtimes = {}
    for path in _python_files(root):
        try:
            mtimes[path] = os.stat(path).st_mtime
        except OSError:
            pass
    return mtimes


def _changed(before: dict[str, float], after: dict[str, float]) -> str | None:
    for path, mtime in after.items():
        if before.get(path) != mtime:
            return path
    for path in before:
        if path not in after:
            return path
    return None


class _Worker:
    """A worker process, and the pipe on which it says it is listening."""

    __slots__ = ("proc", "ready", "ready_fd")

    def __init__(self, command: list[str]) -> None:
        read_fd, write_fd = os.pipe()
        try:
            # Same process group as the master: a terminal's Ctrl-C reaches every worker.
            self.proc = subprocess.Popen(
                [*command, "--ready-fd", str(write_fd)], pass_fds=(write_fd,)
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self.ready_fd: int | None = read_fd
        self.ready = False

    def check_ready(self) -> None:
        """Read the worker's readiness byte (call when ``ready_fd`` is readable)."""
        if self.ready_fd is None:
            return
        if os.read(self.ready_fd, 1):
            self.ready = True
        self.close_pipe()

    def close_pipe(self) -> None:
        if self.ready_fd is not None:
            os.close(self.ready_fd)
            self.ready_fd = None


class _Supervisor:
    """The master of ``wsio run --workers N`` / ``--reload``: starts, watches and stops workers.

    A worker that exits before it listens failed to start: the master stops
    (or, with ``--reload``, waits for the next change). One that exits later
    is replaced.
    """

    def __init__(self, args: argparse.Namespace, port: int) -> None:
        self.args = args
        self.port = port
        self.workers: list[_Worker] = []
        self.stopping = False
        self.announced = False

    def command(self) -> list[str]:
        args = self.args
        cmd = [sys.executable, "-m", "wsio", "--log-level", args.log_level, "run", args.app]
        cmd += ["--host", args.host, "--port", str(self.port), "--worker"]
        cmd += ["--workers", str(args.workers)]  # a worker knows it has siblings
        if args.redis:
            cmd += ["--redis", args.redis]
        return cmd

    def spawn(self) -> None:
        self.workers.append(_Worker(self.command()))

    def stop_all(self) -> None:
        """End every worker by its PID: SIGTERM, then SIGKILL after 10 s."""
        workers, self.workers = self.workers, []
        for worker in workers:
            worker.close_pipe()
            if worker.proc.poll() is None:
                try:
                    os.kill(worker.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for worker in workers:
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(worker.proc.pid, signal.SIGKILL)
                worker.proc.wait()

    def wait(self, seconds: float) -> None:
        """Sleep up to *seconds*, noting the workers that become ready meanwhile."""
        pipes = {w.ready_fd: w for w in self.workers if w.ready_fd is not None}
        if not pipes:
            time.sleep(seconds)
            return
        try:
            readable, _, _ = select.select(list(pipes), [], [], seconds)
        except InterruptedError:  # a signal
            return
        for fd in readable:
            pipes[fd].check_ready()
        if not self.announced and self.workers and all(w.ready for w in self.workers):
            self.announced = True
            pids = ", ".join(str(w.proc.pid) for w in self.workers)
            print(f"wsio run: ready (worker pids {pids})", flush=True)

    def run(self) -> int:
        args = self.args
        reload = args.reload
        root = os.getcwd()

        def on_signal(signum: int, frame: Any) -> None:
            self.stopping = True

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        mtimes = _snapshot(root) if reload else {}
        waiting_for_change = False
        try:
            for _ in range(args.workers):
                self.spawn()
            while not self.stopping:
                self.wait(0.25)
                if self.stopping:
                    break
                if reload:
                    now = _snapshot(root)
                    changed = _changed(mtimes, now)
                    mtimes = now
                    if changed is not None:
                        _say(f"wsio run: {os.path.relpath(changed, root)} changed; restarting")
                        self.stop_all()
                        self.announced = waiting_for_change = False
                        for _ in range(args.workers):
                            self.spawn()
                        continue
                if waiting_for_change:
                    continue
                for worker in list(self.workers):
                    status = worker.proc.poll()
                    if status is None:
                        continue
                    if worker.ready_fd is not None:
                        worker.check_ready()  # it may have become ready just before dying
                    if not worker.ready:
                        self.stop_all()
                        if reload:
                            _say(
                                f"wsio run: the app failed to start (status {status}); "
                                "waiting for a file change"
                            )
                            waiting_for_change = True
                            break
                        _say(f"wsio run: a worker failed to start (status {status}); stopping")
                        return status if status and status > 0 else 1
                    _say(
                        f"wsio run: worker {worker.proc.pid} exited with status {status}; "
                        "starting another"
                    )
                    self.workers.remove(worker)
                    self.spawn()
                    self.announced = False
            return 0
        finally:
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _supervise(args: argparse.Namespace) -> int:
    if args.workers > 1:
        # Validate here once, rather than have every worker print the same error.
        app = load_app(args.app)
        kind, _ = _check_app(args, app)
        label, path = _describe(kind, app)
    else:
        kind, label, path = "", "", "/"
    # Hold the port (bound, not listening, SO_REUSEPORT set after an exclusive bind):
    # "in use" is reported once, port 0 resolves to one port for every worker, and
    # nobody else takes the port while workers restart.
    try:
        holder = _bind(args.host, args.port, hold=True)
    except OSError as exc:
        raise _listen_error("run", args.host, args.port, exc) from None
    port = holder.getsockname()[1]
    try:
        what = f"{args.workers} workers" if args.workers > 1 else "1 worker"
        if label:
            what = f"{label}, {what}"
        print(
            f"wsio run: serving {args.app} ({what}) on {_url(args.host, port, path)} "
            "(Ctrl-C to stop)",
            flush=True,
        )
        if args.reload:
            print(
                f"wsio run: restarting when a .py file under {os.getcwd()} changes",
                flush=True,
            )
        return _Supervisor(args, port).run()
    finally:
        holder.close()


def _run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise CLIError("wsio run: --workers must be at least 1", 2)
    if args.worker or (args.workers == 1 and not args.reload):
        return int(run_async(_serve_app(args)) or 0)
    return _supervise(args)


# -- wsio connect -----------------------------------------------------------------------

CONNECT_HELP = """\
commands (one per line):
  emit EVENT [JSON ...]   send an event with JSON arguments, e.g. emit chat "hi" {"n": 1}
  call EVENT [JSON ...]   the same, and wait for the acknowledgement
  help                    this text
  quit                    disconnect and exit (Ctrl-D does too)"""


def _shown(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        hexed = data[:32].hex() + ("..." if len(data) > 32 else "")
        return f"<binary {len(data)} bytes: {hexed}>"
    if isinstance(value, list | tuple):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _shown(v) for k, v in value.items()}
    return value


def _dumps(value: Any) -> str:
    return json.dumps(_shown(value), ensure_ascii=False, default=repr)


def _parse_command(line: str) -> tuple[str, str | None, list[Any]]:
    """Split ``emit EVENT JSON...`` into (command, event, arguments).

    The event is a bare word or a JSON string; every argument is a JSON value.

    Raises:
        ValueError: with a message for the user.
    """
    line = line.strip()
    command, _, rest = line.partition(" ")
    command = command.lower()
    if command in ("help", "?", "quit", "exit", ""):
        return command, None, []
    if command not in ("emit", "call"):
        raise ValueError(f"unknown command {command!r}; type help")
    rest = rest.strip()
    if not rest:
        raise ValueError(f"usage: {command} EVENT [JSON ...]")
    decoder = json.JSONDecoder()
    if rest.startswith('"'):
        event, end = decoder.raw_decode(rest)
        rest = rest[end:]
    else:
        event, _, rest = rest.partition(" ")
    args: list[Any] = []
    rest = rest.strip()
    while rest:
        try:
            value, end = decoder.raw_decode(rest)
        except json.JSONDecodeError:
            word = rest.split(None, 1)[0]
            raise ValueError(
                f'argument {len(args) + 1} is not JSON: {word} (strings need quotes: "{word}")'
            ) from None
        args.append(value)
        rest = rest[end:].lstrip()
    return command, str(event), args


def _stdin_lines(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    """Read stdin in a daemon thread (it must not keep the process alive) into *queue*."""

    def read() -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except (OSError, ValueError):
            pass
        try:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:  # the loop is closed
            pass

    threading.Thread(target=read, name="wsio-stdin", daemon=True).start()


def _out(line: str) -> None:
    print(line, flush=True)


async def _connect_socketio(args: argparse.Namespace) -> int:
    import wsio

    url = args.url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise CLIError(
            f"wsio connect: {url!r} is not an http(s):// or ws(s):// URL "
            "(for example http://127.0.0.1:8000)",
            2,
        )
    if args.namespace is not None:
        namespace = "/" + args.namespace.strip("/")
        url = urlunsplit((parts.scheme, parts.netloc, namespace, parts.query, ""))
    auth = None
    if args.auth is not None:
        try:
            auth = json.loads(args.auth)
        except json.JSONDecodeError as exc:
            raise CLIError(f"wsio connect: --auth is not valid JSON: {exc}", 2) from None
        if not isinstance(auth, dict):
            raise CLIError('wsio connect: --auth must be a JSON object, e.g. {"token": "x"}', 2)
    transports = [args.transport] if args.transport else ["polling", "websocket"]
    try:
        client = wsio.Client(url, auth=auth, transports=transports)
    except ValueError as exc:
        raise CLIError(f"wsio connect: {exc}", 2) from None

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    done: list[int] = []

    def finish(status: int) -> None:
        if not done:
            done.append(status)
            queue.put_nowait(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, finish, 0)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass

    started = False

    @client.on("connect")
    def on_connect() -> None:
        recovered = " (recovered)" if client.recovered else ""
        _out(f"* connected id={client.id} transport={client.transport}{recovered}")

    @client.on("disconnect")
    def on_disconnect(reason: str) -> None:
        _out(f"* disconnected ({reason})")
        if reason in ("io server disconnect",):
            _out("* the server ended the connection; exiting")
            finish(0)

    @client.on("connect_error")
    def on_connect_error(error: Exception) -> None:
        if started and not client.manager.reconnecting:  # those show as reconnect errors
            _out(f"* connect error: {error}")
        if started and not client.active:
            finish(1)

    @client.on("*")
    def on_event(event: Any, *event_args: Any) -> None:
        _out(f"< {event} {_dumps(list(event_args))}")

    manager = client.manager
    manager.on("reconnect_attempt", lambda attempt: _out(f"* reconnecting (attempt {attempt})"))
    manager.on("reconnect_error", lambda error: _out(f"* reconnect error: {error}"))

    def gave_up() -> None:
        _out("* gave up reconnecting")
        finish(1)

    manager.on("reconnect_failed", gave_up)

    try:
        await client.connect()
    except wsio.ConnectionError as exc:
        await manager.close()
        raise CLIError(f"wsio connect: cannot connect to {url}: {exc}") from None
    started = True
    print(
        f"connected to {url}; type help for the commands, Ctrl-D to quit",
        file=sys.stderr,
        flush=True,
    )
    _stdin_lines(loop, queue)
    calls: set[asyncio.Task[None]] = set()

    async def call(event: str, call_args: list[Any]) -> None:
        try:
            answer = await client.call(event, *call_args, timeout=args.ack_timeout)
        except wsio.AckTimeout:
            _out(f"! no acknowledgement for {event} within {args.ack_timeout} s")
        except wsio.Disconnected:
            _out(f"! disconnected before the acknowledgement for {event}")
        else:
            shown = (
                list(answer) if isinstance(answer, tuple) else [] if answer is None else [answer]
            )
            _out(f"> ack: {_dumps(shown)}")

    try:
        while not done:
            line = await queue.get()
            if line is None:
                break
            try:
                command, event, cmd_args = _parse_command(line)
            except ValueError as exc:
                _out(f"! {exc}")
                continue
            if command == "":
                continue
            if command in ("help", "?"):
                _out(CONNECT_HELP)
            elif command in ("quit", "exit"):
                break
            elif command == "emit":
                try:
                    client.emit(str(event), *cmd_args)
                except (TypeError, ValueError) as exc:
                    _out(f"! {exc}")
            else:
                task = asyncio.ensure_future(call(str(event), cmd_args))
                calls.add(task)
                task.add_done_callback(calls.discard)
    finally:
        for task in list(calls):
            task.cancel()
        await manager.close()
    return done[0] if done else 0


async def _connect_websocket(args: argparse.Namespace) -> int:
    from .websocket import ConnectionClosed, InvalidHandshake, InvalidURI, connect

    try:
        ws = await connect(args.url, compression=None if args.no_compression else "deflate")
    except InvalidURI as exc:
        raise CLIError(f"wsio connect: {exc}", 2) from None
    except (OSError, InvalidHandshake) as exc:
        raise CLIError(f"wsio connect: cannot connect to {args.url}: {exc}") from None
    print(f"connected to {args.url} (Ctrl-D to close)", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    async def printer() -> None:
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    print(f"< (binary, {len(message)} bytes) {message.hex()}", flush=True)
                else:
                    print(f"< {message}", flush=True)
        except ConnectionClosed:
            pass
        print(
            f"connection closed: {ws.close_code} {ws.close_reason or ''}".rstrip(), file=sys.stderr
        )
        queue.put_nowait(None)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, queue.put_nowait, None)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    task = loop.create_task(printer())
    _stdin_lines(loop, queue)
    try:
        while not task.done():
            line = await queue.get()
            if line is None:
                break
            try:
                await ws.send(line.rstrip("\n"))
            except ConnectionClosed:
                break
    finally:
        await ws.close()
        await task
    return 0


async def _connect(args: argparse.Namespace) -> int:
    if args.websocket:
        used = [
            flag
            for flag, value in (
                ("--namespace", args.namespace),
                ("--auth", args.auth),
                ("--transport", args.transport),
            )
            if value is not None
        ]
        if used:
            raise CLIError(
                f"wsio connect: {', '.join(used)} only apply to Socket.IO; drop --websocket", 2
            )
        return await _connect_websocket(args)
    return await _connect_socketio(args)


# -- main ----------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 65535")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsio",
        description="WebSocket and Socket.IO for asyncio: servers, clients and a demo.",
        epilog="Run `wsio COMMAND --help` for the options of a command.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"wsio {__version__}")
    parser.add_argument(
        "--log-level", default="warning", choices=LOG_LEVELS, help="logging level (warning)"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", default=argparse.SUPPRESS, choices=LOG_LEVELS, help="logging level (warning)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="run the demo chat app",
        description=(
            "Serve the demo chat (nicknames, rooms, presence, typing, images, history, "
            "reconnection) on the built-in server, and print its URL. The page uses the "
            "official socket.io-client browser bundle, served at /socket.io/socket.io.js."
        ),
        epilog=(
            "The bundle is looked up with --client-dist, then $WSIO_CLIENT_DIST, then "
            "./node_modules/socket.io-client/dist. With --redis, several `wsio demo` "
            "processes (on different ports, behind a sticky load balancer) share rooms "
            "and presence; each keeps its own history."
        ),
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    demo.add_argument("--port", type=_port, default=8000, help="port (8000; 0 picks a free one)")
    demo.add_argument("--redis", metavar="URL", help="share rooms through Redis (redis://...)")
    demo.add_argument(
        "--client-dist", metavar="DIR", help="directory of the socket.io-client browser bundle"
    )
    demo.set_defaults(func=lambda args: run_async(_demo(args)))

    run = sub.add_parser(
        "run",
        parents=[common],
        help="serve your app (a wsio.Server, an Engine.IO server or an ASGI app)",
        description=(
            "Import APP (module:attribute, relative to the current directory, as uvicorn "
            "does) and serve it: a wsio.Server or wsio.engineio.Server on the built-in "
            "server, any other ASGI application on uvicorn."
        ),
        epilog=(
            "--workers N starts N processes that share the port (SO_REUSEPORT); for a "
            "wsio.Server they need --redis URL (or an app built with the Redis "
            "adapter) so that rooms and broadcasts reach every worker. The port is "
            "shared per TCP connection, so the requests of one long-polling client "
            "reach different workers: each is served through the worker that owns the "
            "session, over Redis (no sticky sessions needed; see docs/deployment.md)."
        ),
    )
    run.add_argument("app", metavar="APP", help="module:attribute, e.g. app:sio")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    run.add_argument("--port", type=_port, default=8000, help="port (8000; 0 picks a free one)")
    run.add_argument(
        "--workers", type=int, default=1, metavar="N", help="processes sharing the port (1)"
    )
    run.add_argument(
        "--redis", metavar="URL", help="use the Redis adapter (needed with --workers above 1)"
    )
    run.add_argument(
        "--reload", action="store_true", help="restart when a .py file under this directory changes"
    )
    run.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    run.set_defaults(func=_run)

    conn = sub.add_parser(
        "connect",
        parents=[common],
        help="interactive Socket.IO (or WebSocket) client",
        description=(
            "Connect to a Socket.IO server and print every event received, connects, "
            "disconnects and reconnections. Type `emit EVENT JSON...` or `call EVENT "
            "JSON...` (which shows the acknowledgement); Ctrl-D quits. With --websocket, "
            "a plain WebSocket client: each line is sent as a text message."
        ),
        epilog=CONNECT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    conn.add_argument("url", metavar="URL", help="http(s):// or ws(s):// URL of the server")
    conn.add_argument("--namespace", metavar="NSP", help="namespace to join (/ by default)")
    conn.add_argument("--auth", metavar="JSON", help='CONNECT payload, e.g. \'{"token": "x"}\'')
    conn.add_argument(
        "--transport",
        choices=["websocket", "polling"],
        help="use only this transport (default: polling, then upgrade to websocket)",
    )
    conn.add_argument(
        "--ack-timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="how long `call` waits (10)",
    )
    conn.add_argument(
        "--websocket", action="store_true", help="plain WebSocket client (ws:// or wss:// URL)"
    )
    conn.add_argument(
        "--no-compression",
        action="store_true",
        help="(--websocket) do not offer permessage-deflate",
    )
    conn.set_defaults(func=lambda args: run_async(_connect(args)))

    echo = sub.add_parser(
        "echo",
        parents=[common],
        help="run a WebSocket echo server",
        description="A WebSocket echo server: text back as text, binary as binary.",
    )
    echo.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    echo.add_argument("--port", type=_port, default=9001, help="port (9001)")
    echo.add_argument(
        "--max-size",
        type=int,
        default=2**20,
        help="largest message in bytes (0: no limit; default 1 MiB)",
    )
    echo.add_argument("--no-compression", action="store_true", help="refuse permessage-deflate")
    echo.set_defaults(func=lambda args: run_async(_echo(args)))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wsio`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(exc, file=sys.stderr, flush=True)
        return exc.status
    except KeyboardInterrupt:
        return 130
