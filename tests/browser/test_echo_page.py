"""The echo page in a real browser against the sample app under Daphne.

Headless Chromium (driven by Playwright, wslab.browser) loads ``/`` from
Daphne on 127.0.0.1 and the test reads what a person would see: the socket's
status, what the page says it is connected to, the log of what went out and
came back. Then the server is terminated and started again on the same port,
and the page must show the socket closed (with its close code), retry with a
growing delay while nothing answers, and be connected again, echoing, and
counting the reconnect, soon after the server is back. The same page through
nginx in every layout: molecule/shared/tests/test_browser.py.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from tests.bare_daphne import BARE_LAYOUT as LAYOUT
from wslab.browser import closes, connected, echo_page, texts

if TYPE_CHECKING:
    from tests.bare_daphne import AppServer

# Waits for something the page does at once (load, connect, echo).
# Bound on each wait for a page state: it holds on a busy machine; a passing
# run waits only as long as the page takes.
QUICK = 30.0
# app.js doubles its delay from 0.5 s up to 10 s; whatever the delay was when
# the server came back, the page must be connected within that cap plus a
# handshake's bound.
RECONNECT_BOUND = 10.0 + QUICK
# Failed attempts to see while the server is down: delays 0.5, 1, 2 s.
FAILED_ATTEMPTS = 3

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


async def test_page_shows_state_echoes_and_reconnects_after_restart(app_server: AppServer) -> None:
    await app_server.start()
    async with echo_page(app_server.url) as tab:
        page = tab.page

        # 1. Connected, and the page says so, and to what.
        state = await tab.wait_for(lambda s: connected(s) and "pid" in s["socketServer"], QUICK, "the page to connect")
        assert state["statusClass"] == "status status-open"
        assert state["inputDisabled"] is False and state["buttonDisabled"] is False
        assert state["wsUrl"] == f"ws://127.0.0.1:{app_server.port}/ws/echo/?welcome=1"
        assert (state["layout"], state["pageServer"]) == (LAYOUT, "daphne")
        assert re.fullmatch(r"daphne \(pid \d+\)", state["socketServer"]), state["socketServer"]
        assert (state["closeCode"], state["reconnects"]) == ("none yet", "0")
        assert state["diagnosis"] is None
        assert f"connected to {state['wsUrl']}" in texts(state, "info")
        first_holder = state["socketServer"]

        # 2. Typed text comes back; the welcome was not shown as an echo.
        state = await tab.send_and_expect_echo("hello")
        assert texts(state, "received") == ["\u2190 hello"]

        # 3. The server goes away: the page shows the socket closed and why.
        await page.evaluate(RECORD_STATUS)
        sockets_before = len(tab.sockets)
        exit_code = await app_server.stop()
        stopped_at = time.monotonic()
        state = await tab.wait_for(lambda s: s["status"].startswith("closed"), QUICK, "the page to show closed")
        first_close = closes(state)[0]
        # Daphne drops its sockets without a close frame when it stops.
        assert state["status"] == "closed (code 1006)", state["status"]
        assert (state["closeCode"], state["socketServer"]) == ("1006", "none")
        assert state["statusClass"] == "status status-closed"
        assert first_close.code == 1006 and first_close.retry_s == 0.5
        # Nothing can be sent while there is no socket.
        assert state["inputDisabled"] is True and state["buttonDisabled"] is True

        # 4. While nothing listens, every attempt fails and the delay doubles.
        state = await tab.wait_for(
            lambda s: len(closes(s)) >= 1 + FAILED_ATTEMPTS, QUICK, f"{FAILED_ATTEMPTS} failed reconnect attempts"
        )
        down = closes(state)
        attempts_while_down = len(tab.sockets) - sockets_before
        assert attempts_while_down >= FAILED_ATTEMPTS
        assert all(c.code == 1006 for c in down)
        delays = [c.retry_s for c in down]
        assert delays[: 1 + FAILED_ATTEMPTS] == [0.5, 1.0, 2.0, 4.0][: 1 + FAILED_ATTEMPTS]
        assert delays == sorted(delays) and max(delays) <= 10
        # Nothing answers on the port at all: the page says so.
        state = await tab.wait_for(lambda s: s["verdict"] is not None, QUICK, "the page to say why")
        assert state["verdict"] == "unreachable", state["diagnosis"]
        assert state["reconnects"] == "0"

        # 5. Started again on the same port: the page reconnects by itself.
        page_clock = (await tab.read())["now"]
        python_clock = time.monotonic()
        restarted_at = time.monotonic()
        answering_at = await app_server.start()
        state = await tab.wait_for(
            lambda s: connected(s) and s["reconnects"] == "1",
            RECONNECT_BOUND,
            "the page to reconnect after the restart",
        )
        reconnected_at = time.monotonic()
        assert state["diagnosis"] is None
        # A new process holds the new socket; the last close code stays shown.
        new_holder = (await tab.wait_for(lambda s: s["socketServer"] != first_holder, QUICK, "the new holder"))[
            "socketServer"
        ]
        assert re.fullmatch(r"daphne \(pid \d+\)", new_holder), new_holder
        assert state["closeCode"] == "1006"

        history = await page.evaluate("window.__wslabStatus")
        # The page's own clock for the moment the status turned "connected".
        connected_page_t = next(h["t"] for h in reversed(history) if h["text"] == "connected")
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

        # The status went closed -> connecting -> closed ... -> connected, and
        # each retry waited at least the delay the page announced for it (a
        # busy machine can only make it later).
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
            assert waited >= announced - 0.05, (delays, waits)

        # 6. The new socket echoes.
        state = await tab.send_and_expect_echo("hello again")
        assert texts(state, "info").count(f"connected to {state['wsUrl']}") == 2

        # 7. Once connected, the delay starts again from 0.5 s.
        closes_so_far = len(closes(state))
        await app_server.stop()
        state = await tab.wait_for(lambda s: len(closes(s)) > closes_so_far, QUICK, "the page to show the second stop")
        assert closes(state)[closes_so_far].retry_s == 0.5

        # The page's own assets came from the server (a missing app.js would
        # have shown as a page stuck at "connecting").
        static = {url.rsplit("/static/", 1)[1]: status for url, status in tab.responses.items() if "/static/" in url}
        assert static == {"echo/app.css": 200, "echo/app.js": 200}, static

        # No script error at any point.
        assert not tab.errors, tab.errors
