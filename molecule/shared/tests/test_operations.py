"""What keeps a WebSocket open and what kills it, under what operators do.

Each test acts on the real container (systemctl, kill, nginx reload) and
watches real sockets through nginx. Tests that need the layout to carry
WebSockets skip elsewhere, saying so. What a server does on restart and how
fast clients get back in is recorded in build/findings/operations-<suite>-<layout>.json
(wslab.findings); `make runbook` renders it into docs/runbook.md
(#restart-or-redeploy-the-app-servers, #verdict-closed-idle).
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.error
import urllib.request
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from wslab import findings
from wslab.layout import unit_file
from wslab.probe import probe, run_probe

pytestmark = pytest.mark.operations

# Pass/fail bounds on time hold with every scenario of `make test` running at
# once on two cores: they tell "recovered" from "did not", not how fast. How
# fast (about a second or two on an idle machine) is recorded in
# build/findings/ for docs/runbook.md and the benchmark, never asserted.
# A server must take new connections this soon after a restart or a crash.
RECONNECT_WITHIN_S = 30.0
# Sockets held open across an nginx reload.
RELOAD_SOCKETS = 100
# Upper bounds that keep every loop here finite.
OPEN_TIMEOUT_S = 30.0
CLOSE_WAIT_S = 45.0
RECOVERY_WAIT_S = 45.0
# The per-client WebSocket limit lowered to this for the length of a test.
LIMIT_UNDER_TEST = 5
# A WebSocket handshake from inside the host (127.0.0.1, another client
# address than the tests' own): prints the status nginx answered.
_HANDSHAKE_FROM_THE_HOST = """python3 -c '
import http.client
connection = http.client.HTTPConnection("127.0.0.1", 80, timeout=30)
connection.request("GET", "/ws/echo/", headers={
    "Origin": "http://127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"})
print(connection.getresponse().status)
'"""
# How each server's command line (or environment) sets its ping interval,
# and a value that switches pings off for the length of a test.
PING_SETTINGS = {
    "daphne": (r"--ping-interval [0-9.]*", "--ping-interval 3600"),
    "uvicorn": (r"--ws-ping-interval [0-9.]*", "--ws-ping-interval 0"),
    "gunicorn": (r"UVICORN_WS_PING_INTERVAL=[0-9.]*", "UVICORN_WS_PING_INTERVAL=3600"),
}


def _ws_server(layout) -> str:
    expected = layout["expect"]["websocket"]
    if expected["verdict"] != "open":
        pytest.skip("the layout does not carry WebSockets through nginx")
    return expected["server"]


def _urls(site_url: str, path: str = "/ws/echo/") -> tuple[str, str]:
    origin = site_url.rstrip("/")
    return origin.replace("http://", "ws://", 1) + path, origin


def _record_finding(layout_name: str, key: str, value) -> None:
    """Adds one observed fact to the layout's operations findings (wslab.findings)."""
    findings.record("operations", layout_name, key, value)


def _healthy(site_url: str) -> bool:
    try:
        with urllib.request.urlopen(site_url + "healthz", timeout=2) as response:  # noqa: S310 - own container
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_ready(site_url: str, layout) -> None:
    """Until HTTP answers and, where the layout carries them, a WebSocket echoes.

    The units report "active" as soon as the server process is started, before
    it listens (Daphne cannot tell systemd when it is ready), and in the split
    layouts HTTP and WebSockets are served by different units.
    """
    deadline = time.monotonic() + RECOVERY_WAIT_S
    while not _healthy(site_url):
        assert time.monotonic() < deadline, f"the site did not recover within {RECOVERY_WAIT_S}s"
        time.sleep(0.2)
    if layout["expect"]["websocket"]["verdict"] == "open":
        asyncio.run(_seconds_until_a_socket_opens(site_url, time.monotonic()))


async def _seconds_until_a_socket_opens(site_url: str, since: float) -> float:
    """Time from `since` until a new WebSocket through nginx opens and echoes."""
    url, origin = _urls(site_url)
    deadline = since + RECOVERY_WAIT_S
    while time.monotonic() < deadline:
        try:
            async with connect(url, origin=origin, open_timeout=2, proxy=None, ping_interval=None) as ws:
                await ws.send("back")
                if await asyncio.wait_for(ws.recv(), 2) == "back":
                    return time.monotonic() - since
        except (OSError, TimeoutError, Exception):  # noqa: BLE001 - any failure means "not yet"
            pass
        await asyncio.sleep(0.1)
    pytest.fail(f"no WebSocket opened within {RECOVERY_WAIT_S}s")


