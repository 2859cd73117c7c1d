"""The echo page in a real browser against the sample app under Daphne.

Headless Chromium loads ``/`` from Daphne on 127.0.0.1 and the test reads
what a person would see: the socket's status, the log of what went out and
came back. Then the server is terminated and started again on the same port,
and the page must show the socket closed (with its close code), retry with a
growing delay while nothing answers, and be connected again, echoing, soon
after the server is back.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from browser_cdp import CDPConnection, Page, wait_for

if TYPE_CHECKING:
    from conftest import AppServer

# Waits for something the page does at once (load, connect, echo).
# Bound on each wait for a page state: it holds on a busy machine; a passing
# run waits only as long as the page takes.
QUICK = 30.0
# app.js doubles its delay from 0.5 s up to 10 s; whatever the delay was when
# the server came back, the page must be connected within the cap plus slack.
RECONNECT_BOUND = 15.0
# Failed attempts to see while the server is down: delays 0.5, 1, 2 s.
FAILED_ATTEMPTS = 3

CLOSED_LOG = re.compile(r"closed with code (\d+)(?:, (.*))?; retrying in ([\d.]+) s$")

READ_PAGE = """(() => {
  const status = document.getElementById("ws-status");
  return {
    status: status.textContent,
    statusClass: status.className,
    inputDisabled: document.getElementById("message").disabled,
    buttonDisabled: document.getElementById("send-button").disabled,
    wsUrl: document.getElementById("ws-url").textContent,
    served: document.querySelector(".meta strong").textContent,
    log: Array.from(document.querySelectorAll("#log li"), li => ({
      kind: li.className,
      // Each entry starts with the local time (toLocaleTimeString).
      text: li.textContent.replace(/^\\S+(\\s[AP]M)?\\s/, ""),
    })),
    now: performance.now(),
  };
})()"""

# Every change of the status element, with the page's clock, so the test sees
# transitions too short to catch by polling.
RECORD_STATUS = """(() => {
  const status = document.getElementById("ws-status");
  const seen = window.__wslabStatus = [];
  const note = () => seen.push({t: performance.now(), text: status.textContent});
  note();
  new MutationObserver(note).observe(
      status, {childList: true, characterData: true, subtree: true});
  return performance.now();
})()"""


@dataclass
class Closed:
    code: int
    reason: str | None
    retry_s: float


def closes(state: dict[str, Any]) -> list[Closed]:
    found = []
    for entry in state["log"]:
        match = CLOSED_LOG.search(entry["text"])
        if match:
            found.append(Closed(int(match[1]), match[2], float(match[3])))
    return found


def texts(state: dict[str, Any], kind: str) -> list[str]:
    return [e["text"] for e in state["log"] if e["kind"] == kind]


async def read(page: Page) -> dict[str, Any]:
    return await page.evaluate(READ_PAGE)


async def wait_state(
    page: Page, check: Any, timeout: float, what: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        state = await read(page)
        return state if check(state) else None

    try:
        return await wait_for(probe, timeout, what)
    except TimeoutError as exc:
        raise AssertionError(
            f"{exc}; the page shows {json.dumps(await read(page), indent=1)}"
        )


def connected(state: dict[str, Any]) -> bool:
    return state["status"] == "connected"


async def send_and_expect_echo(page: Page, text: str) -> dict[str, Any]:
    await page.type_into("#message", text)
    await page.click("#send-button")
    state = await wait_state(
        page,
        lambda s: f"\u2190 {text}" in texts(s, "received"),
        QUICK,
        f"the echo of {text!r}",
    )
    assert f"\u2192 {text}" in texts(state, "sent")
    # The form clears the input once the message is sent.
    assert await page.evaluate('document.getElementById("message").value') == ""
    return state


async def test_page_shows_state_echoes_and_reconnects_after_restart(
    chromium: str, app_server: AppServer
) -> None:
    await app_server.start()
    async with await CDPConnection.open(chromium) as cdp:
        page = await Page.create(cdp)
        await page.navigate(app_server.url)

        # 1. Connected, and the page says so.
        state = await wait_state(page, connected, QUICK, "the page to connect")
        assert state["statusClass"] == "status status-open"
        assert state["inputDisabled"] is False and state["buttonDisabled"] is False
        assert state["wsUrl"] == f"ws://127.0.0.1:{app_server.port}/ws/echo/"
        assert state["served"] == "daphne"
        assert f"connected to {state['wsUrl']}" in texts(state, "info")

        # 2. Typed text comes back.
        await send_and_expect_echo(page, "hello")

        # 3. The server goes away: the page shows the socket closed and why.
        await page.evaluate(RECORD_STATUS)
        sockets_before = len(page.events("Network.webSocketCreated"))
        exit_code = await app_server.stop()
        stopped_at = time.monotonic()
        state = await wait_state(
            page,
            lambda s: s["status"].startswith("closed"),
            QUICK,
            "the page to show closed",
        )
        first_close = closes(state)[0]
        # Daphne drops its sockets without a close frame when it stops.
        assert state["status"] == "closed (code 1006)", state["status"]
        assert state["statusClass"] == "status status-closed"
        assert first_close.code == 1006 and first_close.retry_s == 0.5
        # Nothing can be sent while there is no socket.
        assert state["inputDisabled"] is True and state["buttonDisabled"] is True

        # 4. While nothing listens, every attempt fails and the delay doubles.
        state = await wait_state(
            page,
            lambda s: len(closes(s)) >= 1 + FAILED_ATTEMPTS,
            QUICK,
            f"{FAILED_ATTEMPTS} failed reconnect attempts",
        )
        down = closes(state)
        attempts_while_down = (
            len(page.events("Network.webSocketCreated")) - sockets_before
        )
        assert attempts_while_down >= FAILED_ATTEMPTS
        assert all(c.code == 1006 for c in down)
        delays = [c.retry_s for c in down]
        assert (
            delays[: 1 + FAILED_ATTEMPTS] == [0.5, 1.0, 2.0, 4.0][: 1 + FAILED_ATTEMPTS]
        )
        assert delays == sorted(delays) and max(delays) <= 10

        # 5. Started again on the same port: the page reconnects by itself.
        page_clock = (await read(page))["now"]
        python_clock = time.monotonic()
        restarted_at = time.monotonic()
        answering_at = await app_server.start()
        state = await wait_state(
            page, connected, RECONNECT_BOUND, "the page to reconnect after the restart"
        )
        reconnected_at = time.monotonic()

        history = await page.evaluate("window.__wslabStatus")
        # The page's own clock for the moment the status turned "connected".
        connected_page_t = next(
            h["t"] for h in reversed(history) if h["text"] == "connected"
        )
        connected_at = python_clock + (connected_page_t - page_clock) / 1000
        print(
            f"\nserver down {restarted_at - stopped_at:.2f} s "
            f"(daphne exit {exit_code}); {attempts_while_down} failed attempts, "
            f"retry delays logged {delays}; "
            f"restart -> answering {answering_at - restarted_at:.2f} s; "
            f"restart -> page connected {connected_at - restarted_at:.2f} s "
            f"(answering -> connected {connected_at - answering_at:.2f} s, "
            f"seen by polling at {reconnected_at - restarted_at:.2f} s)"
        )
        t0 = history[0]["t"]
        print(
            "status from just before the stop (s):",
            ", ".join(f'{(h["t"] - t0) / 1000:.2f} {h["text"]}' for h in history),
        )
        assert connected_at - restarted_at < RECONNECT_BOUND

        # The status went closed -> connecting -> closed ... -> connected, and
        # each retry waited at least the delay the page announced for it.
        kinds = [h["text"].split(" ")[0] for h in history[1:]]
        assert kinds[0] == "closed" and kinds[-1] == "connected"
        assert kinds.count("connecting") >= FAILED_ATTEMPTS + 1
        waits = [
            (b["t"] - a["t"]) / 1000
            for a, b in zip(history[1:], history[2:])
            if a["text"].startswith("closed") and b["text"] == "connecting"
        ]
        assert len(waits) >= FAILED_ATTEMPTS + 1, waits
        for announced, waited in zip(delays, waits):
            assert announced - 0.05 <= waited <= announced + 1.0, (delays, waits)

        # 6. The new socket echoes.
        state = await send_and_expect_echo(page, "hello again")
        assert texts(state, "info").count(f"connected to {state['wsUrl']}") == 2

        # 7. Once connected, the delay starts again from 0.5 s.
        closes_so_far = len(closes(state))
        await app_server.stop()
        state = await wait_state(
            page,
            lambda s: len(closes(s)) > closes_so_far,
            QUICK,
            "the page to show the second stop",
        )
        assert closes(state)[closes_so_far].retry_s == 0.5

        # The page's own assets came from the server (a missing app.js would
        # have shown as a page stuck at "connecting").
        static = {
            e.params["response"]["url"].rsplit("/static/", 1)[1]: e.params["response"][
                "status"
            ]
            for e in page.events("Network.responseReceived")
            if "/static/" in e.params["response"]["url"]
        }
        assert static == {"echo/app.css": 200, "echo/app.js": 200}, static

        # No script error at any point.
        errors = page.events("Runtime.exceptionThrown")
        assert not errors, [e.params for e in errors]
