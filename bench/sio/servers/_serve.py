"""What every Python benchmark server of bench/sio and bench/eio shares.

Command line: ``SCRIPT --port P [--sync] [--profile FILE]``. ``--sync`` makes the
wsio servers register plain functions as handlers instead of coroutines;
``--profile`` runs the server under cProfile and writes the stats to FILE when it
stops (SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import resource
from collections.abc import Awaitable, Callable

HOST = "127.0.0.1"


def raise_nofile() -> None:
    """Raise the soft open-file limit to the hard one (thousands of clients)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def arguments(description: str) -> argparse.Namespace:
    """Parse the common command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sync", action="store_true", help="plain functions as handlers")
    parser.add_argument("--profile", metavar="FILE", help="write cProfile stats here on exit")
    return parser.parse_args()


def serve_wsio(
    start: Callable[[], Awaitable[object]],
    shutdown: Callable[[], Awaitable[None]],
    name: str,
    profile: str | None,
) -> None:
    """Run a wsio server on uvloop until SIGTERM, profiled when ``profile`` is set."""
    from wsio.cli import run_async, serve_until_signal

    async def main() -> None:
        await start()
        print(f"{name} ready on {asyncio.get_running_loop().__class__.__module__}", flush=True)
        await serve_until_signal(shutdown)

    raise_nofile()
    if profile is None:
        run_async(main())
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run_async(main())
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


def serve_asgi(app: object, port: int) -> None:
    """Run an ASGI app under uvicorn with uvloop and httptools, quietly, until SIGTERM.

    WebSocket compression and uvicorn's own WebSocket pings are off: the
    Engine.IO heartbeat is the only keepalive, as on the other servers.
    """
    import uvicorn

    raise_nofile()
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws_per_message_deflate=False,
        ws_ping_interval=None,
        ws_ping_timeout=None,
    )