async def _open_echo_sockets(stack: AsyncExitStack, site_url: str, count: int) -> list:
    url, origin = _urls(site_url)
    limit = asyncio.Semaphore(50)

    async def one(index: int):
        async with limit:
            ws = await stack.enter_async_context(
                connect(url, origin=origin, open_timeout=OPEN_TIMEOUT_S, proxy=None, ping_interval=None)
            )
            await ws.send(f"hello {index}")
            assert await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT_S) == f"hello {index}"
            return ws

    return await asyncio.gather(*(one(i) for i in range(count)))


def test_a_foreign_origin_is_refused_and_the_sites_own_accepted(site_url, layout):
    _ws_server(layout)
    foreign = run_probe(site_url, origin="http://attacker.example", timeout=OPEN_TIMEOUT_S)
    assert foreign.verdict == "origin-rejected", foreign.to_dict()
    assert foreign.handshake_status == 403
    own = run_probe(site_url, timeout=OPEN_TIMEOUT_S)
    assert own.verdict == "open", own.to_dict()
    assert own.handshake_status == 101


def _timespan_s(text: str) -> float:
    """systemd's "1min 30s" / "15s" / "500ms" in seconds (inf for "infinity")."""
    if text == "infinity":
        return float("inf")
    units = {"min": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(min|ms|s)", text))


def test_app_units_stop_within_a_bounded_time(server_units, unit_properties):
    for unit in server_units:
        timeout = unit_properties(unit, "TimeoutStopUSec")["TimeoutStopUSec"]
        assert 0 < _timespan_s(timeout) <= 30, f"{unit} may take {timeout} to stop"


def test_a_stopped_app_server_is_reported_as_server_down(host, site_url, server_units, layout):
    try:
        host.run(f"systemctl stop {' '.join(server_units)}")
        result = run_probe(site_url, timeout=OPEN_TIMEOUT_S)
        assert result.verdict == "server-down", result.to_dict()
        assert result.handshake_status == 502
        assert result.http_status == 502
    finally:
        host.run(f"systemctl start {' '.join(server_units)}")
        _wait_ready(site_url, layout)


async def test_open_sockets_survive_an_nginx_reload(host, site_url, layout):
    _ws_server(layout)
    workers_before = set(host.check_output("pgrep -f 'nginx: worker process'").split())
    async with AsyncExitStack() as stack:
        sockets = await _open_echo_sockets(stack, site_url, RELOAD_SOCKETS)
        assert host.run("systemctl reload nginx").rc == 0
        # New workers take new connections; the old ones keep the open sockets.
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        while set(host.check_output("pgrep -f 'nginx: worker process'").split()) <= workers_before:
            assert time.monotonic() < deadline, "nginx started no new workers after the reload"
            await asyncio.sleep(0.2)
        for index, ws in enumerate(sockets):
            await ws.send(f"after reload {index}")
            assert await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT_S) == f"after reload {index}"
        assert await _seconds_until_a_socket_opens(site_url, time.monotonic()) < RECONNECT_WITHIN_S


async def test_a_client_over_its_websocket_limit_gets_429_and_other_clients_do_not(
    host, site_url, layout, inventory_vars, role_vars
):
    _ws_server(layout)
    # The inventory's limit is the one in force...
    wanted = inventory_vars["nginx_websocket_connections_per_client"]
    directive = re.compile(r"^(\s*limit_conn\s+\S+\s+)(\d+)(\s*;)", re.MULTILINE)
    site = f"/etc/nginx/sites-available/{role_vars('nginx')['nginx_site_name']}"
    original = host.file(site).content_string
    assert {match[2] for match in directive.finditer(original)} == {str(wanted)}, original
    # ...and, lowered in the deployed site for this test, turns the client
    # away at it, with 429, while another address still gets in.
    lowered = directive.sub(rf"\g<1>{LIMIT_UNDER_TEST}\g<3>", original)
    workers_before = set(host.check_output("pgrep -f 'nginx: worker process'").split())
    try:
        _write_and_reload(host, site, lowered)
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        # Only new workers, with the lowered limit, take new connections: the
        # old ones have exited or say they are shutting down (no longer accepting).
        while set(host.check_output("pgrep -f 'nginx: worker process$'").split()) & workers_before:
            assert time.monotonic() < deadline, "nginx's old workers still accept after the reload"
            await asyncio.sleep(0.2)
        async with AsyncExitStack() as stack:
            await _open_echo_sockets(stack, site_url, LIMIT_UNDER_TEST)
            url, origin = _urls(site_url)
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url, origin=origin, open_timeout=OPEN_TIMEOUT_S, proxy=None, ping_interval=None):
                    pass
            assert refused.value.response.status_code == 429
            assert host.check_output(_HANDSHAKE_FROM_THE_HOST).strip() == "101"
    finally:
        _write_and_reload(host, site, original)


