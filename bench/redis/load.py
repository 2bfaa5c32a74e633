"""Load generator of the cluster benchmark: room members spread over several nodes.

    python load.py --ports P0,P1 --members M --burst K --size B --warmup W --duration D
                   [--idle-ports P1 --idle N]

Speaks Engine.IO v4 / Socket.IO v5 over raw WebSocket (uvloop when installed):
upgrade on ``/socket.io/?EIO=4&transport=websocket``, the open packet, ``40``,
the ``40{...}`` reply, pings answered. M members connect round-robin over the
ports and join the room ``bench`` (``421["join","bench"]``, answer ``431[]``);
N idle clients connect to the idle ports and join nothing. A controller on the
first port then runs rounds: it emits K ``42["blast","<round>:<i>:<pad>"]``
events at once, and the round ends when every member has received the K
``42["msg","<round>:..."]`` broadcasts of that round; the next one starts at
once. A delivery of another round, or any unexpected frame, counts as an error.

stdout, one JSON object per line: ``{"phase":"measure"}`` when the measured
window opens (after the warm-up), then ``{"count", "seconds", "rounds",
"errors", "error"}`` at its end, ``count`` being the deliveries in the window.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time

KEY = base64.b64encode(b"wsio-bench-key!!").decode()


def frame(text: str) -> bytes:
    """A masked client text frame with an all-zero mask (the payload is sent as is)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 65536:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\x00\x00\x00\x00" + payload


PONG = frame("3")


class Client(asyncio.Protocol):
    """One Socket.IO client over a raw WebSocket."""

    def __init__(self, bench: Bench, kind: str, host: str, port: int) -> None:
        self.bench = bench
        self.kind = kind  # "member", "idle" or "controller"
        self.host = host
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.got = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(  # type: ignore[attr-defined]
            (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {self.host}:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.bench.stopping:
            self.bench.fail(f"{self.kind} connection closed by the server ({exc})")
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed"))

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.bench.fail(f"upgrade refused: {bytes(buf[:40])!r}")
                return
            del buf[: end + 4]
            self.upgraded = True
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if size - pos < head + n:
                break
            start = pos + head
            pos = start + n
            if b0 != 0x81:
                if b0 & 0x0F == 0x8:
                    self.bench.fail("close frame from the server")
                    return
                if b0 & 0x0F in (0x9, 0xA):
                    continue
                self.bench.fail(f"unexpected frame type 0x{b0:02x}")
                return
            self.on_text(buf, start, pos)
        if pos:
            del buf[:pos]

    def on_text(self, buf: bytearray, start: int, stop: int) -> None:
        bench = self.bench
        if buf.startswith(b'42["msg","', start):
            if self.kind != "member":
                bench.fail(f"a {self.kind} client received a broadcast")
                return
            if not buf.startswith(bench.round_prefix, start):
                bench.fail(f"delivery of another round: {bytes(buf[start:stop][:40])!r}")
                return
            self.got += 1
            bench.delivered()
            return
        if stop - start == 1 and buf[start] == 0x32:  # "2": ping
            assert self.transport is not None
            self.transport.write(PONG)
            return
        if buf.startswith(b"0{", start):
            assert self.transport is not None
            self.transport.write(frame("40"))
            return
        if buf.startswith(b"40{", start):
            if self.kind == "member":
                assert self.transport is not None
                self.transport.write(frame('421["join","bench"]'))
            elif not self.ready.done():
                self.ready.set_result(None)
            return
        if buf.startswith(b"431[]", start) and self.kind == "member":
            if not self.ready.done():
                self.ready.set_result(None)
            return
        bench.fail(f"unexpected packet {bytes(buf[start:stop][:40])!r}")

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


class Bench:
    """The rounds, the counting and the measured window."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.round = 0
        self.round_prefix = b""
        self.pending = 0
        self.count = 0
        self.counting = False
        self.errors = 0
        self.error = ""
        self.rounds_done = 0
        self.stopping = False
        self.controller: Client | None = None
        self.last_progress = time.monotonic()
        self.pad = "x" * max(0, args.size - 16)

    def fail(self, message: str) -> None:
        self.errors += 1
        if not self.error:
            self.error = message

    def start_round(self) -> None:
        self.round += 1
        self.round_prefix = f'42["msg","{self.round}:'.encode()
        self.pending = self.args.members * self.args.burst
        burst = b"".join(
            frame(f'42["blast","{self.round}:{i}:{self.pad}"]') for i in range(self.args.burst)
        )
        assert self.controller is not None
        self.controller.send(burst)

    def delivered(self) -> None:
        if self.counting:
            self.count += 1
        self.pending -= 1
        if self.pending == 0:
            self.last_progress = time.monotonic()
            if self.counting:
                self.rounds_done += 1
            if not self.stopping:
                self.start_round()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ports", required=True, help="comma list: the members' nodes")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--idle-ports", default="")
    parser.add_argument("--idle", type=int, default=0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    idle_ports = [int(p) for p in args.idle_ports.split(",") if p]
    bench = Bench(args)
    loop = asyncio.get_running_loop()

    async def open_client(kind: str, port: int) -> Client:
        _, client = await loop.create_connection(
            lambda: Client(bench, kind, args.host, port), args.host, port
        )
        return client

    clients: list[Client] = []
    for i in range(args.members):
        clients.append(await open_client("member", ports[i % len(ports)]))
    for i in range(args.idle):
        clients.append(await open_client("idle", idle_ports[i % len(idle_ports)]))
    bench.controller = await open_client("controller", ports[0])
    clients.append(bench.controller)
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), 30)
    await asyncio.sleep(0.2)  # the room subscriptions reach Redis

    bench.start_round()
    await asyncio.sleep(args.warmup)
    print(json.dumps({"phase": "measure"}), flush=True)
    bench.count = 0
    bench.counting = True
    started = time.monotonic()
    while time.monotonic() - started < args.duration:
        await asyncio.sleep(0.05)
        if time.monotonic() - bench.last_progress > 15:
            bench.fail("no round completed for 15 s")
            break
    bench.counting = False
    seconds = time.monotonic() - started
    bench.stopping = True
    print(
        json.dumps(
            {
                "count": bench.count,
                "seconds": round(seconds, 3),
                "rounds": bench.rounds_done,
                "errors": bench.errors,
                "error": bench.error,
            }
        ),
        flush=True,
    )
    for c in clients:
        if c.transport is not None:
            c.transport.abort()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
