"""wsio's ``writelines`` helper on asyncio's own socket transport (no uvloop).

Python 3.12+ changed that transport's ``writelines``: it no longer applies
flow control, and an empty item left at the end of its buffer never goes
away. The helper must give the behaviour every layer relies on, on every
Python version.
"""

from __future__ import annotations

import asyncio
import socket

from wsio._util import writelines


class Recording(asyncio.Protocol):
    def __init__(self) -> None:
        self.paused = 0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def pause_writing(self) -> None:
        self.paused += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


async def _transport() -> tuple[asyncio.Transport, Recording, socket.socket]:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    transport, protocol = await loop.connect_accepted_socket(Recording, ours)
    return transport, protocol, theirs


def test_empty_items_do_not_stick_and_close_completes() -> None:
    async def main() -> None:
        transport, protocol, theirs = await _transport()
        try:
            writelines(transport, [b"header", b""])  # an empty frame's payload
            assert transport.get_write_buffer_size() == 0
            transport.close()
            await asyncio.wait_for(protocol.lost, 2)
            assert theirs.recv(100) == b"header"
        finally:
            theirs.close()

    asyncio.run(main())  # the default loop: asyncio's own transport


def test_flow_control_applies_to_lists() -> None:
    async def main() -> None:
        transport, protocol, theirs = await _transport()
        try:
            transport.set_write_buffer_limits(high=64 * 1024)
            chunk = b"x" * 65536
            for _ in range(64):  # the peer reads nothing: the buffer grows
                writelines(transport, [b"h", chunk])
                if protocol.paused:
                    break
            assert protocol.paused == 1
            assert transport.get_write_buffer_size() > 64 * 1024
        finally:
            transport.abort()
            theirs.close()

    asyncio.run(main())