def _write_and_reload(host, path: str, content: str) -> None:
    """Replace the file at PATH on the host, check nginx's config and reload it."""
    written = host.run(f"cat > {path} <<'WSLAB_EOF'\n{content}WSLAB_EOF\nnginx -t -q && systemctl reload nginx")
    assert written.rc == 0, written.stderr


async def test_restarting_the_server_closes_sockets_with_a_code_and_clients_get_back_in(
    host, site_url, layout, layout_name, units_of
):
    server = _ws_server(layout)
    # Every process of the server at once (each instance, for several).
    unit = " ".join(units_of[server])
    async with AsyncExitStack() as stack:
        sockets = await _open_echo_sockets(stack, site_url, 5)
        started = time.monotonic()
        assert host.run(f"systemctl restart {unit}").rc == 0
        restart_s = time.monotonic() - started
        for ws in sockets:
            await asyncio.wait_for(ws.wait_closed(), CLOSE_WAIT_S)
        codes = sorted({ws.close_code for ws in sockets})
        reasons = sorted({ws.close_reason for ws in sockets})
    reconnect_s = await _seconds_until_a_socket_opens(site_url, started)
    _record_finding(layout_name, "restart", {
        "server": server, "close_codes": codes, "close_reasons": reasons,
        "systemctl_restart_s": round(restart_s, 2), "reconnect_after_restart_began_s": round(reconnect_s, 2),
    })
    assert reconnect_s - restart_s < RECONNECT_WITHIN_S, f"new connections took {reconnect_s:.1f}s"
    expected = layout["expect"]["websocket"].get("restart_close_code")
    assert codes == [expected], f"{server} closed sockets with {codes} ({reasons}) on restart"


async def test_a_killed_server_is_restarted_by_systemd(
    host, site_url, layout, layout_name, unit_properties, units_of
):
    server = _ws_server(layout)
    # One process: the service's, or the first instance's.
    unit = units_of[server][0]
    before = unit_properties(unit, "MainPID", "NRestarts")
    killed = time.monotonic()
    assert host.run(f"kill -9 {before['MainPID']}").rc == 0
    # Until systemd has a new main process running: a supervisor's orphaned
    # workers may still answer for a moment, but they are not the recovery.
    deadline = killed + RECOVERY_WAIT_S
    while True:
        after = unit_properties(unit, "MainPID", "NRestarts", "ActiveState")
        if after["ActiveState"] == "active" and after["MainPID"] not in ("0", before["MainPID"]):
            break
        assert time.monotonic() < deadline, f"{unit} is {after} {RECOVERY_WAIT_S}s after kill -9"
        await asyncio.sleep(0.1)
    reconnect_s = await _seconds_until_a_socket_opens(site_url, killed)
    _record_finding(layout_name, "kill_9", {"server": server, "reconnect_s": round(reconnect_s, 2)})
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert reconnect_s < RECONNECT_WITHIN_S, f"new connections took {reconnect_s:.1f}s after kill -9"


@asynccontextmanager
async def _server_pings_off(host, site_url, server: str, units: list[str]):
    """Rewrites the unit's ping setting for the length of a test (the template
    of the instances, for several), then restores it."""
    units_file = unit_file(units[0])
    restart = f"systemctl daemon-reload && systemctl restart {' '.join(units)}"
    pattern, replacement = PING_SETTINGS[server]
    assert host.run(f"cp -p {units_file} {units_file}.wslab-test").rc == 0
    try:
        host.check_output(f"sed -E -i 's/{pattern}/{replacement}/' {units_file}")
        assert replacement in host.file(units_file).content_string
        host.check_output(restart)
        await _seconds_until_a_socket_opens(site_url, time.monotonic())
        yield
    finally:
        host.run(f"mv {units_file}.wslab-test {units_file}")
        host.run(restart)
        await _seconds_until_a_socket_opens(site_url, time.monotonic())


async def test_without_server_pings_nginx_closes_an_idle_socket_at_its_read_timeout(
    host, site_url, layout, layout_name, wslab_vars, units_of
):
    server = _ws_server(layout)
    read_timeout = wslab_vars["wslab_proxy_read_timeout"]
    async with _server_pings_off(host, site_url, server, units_of[server]):
        result = await probe(site_url, hold=3 * read_timeout, timeout=OPEN_TIMEOUT_S)
    record = result.to_dict()
    _record_finding(layout_name, "idle_without_pings", {
        "server": server, "read_timeout_s": read_timeout, "closed_after_s": round(result.held_s, 2),
        "close_code": result.close_code,
    })
    assert result.verdict == "closed-idle", record
    # nginx drops the TCP connection; no close frame reaches the client.
    assert result.close_code == 1006, record
    # Not before the read timeout; after it, by nginx's timer, well before a
    # second one would have passed (however late a busy machine delivers it).
    assert read_timeout - 0.5 <= result.held_s < 2 * read_timeout, record
