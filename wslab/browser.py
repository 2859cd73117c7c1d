"""The echo page in a real browser: Debian's Chromium, driven by Playwright.

Shared by the page's tests against a bare Daphne (tests/browser/) and through
nginx in every layout (molecule/shared/tests/test_browser.py). Playwright's
own browser download cannot reach this network, so it drives the Chromium
that scripts/browser-deps.sh installs (``executable_path``). Every wait is
bounded; the browser is closed when the block ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Browser, Page, Response, WebSocket, async_playwright

# Bounds that hold on a busy machine (two cores, every scenario at once); a
# passing run waits only as long as the browser takes.
LAUNCH_TIMEOUT_S = 60.0
ACTION_TIMEOUT_S = 30.0
POLL_S = 0.05

CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps trying to reach Google's hosts, which this
    # machine's closed network refuses.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Straight to the lab's addresses, whatever proxy the environment names.
    "--no-proxy-server",
]

# What a person sees on the echo page (sample_app/echo/templates/echo/index.html).
READ_PAGE = """(() => {
  const text = id => document.getElementById(id).textContent;
  const status = document.getElementById("ws-status");
  const diagnosis = document.getElementById("diagnosis");
  return {
    status: status.textContent,
    statusClass: status.className,
    inputDisabled: document.getElementById("message").disabled,
    buttonDisabled: document.getElementById("send-button").disabled,
    wsUrl: text("ws-url"),
    layout: text("layout"),
    pageServer: text("page-server"),
    socketServer: text("socket-server"),
    closeCode: text("close-code"),
    reconnects: text("reconnects"),
    diagnosis: diagnosis.hidden ? null : diagnosis.textContent,
    verdict: diagnosis.hidden ? null : (diagnosis.dataset.verdict || null),
    log: Array.from(document.querySelectorAll("#log li"), li => ({
      kind: li.className,
      // Each entry starts with the local time (toLocaleTimeString).
      text: li.textContent.replace(/^\\S+(\\s[AP]M)?\\s/, ""),
    })),
    now: performance.now(),
  };
})()"""


def chromium_path() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise RuntimeError("chromium is not installed: run scripts/browser-deps.sh (make test and make unit do)")
    return found


@dataclass
class EchoPage:
    """A browser tab on the echo page, and what the browser saw it do."""

    page: Page
    sockets: list[str] = field(default_factory=list)  # URL of each WebSocket the page created
    responses: dict[str, int] = field(default_factory=dict)  # URL -> HTTP status
    errors: list[str] = field(default_factory=list)  # uncaught script errors

    async def read(self) -> dict[str, Any]:
        return await self.page.evaluate(READ_PAGE)

    async def wait_for(
        self, check: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """Poll the page until CHECK holds for what it shows; fail with what it shows."""
        deadline = time.monotonic() + timeout
        while True:
            state = await self.read()
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout:.0f} s for {what}; the page shows {json.dumps(state, indent=1)}"
                )
            await asyncio.sleep(POLL_S)

    async def send(self, text: str) -> None:
        await self.page.fill("#message", text)
        await self.page.click("#send-button")

    async def send_and_expect_echo(self, text: str, timeout: float = ACTION_TIMEOUT_S) -> dict[str, Any]:
        await self.send(text)
        state = await self.wait_for(lambda s: f"\u2190 {text}" in texts(s, "received"), timeout, f"the echo of {text!r}")
        assert f"\u2192 {text}" in texts(state, "sent"), state
        # The form clears the input once the message is sent.
        assert await self.page.input_value("#message") == ""
        return state


def texts(state: dict[str, Any], kind: str) -> list[str]:
    """The log entries of one kind (sent, received, info), without their time."""
    return [entry["text"] for entry in state["log"] if entry["kind"] == kind]


# What app.js logs for each close: the code, the reason if any, the delay
# before its next attempt.
_CLOSED = re.compile(r"closed with code (\d+)(?:, (.*))?; retrying in ([\d.]+) s$")


@dataclass
class Closed:
    code: int
    reason: str | None
    retry_s: float


def closes(state: dict[str, Any]) -> list[Closed]:
    """Every close the page logged, oldest first."""
    matches = (_CLOSED.search(text) for text in texts(state, "info"))
    return [Closed(int(m[1]), m[2], float(m[3])) for m in matches if m]


def connected(state: dict[str, Any]) -> bool:
    return state["status"] == "connected"


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A fresh headless Chromium, closed when the block ends."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, timeout=LAUNCH_TIMEOUT_S * 1000
        )
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def open_echo_page(browser: Browser, url: str) -> AsyncIterator[EchoPage]:
    """URL (the echo page) in a new browser context of its own, closed when
    the block ends: tests that share one browser share nothing else.

    Certificate errors are ignored: the lab's TLS certificate is self-signed.
    """
    context = await browser.new_context(ignore_https_errors=True)
    try:
        page = await context.new_page()
        page.set_default_timeout(ACTION_TIMEOUT_S * 1000)
        watched = EchoPage(page)

        def on_socket(socket: WebSocket) -> None:
            watched.sockets.append(socket.url)

        def on_response(response: Response) -> None:
            watched.responses[response.url] = response.status

        page.on("websocket", on_socket)
        page.on("response", on_response)
        page.on("pageerror", lambda error: watched.errors.append(str(error)))
        await page.goto(url)
        yield watched
    finally:
        await context.close()


@contextlib.asynccontextmanager
async def echo_page(url: str) -> AsyncIterator[EchoPage]:
    """The echo page at URL in a browser of its own."""
    async with chromium() as browser, open_echo_page(browser, url) as tab:
        yield tab
