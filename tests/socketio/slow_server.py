"""A wsio Socket.IO server for the slow-consumer test (run as a separate process).

argv: PORT MAX_OUTGOING_BYTES. Every 50 ms it broadcasts a small timestamped
probe to everyone; every 10 ms a 64 KiB message goes to the room "heavy".
Disconnects are printed as JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import wsio


async def main(port: int, max_outgoing_bytes: int) -> None:
    sio = wsio.Server(max_outgoing_bytes=max_outgoing_bytes)

    @sio.on("connect")
    async def connect(socket: wsio.Socket, auth: object) -> None:
        if isinstance(auth, dict) and auth.get("heavy"):
            await socket.join("heavy")

    @sio.on("disconnect")
    def disconnect(socket: wsio.Socket, reason: str) -> None:
        print(json.dumps({"event": "disconnect", "sid": socket.id, "reason": reason}), flush=True)

    await sio.start("127.0.0.1", port)
    print(json.dumps({"event": "ready"}), flush=True)
    blob = "x" * 65536
    tick = 0
    while True:
        if tick % 5 == 0:
            sio.emit("probe", time.time())
        sio.to("heavy").emit("heavy", blob)
        tick += 1
        await asyncio.sleep(0.01)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
