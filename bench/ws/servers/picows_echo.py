"""Echo server on picows (callback listener, frames echoed as they arrive), for the benchmark.

picows hands over frames, not messages: each data frame goes back with its own
opcode and FIN bit, so a fragmented message is echoed fragment by fragment.
"""

from __future__ import annotations

import asyncio

from _runner import MAX_SIZE, port_from_argv, run
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server


class Echo(WSListener):
    """Sends each data frame straight back."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """Echo data frames; answer a close frame and disconnect."""
        if frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
            transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin)


def listener(request: WSUpgradeRequest) -> Echo:
    """One listener per connection, whatever the path."""
    return Echo()


async def main() -> None:
    """Serve on 127.0.0.1:PORT until cancelled."""
    server = await ws_create_server(
        listener, "127.0.0.1", port_from_argv(), max_frame_size=MAX_SIZE
    )
    async with server:
        await asyncio.Future()


if __name__ == "__main__":
    run(main)
