"""The ``wsio`` command line (also ``python -m wsio``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

__all__ = ["main", "run_async", "serve_until_signal"]


def run_async(main: Coroutine[Any, Any, Any]) -> Any:
    """Run *main* on a new event loop: uvloop's when installed, asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _until_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    await stop.wait()


async def serve_until_signal(shutdown: Callable[[], Awaitable[Any]]) -> None:
    """Wait for SIGINT/SIGTERM, then await *shutdown*."""
    try:
        await _until_signal()
    finally:
        await shutdown()


# -- wsio echo -------------------------------------------------------------------


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
        print(
            f"wsio echo: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    print(
        f"wsio echo: WebSocket echo server on ws://{_hostport(args.host, server.port)}/", flush=True
    )
    try:
        await _until_signal()
    finally:
        await server.close()
    return 0


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- wsio connect --websocket --------------------------------------------------------


async def _connect_websocket(args: argparse.Namespace) -> int:
    from .websocket import ConnectionClosed, InvalidHandshake, InvalidURI, connect

    try:
        ws = await connect(args.url, compression=None if args.no_compression else "deflate")
    except InvalidURI as exc:
        print(f"wsio connect: {exc}", file=sys.stderr)
        return 2
    except (OSError, InvalidHandshake) as exc:
        print(f"wsio connect: cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 1
    print(f"connected to {args.url} (Ctrl-D to close)", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()

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

    task = loop.create_task(printer())
    try:
        while not task.done():
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            try:
                await ws.send(line.rstrip("\n"))
            except ConnectionClosed:
                break
    finally:
        await ws.close()
        await task
    return 0


# -- main ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsio", description="WebSocket and Socket.IO for asyncio."
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    echo = sub.add_parser(
        "echo",
        help="run a WebSocket echo server",
        description="A WebSocket echo server: text back as text, binary as binary.",
    )
    echo.add_argument("--host", default="127.0.0.1")
    echo.add_argument("--port", type=int, default=9001)
    echo.add_argument(
        "--max-size",
        type=int,
        default=2**20,
        help="largest message in bytes (0: no limit; default 1 MiB)",
    )
    echo.add_argument("--no-compression", action="store_true", help="refuse permessage-deflate")
    echo.set_defaults(func=_echo)

    conn = sub.add_parser(
        "connect", help="interactive client", description="An interactive client."
    )
    conn.add_argument("url")
    conn.add_argument(
        "--websocket", action="store_true", help="plain WebSocket client (ws:// or wss:// URL)"
    )
    conn.add_argument(
        "--no-compression", action="store_true", help="do not offer permessage-deflate"
    )
    conn.set_defaults(func=_connect)
    return parser


async def _connect(args: argparse.Namespace) -> int:
    if args.websocket:
        return await _connect_websocket(args)
    print(
        "wsio connect: the Socket.IO client mode is not available yet; use --websocket",
        file=sys.stderr,
    )
    return 2


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
        return int(run_async(args.func(args)) or 0)
    except KeyboardInterrupt:
        return 130
