"""The fixtures and helpers start real peers that answer over the wire."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser

from support.procs import (
    REPO_ROOT,
    NginxFactory,
    free_port,
    run_node,
    serve_directory,
    stop,
    wait_listening,
)


def test_redis_server_answers_ping(redis_server: int) -> None:
    with socket.create_connection(("127.0.0.1", redis_server), timeout=5) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert sock.recv(64) == b"+PONG\r\n"


def test_nginx_proxies_to_backends(nginx_factory: NginxFactory, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("from the backend\n")
    with serve_directory(tmp_path) as backend:
        port = nginx_factory([backend])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/hello.txt")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Server", "").startswith("nginx")
        assert resp.read() == b"from the backend\n"
        conn.close()


def test_nginx_round_robin_over_two_backends(nginx_factory: NginxFactory, tmp_path: Path) -> None:
    for name in "ab":
        (tmp_path / name).mkdir()
        (tmp_path / name / "who").write_text(name)
    with serve_directory(tmp_path / "a") as a, serve_directory(tmp_path / "b") as b:
        port = nginx_factory([a, b], websocket=False)
        seen = []
        for _ in range(4):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/who")
            seen.append(conn.getresponse().read())
            conn.close()
        assert sorted(seen) == [b"a", b"a", b"b", b"b"]


async def test_chromium_loads_a_local_page(browser: Browser, tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        "<!doctype html><title>wsio test</title><p id=x>served</p>"
    )
    with serve_directory(tmp_path) as port:
        page = await browser.new_page()
        await page.goto(f"http://127.0.0.1:{port}/index.html")
        assert await page.evaluate("() => document.title") == "wsio test"
        assert await page.text_content("#x") == "served"


def test_node_runs_with_interop_packages(tmp_path: Path) -> None:
    script = tmp_path / "versions.js"
    script.write_text(
        "for (const m of ['ws', 'socket.io', 'socket.io-client', 'engine.io-client'])\n"
        "  console.log(JSON.stringify({name: m, version: require(m + '/package.json').version}));\n"
        "process.exit(3);\n"
    )
    rc, lines, stderr = run_node(script)
    assert rc == 3, stderr
    assert [line["name"] for line in lines] == [
        "ws",
        "socket.io",
        "socket.io-client",
        "engine.io-client",
    ]
    assert all(line["version"].count(".") == 2 for line in lines)


def test_wait_listening_times_out_on_a_closed_port() -> None:
    with pytest.raises(TimeoutError):
        wait_listening(free_port(), timeout=0.3)


def test_guarded_children_end_with_a_killed_test_process(tmp_path: Path) -> None:
    """A process started through guarded() gets SIGTERM when its parent is SIGKILLed."""
    parent_code = (
        "import subprocess, sys, time\n"
        "from support.procs import guarded\n"
        "child = subprocess.Popen(guarded([sys.executable, '-c', 'import time; time.sleep(60)']))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "tests")}
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(child), "the child outlived its killed parent"
    finally:
        if parent.poll() is None:
            stop(parent)
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether *pid* runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")
