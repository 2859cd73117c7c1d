"""The echo page in a real browser, through nginx, as a user of the layout sees it.

Headless Chromium (wslab.browser) loads the page from the scenario's nginx,
over http:// and https://, and reads what the page says: the layout, which
server served the page and which holds the socket (they differ in the split
layouts), the last close code and the reconnect count. Where the layout
carries WebSockets the page must connect and echo, and show an app server's
stop and start (close code, "server-down", one reconnect); where it does not,
the page must say why, in the probe's own verdict word.

One Chromium serves every test of the module (a launch costs about 2 s of
CPU); each test opens the page in a browser context of its own. The page and
the browser are the same on both Debian suites, and the server side of what
the page shows (the verdict, the echo, the servers' stamps) is proven on both
by test_layout.py: these tests are marked `browser` and run on Debian 12 only
(WSLAB_VERIFY=verdicts leaves them out).
"""

from __future__ import annotations

import re

import pytest
import pytest_asyncio

from wslab.browser import chromium, closes, connected, open_echo_page

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# Bound on each wait for a page state: it holds with every scenario of
# `make test` running at once; a passing run waits only as long as the page takes.
QUICK_S = 30.0
# app.js retries after at most 10 s; a server back up is reached within that
# plus a handshake's bound.
RECONNECT_S = 10.0 + QUICK_S
# A close as the page logs it.


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    async with chromium() as launched:
        yield launched


def _holder(layout) -> str:
    return layout["expect"]["websocket"]["server"]


def _socket_held(layout):
    """The page is connected, and the welcome named the server holding its socket."""
    holder = re.compile(rf"{re.escape(_holder(layout))} \(pid \d+\)")
    return lambda s: connected(s) and holder.fullmatch(s["socketServer"]) is not None


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_the_page_says_what_it_is_connected_to(browser, scheme, site_url, tls_url, layout, layout_name):
    url = site_url if scheme == "http" else tls_url
    expected = layout["expect"]
    async with open_echo_page(browser, url) as tab:
        if expected["websocket"]["verdict"] == "open":
            state = await tab.wait_for(_socket_held(layout), QUICK_S, "the page to connect")
            assert state["wsUrl"].startswith("wss://" if scheme == "https" else "ws://"), state["wsUrl"]
            assert (state["closeCode"], state["reconnects"], state["diagnosis"]) == ("none yet", "0", None)
            await tab.send_and_expect_echo(f"hello over {scheme}")
        else:
            # The handshake fails; the page asks who answers at the socket's
            # URL and says why, as the probe would.
            state = await tab.wait_for(lambda s: s["verdict"] is not None, QUICK_S, "the page to say why")
            assert state["verdict"] == expected["websocket"]["verdict"], state["diagnosis"]
            assert expected["websocket"]["answered_by"]["server"] in state["diagnosis"], state["diagnosis"]
            # Every attempt closed with 1006 (the page keeps retrying, so
            # the status may read "connecting" by now); nothing can be sent.
            assert 1006 in {closed.code for closed in closes(state)}, state["log"]
            assert state["closeCode"] == "1006" and state["inputDisabled"] is True
            assert (state["socketServer"], state["reconnects"]) == ("none yet", "0")
        assert (state["layout"], state["pageServer"]) == (layout_name, expected["http"]["server"])
        assert not tab.errors, tab.errors


@pytest.mark.operations
async def test_the_page_shows_a_stop_and_reconnects_after_the_start(browser, host, site_url, layout, units_of):
    expected = layout["expect"]["websocket"]
    if expected["verdict"] != "open":
        pytest.skip(f"the layout carries no WebSockets (verdict {expected['verdict']})")
    # Every process of the server (each instance of Daphne's, for several).
    unit = " ".join(units_of[_holder(layout)])
    async with open_echo_page(browser, site_url) as tab:
        first = await tab.wait_for(_socket_held(layout), QUICK_S, "the page to connect")
        try:
            assert host.run(f"systemctl stop {unit}").rc == 0
            # The socket closed with the server's own code, and the page's next
            # attempt found nothing behind nginx.
            state = await tab.wait_for(
                lambda s: s["verdict"] is not None, QUICK_S, "the page to say the server is down"
            )
            # The first close is the server's own; the page's retries since
            # then failed to connect at all (1006), the last one it shows.
            codes = [closed.code for closed in closes(state)]
            assert codes[0] == expected["restart_close_code"], codes
            assert state["closeCode"] == str(codes[-1]), state
            assert state["verdict"] == "server-down", state["diagnosis"]
            assert (state["reconnects"], state["socketServer"]) == ("0", "none")
        finally:
            assert host.run(f"systemctl start {unit}").rc == 0
        state = await tab.wait_for(
            lambda s: _socket_held(layout)(s) and s["reconnects"] == "1", RECONNECT_S, "the page to reconnect"
        )
        assert state["diagnosis"] is None
        # A new process holds the socket now.
        assert state["socketServer"] != first["socketServer"], state["socketServer"]
        await tab.send_and_expect_echo("hello after the start")
        assert not tab.errors, tab.errors
