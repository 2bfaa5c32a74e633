"""Slow consumers: a stalled client among 100 active ones is cut off, memory stays bounded."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.procs import free_port, guarded, stop, wait_listening
from support.sio import stalled_client
from wsio.websocket import connect

HERE = Path(__file__).parent
ACTIVE = 100


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def active_client(port: int, latencies: list[float], stop_at: float, heavy: bool) -> str:
    url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
    async with connect(url, compression=None, max_size=2**20, ping_interval=None) as ws:
        assert (await ws.recv()).startswith("0{")  # type: ignore[union-attr]
        await ws.send('40{"heavy":true}' if heavy else "40")
        heavy_count = 0
        while time.monotonic() < stop_at:
            try:
                message = await asyncio.wait_for(ws.recv(), 2)
            except TimeoutError:
                return "starved"
            if message == "2":
                await ws.send("3")
            elif isinstance(message, str) and message.startswith('42["probe"'):
                latencies.append(time.time() - json.loads(message[2:])[1])
            elif isinstance(message, str) and message.startswith('42["heavy"'):
                heavy_count += 1
        return "ok" if (heavy_count > 0 or not heavy) else "no heavy messages"


@pytest.mark.asyncio
async def test_stalled_client_is_disconnected_and_memory_stays_bounded() -> None:
    port = free_port()
    limit = 512 * 1024
    proc = subprocess.Popen(
        guarded([sys.executable, str(HERE / "slow_server.py"), str(port), str(limit)]),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_listening(port, proc)
        loop = asyncio.get_running_loop()
        latencies: list[float] = []
        stop_at = time.monotonic() + 6.0
        clients = [
            asyncio.ensure_future(active_client(port, latencies, stop_at, heavy=False))
            for i in range(ACTIVE)
        ]
        await asyncio.sleep(1.0)
        rss_before = rss_kib(proc.pid)
        stalled = await loop.run_in_executor(None, stalled_client, port, b'40{"heavy":true}')
        results = await asyncio.gather(*clients)
        rss_after = rss_kib(proc.pid)
        stalled.close()
    finally:
        stop(proc)
    out = proc.stdout.read() if proc.stdout else ""
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    reasons = [e["reason"] for e in events if e["event"] == "disconnect"]
    # The stalled client is cut off with the documented reason, the others are untouched.
    assert reasons.count("slow consumer") == 1, reasons
    assert results == ["ok"] * ACTIVE
    # Without the limit the server would hold 6.4 MB more every second for the stalled client.
    assert rss_after - rss_before < 12 * 1024, (rss_before, rss_after)
    # Everybody else kept getting probes promptly.
    assert len(latencies) > ACTIVE * 50
    assert statistics.median(latencies) < 0.25, statistics.median(latencies)
    assert max(latencies) < 2.0, max(latencies)
