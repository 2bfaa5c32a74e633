"""``wsio demo`` end to end: the chat page in headless Chromium against the real command.

The server is ``python -m wsio demo`` in a subprocess; the pages use the
official browser bundle it serves. Pages are driven through their forms, and
through ``window.wsioDemo`` for what a test cannot click (an image made in the
page, the current socket).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from support.procs import NODE_DIR, free_port, start, stop

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page

CLIENT_DIST = NODE_DIR / "node_modules" / "socket.io-client" / "dist"
TIMEOUT = 10_000  # ms, for every wait on the page

# A PNG drawn by the page itself, returned as hex with the ArrayBuffer sent.
SEND_DRAWN_IMAGE = """async () => {
  const canvas = document.createElement("canvas");
  canvas.width = 8; canvas.height = 8;
  const g = canvas.getContext("2d");
  g.fillStyle = "#2f6fed"; g.fillRect(0, 0, 8, 8);
  g.fillStyle = "#ff0000"; g.fillRect(2, 2, 3, 3);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const buffer = await blob.arrayBuffer();
  window.wsioDemo.sendImage(buffer, "image/png");
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}"""

IMAGE_HEX = """async (img) => {
  const buffer = await (await fetch(img.src)).arrayBuffer();
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}"""


class Demo:
    """A ``wsio demo`` process that can be stopped and started again on its port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.tmp_path = tmp_path
        self.proc: subprocess.Popen[Any] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = (self.tmp_path / f"demo{self.starts}.log").open("wb")
        env = {**os.environ, "WSIO_CLIENT_DIST": str(CLIENT_DIST)}
        cmd = [sys.executable, "-m", "wsio", "demo", "--port", str(self.port)]
        try:
            self.proc = start(cmd, self.port, cwd=self.tmp_path, env=env, stdout=log, stderr=log)
        finally:
            log.close()

    def stop(self) -> int:
        assert self.proc is not None
        status = stop(self.proc)
        self.proc = None
        return status

    def log(self) -> str:
        return "".join(p.read_text() for p in sorted(self.tmp_path.glob("demo*.log")))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    if not (CLIENT_DIST / "socket.io.js").is_file():
        pytest.fail(f"{CLIENT_DIST} is missing: run scripts/setup.sh", pytrace=False)
    server = Demo(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.stop()


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    """Browser contexts (one per user, so one can go offline alone), closed at the end."""
    made: list[BrowserContext] = []
    yield made
    for context in made:
        await context.close()


async def enter(contexts: list[BrowserContext], browser: Browser, demo: Demo, nick: str) -> Page:
    """A new user: opens the page, picks *nick*, lands in #general."""
    from playwright.async_api import expect

    context = await browser.new_context()
    contexts.append(context)
    page = await context.new_page()
    await page.goto(demo.url)
    assert await page.title() == "wsio chat"
    await page.fill("#nick", nick)
    await page.click("#login-form button")
    await expect(page.locator("#rooms li[data-room='general']")).to_be_visible(timeout=TIMEOUT)
    await expect(page.locator("#room-title")).to_have_text("# general")
    await expect(page.locator("body")).to_have_attribute("data-connection", "connected")
    return page


async def join(page: Page, room: str) -> None:
    from playwright.async_api import expect

    await page.fill("#room-name", room)
    await page.click("#join-form button")
    await expect(page.locator("#room-title")).to_have_text(f"# {room}", timeout=TIMEOUT)


async def say(page: Page, text: str) -> None:
    """Send *text* from the composer and wait for the server's delivery acknowledgement."""
    from playwright.async_api import expect

    await page.fill("#text", text)
    await page.click("#composer button")
    mine = page.locator("#messages li.mine", has_text=text)
    await expect(mine.locator(".mark")).to_have_text("\u2713 delivered", timeout=TIMEOUT)


def texts(page: Page) -> Any:
    return page.locator("#messages li.msg[data-kind='text'] .text")


async def test_two_pages_chat_with_presence_typing_images_and_history(
    browser: Browser, demo: Demo, contexts: list[BrowserContext]
) -> None:
    from playwright.async_api import expect

    alice = await enter(contexts, browser, demo, "alice")
    bob = await enter(contexts, browser, demo, "bob")
    for page in (alice, bob):
        await expect(page.locator("#members li")).to_have_text(["alice", "bob"], timeout=TIMEOUT)

    # A room of their own: presence follows.
    await join(alice, "lab")
    await expect(alice.locator("#members li")).to_have_text(["alice"], timeout=TIMEOUT)
    await join(bob, "lab")
    for page in (alice, bob):
        await expect(page.locator("#members li")).to_have_text(["alice", "bob"], timeout=TIMEOUT)
    await expect(alice.locator("#messages li.notice")).to_have_text(["bob joined"])

    # Typing indicator, then a message with its delivery acknowledgement.
    await alice.locator("#text").press_sequentially("hel")
    await expect(bob.locator("#typing")).to_have_text("alice is typing\u2026", timeout=TIMEOUT)
    await say(alice, "hello bob")
    await expect(texts(bob)).to_have_text(["hello bob"], timeout=TIMEOUT)
    await expect(bob.locator("#messages li.msg .who")).to_have_text(["alice"])
    await expect(bob.locator("#typing")).to_have_text("")
    await say(bob, "hi alice")
    await expect(texts(alice)).to_have_text(["hello bob", "hi alice"], timeout=TIMEOUT)

    # An image made in the page travels as binary and arrives byte for byte.
    sent = await bob.evaluate(SEND_DRAWN_IMAGE)
    assert sent.startswith("89504e47")  # PNG signature
    mine = bob.locator("#messages li.mine[data-kind='image']")
    await expect(mine.locator(".mark")).to_have_text("\u2713 delivered", timeout=TIMEOUT)
    picture = alice.locator("#messages li[data-kind='image'] img")
    await expect(picture).to_be_visible(timeout=TIMEOUT)
    assert await picture.evaluate(IMAGE_HEX) == sent
    assert await picture.evaluate("(img) => img.naturalWidth") == 8  # it decodes as an image

    # Messages in another room do not leak into this one.
    await alice.click("#rooms li[data-room='general'] .room")
    await say(alice, "in general")
    await expect(bob.locator("#rooms li[data-room='general'] .unread")).to_have_text("1")
    await expect(texts(bob)).to_have_text(["hello bob", "hi alice"])

    # A late joiner gets the room's history (text and image) and sees everyone present.
    carol = await enter(contexts, browser, demo, "carol")
    await join(carol, "lab")
    await expect(texts(carol)).to_have_text(["hello bob", "hi alice"], timeout=TIMEOUT)
    late_picture = carol.locator("#messages li[data-kind='image'] img")
    await expect(late_picture).to_be_visible()
    assert await late_picture.evaluate(IMAGE_HEX) == sent
    await expect(carol.locator("#members li")).to_have_text(["alice", "bob", "carol"])
    await expect(bob.locator("#members li")).to_have_text(["alice", "bob", "carol"])

    # Leaving updates the others' member list.
    await carol.click("#rooms li[data-room='lab'] .leave")
    await expect(bob.locator("#members li")).to_have_text(["alice", "bob"], timeout=TIMEOUT)


async def test_a_short_drop_is_recovered_without_losing_messages(
    browser: Browser, demo: Demo, contexts: list[BrowserContext]
) -> None:
    from playwright.async_api import expect

    alice = await enter(contexts, browser, demo, "alice")
    bob = await enter(contexts, browser, demo, "bob")
    await say(alice, "before")
    await expect(texts(bob)).to_have_text(["before"], timeout=TIMEOUT)
    first_id = await alice.evaluate("() => window.wsioDemo.state.socket.id")

    # Cut alice's connection and keep her offline while bob talks.
    offline = alice.context
    await alice.evaluate("() => window.wsioDemo.state.socket.io.engine.close()")
    await offline.set_offline(True)
    await expect(alice.locator("#banner")).to_be_visible(timeout=TIMEOUT)
    await expect(alice.locator("body")).to_have_attribute("data-connection", "disconnected")
    for n in range(1, 4):
        await say(bob, f"while away {n}")
    await alice.fill("#text", "written offline")
    await alice.click("#composer button")
    await expect(alice.locator("#messages li.mine .mark")).to_have_text(
        ["\u2713 delivered", "sending\u2026"]
    )
    assert await alice.get_attribute("body", "data-connection") == "disconnected"

    # Back online: the same session comes back with everything missed, once, in order.
    await offline.set_offline(False)
    await expect(alice.locator("body")).to_have_attribute(
        "data-connection", "connected", timeout=TIMEOUT
    )
    await expect(alice.locator("#banner")).to_be_hidden()
    assert await alice.get_attribute("body", "data-recovered") == "true"
    assert await alice.evaluate("() => window.wsioDemo.state.socket.id") == first_id
    await expect(texts(alice)).to_have_text(
        ["before", "while away 1", "while away 2", "while away 3", "written offline"],
        timeout=TIMEOUT,
    )
    await expect(alice.locator("#messages li.mine .mark")).to_have_text(
        ["\u2713 delivered", "\u2713 delivered"], timeout=TIMEOUT
    )
    await expect(texts(bob)).to_have_text(
        ["before", "while away 1", "while away 2", "while away 3", "written offline"],
        timeout=TIMEOUT,
    )
    await expect(alice.locator("#members li")).to_have_text(["alice", "bob"], timeout=TIMEOUT)


async def test_after_a_server_restart_the_page_reconnects_and_rejoins(
    browser: Browser, demo: Demo, contexts: list[BrowserContext]
) -> None:
    from playwright.async_api import expect

    alice = await enter(contexts, browser, demo, "alice")
    await join(alice, "lab")
    await say(alice, "before the restart")
    await expect(alice.locator("#banner")).to_be_hidden()

    assert demo.stop() == 0, demo.log()  # SIGTERM: a clean shutdown
    await expect(alice.locator("#banner")).to_be_visible(timeout=TIMEOUT)
    await expect(alice.locator("#banner")).to_contain_text("Reconnecting")
    await expect(alice.locator("body")).to_have_attribute("data-connection", "disconnected")

    demo.start()
    await expect(alice.locator("body")).to_have_attribute(
        "data-connection", "connected", timeout=15_000
    )
    await expect(alice.locator("#banner")).to_be_hidden()
    assert await alice.get_attribute("body", "data-recovered") == "false"  # a new server
    # The page joined its rooms again on the new server, and kept what it had shown.
    await expect(alice.locator("#room-title")).to_have_text("# lab")
    await expect(alice.locator("#members li")).to_have_text(["alice"], timeout=TIMEOUT)
    await expect(texts(alice)).to_have_text(["before the restart"])
    bob = await enter(contexts, browser, demo, "bob")
    await join(bob, "lab")
    await expect(alice.locator("#members li")).to_have_text(["alice", "bob"], timeout=TIMEOUT)
    await say(alice, "after the restart")
    await expect(texts(bob)).to_have_text(["after the restart"], timeout=TIMEOUT)
