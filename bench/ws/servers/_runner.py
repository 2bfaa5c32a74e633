"""Run an echo server's coroutine on the event loop chosen by ``BENCH_LOOP``.

``BENCH_LOOP=uvloop`` (the default) or ``asyncio``; every Python server of the
benchmark goes through here, so they all run on the same kind of loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

MAX_SIZE = 64 * 1024 * 1024
"""Largest message every server accepts (the biggest benchmark message is 1 MiB)."""


def port_from_argv() -> int:
    """The listening port, the script's only argument."""
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} PORT")
    return int(sys.argv[1])


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run ``main()`` until SIGTERM/SIGINT, on the loop ``BENCH_LOOP`` names."""
    kind = os.environ.get("BENCH_LOOP", "uvloop")
    if kind == "uvloop":
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    elif kind == "asyncio":
        factory = None
    else:
        raise SystemExit(f"BENCH_LOOP must be uvloop or asyncio, not {kind!r}")

    async def until_signalled() -> None:
        import signal

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = asyncio.create_task(main())
        await stop.wait()
        server.cancel()
        try:
            await server
        except asyncio.CancelledError:
            pass

    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(until_signalled())
