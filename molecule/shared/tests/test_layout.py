"""What every layout must show: its units under systemd, nginx valid, HTTP
through nginx served by the interface the layout claims, and the WebSocket
behaviour its definition expects, observed with a real client."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from wslab.layout import INSTANCE_UPSTREAM_PARAMETERS, server_binds
from wslab.probe import run_probe

# An idle socket is held for this many times nginx's read timeout: it
# survives only if the server's pings keep nginx from closing it.
HOLD_READ_TIMEOUTS = 1.5
# Bound on each request and handshake: holds on a busy machine.
TIMEOUT_S = 30.0
PROBE_SOURCE = Path(__file__).resolve().parents[3] / "wslab" / "probe.py"


def _get(url: str):
    # The lab's certificate is self-signed; test_tls.py checks it is the one on the host.
    context = ssl._create_unverified_context() if url.startswith("https:") else None  # noqa: S323
    with urllib.request.urlopen(url, timeout=TIMEOUT_S, context=context) as response:  # noqa: S310 - own container
        # response.headers matches names case-insensitively, as HTTP does
        # (uvicorn sends them lower-cased, daphne and gunicorn as written).
        return response.status, response.headers, response.read()


def test_systemd_runs_as_pid_1(host):
    assert host.run("cat /proc/1/comm").stdout.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-pager").stdout


def test_app_server_units_are_enabled_and_running(host, server_units):
    for unit in server_units:
        service = host.service(unit)
        assert service.is_enabled, unit
        assert service.is_running, unit


def test_app_servers_run_unprivileged_and_restart_on_failure(host, server_units, wslab_vars, unit_properties):
    for unit in server_units:
        props = unit_properties(unit, "User", "Restart", "MainPID", "NoNewPrivileges")
        assert props["User"] == wslab_vars["wslab_app_user"]
        assert props["Restart"] == "on-failure"
        assert props["NoNewPrivileges"] == "yes"
        owner = host.check_output(f"ps -o user= -p {props['MainPID']}").strip()
        assert owner == wslab_vars["wslab_app_user"], f"{unit} main process runs as {owner}"


def test_app_servers_listen_where_nginx_expects(host, layout, wslab_vars):
    """Each server, or each of its instances (Daphne with several processes),
    listens on the address nginx's upstream names."""
    site = host.file("/etc/nginx/sites-enabled/wslab").content_string
    for server, binds in server_binds(layout, wslab_vars["wslab_app_binds"]).items():
        for bind in binds:
            socket = f"unix://{bind[5:]}" if bind.startswith("unix:") else f"tcp://{bind}"
            assert host.socket(socket).is_listening, f"{server} is not listening on {bind}"
            line = f"server {bind};" if len(binds) == 1 else f"server {bind} {INSTANCE_UPSTREAM_PARAMETERS};"
            assert line in site, line


def test_nginx_locations_are_the_layout_routes(host, layout):
    """What nginx was told, route by route: the upstream, whether the upgrade
    headers are forwarded, and the HTTP version spoken upstream."""
    site = host.file("/etc/nginx/sites-enabled/wslab").content_string
    for route in layout["routes"]:
        block = site.split(f"location {route['path']} {{", 1)[1].split("}", 1)[0]
        assert f"proxy_pass http://{route['server']};" in block
        forwards_upgrade = "proxy_set_header Upgrade $http_upgrade;" in block
        assert forwards_upgrade is route.get("websocket", False), block
        version = route.get("http_version", "1.1" if route.get("websocket") else None)
        if version:
            assert f"proxy_http_version {version};" in block, block
        else:
            assert "proxy_http_version" not in block, block


def test_nginx_is_running_with_a_valid_config(host):
    nginx = host.service("nginx")
    assert nginx.is_enabled and nginx.is_running
    check = host.run("nginx -t")
    assert check.rc == 0, check.stderr
    assert "syntax is ok" in check.stderr


def test_env_file_is_private(host, wslab_vars):
    env_file = host.file(wslab_vars["wslab_app_env_file"])
    assert env_file.user == "root" and env_file.group == "root"
    assert env_file.mode == 0o600


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_healthz_through_nginx_names_the_expected_interface(scheme, site_url, tls_url, layout):
    status, headers, body = _get((site_url if scheme == "http" else tls_url) + "healthz")
    expected = layout["expect"]["http"]
    assert status == expected["status"]
    health = json.loads(body)
    assert health["interface"] == expected["interface"]
    assert health["server"] == expected["server"]
    assert headers["X-Wslab-Interface"] == expected["interface"]


def test_index_page_through_nginx(site_url, layout):
    status, _, body = _get(site_url)
    assert status == layout["expect"]["http"]["status"]
    assert b"/static/echo/app.js" in body


def test_static_files_are_served_by_nginx_not_django(site_url):
    status, headers, body = _get(site_url + "static/echo/app.js")
    assert status == 200
    assert headers["Server"].startswith("nginx")
    # The app stamps every response it serves; nginx served this one alone.
    assert "X-Wslab-Interface" not in headers
    assert b"WebSocket" in body


def test_websocket_through_nginx_behaves_as_the_layout_expects(
    site_url, layout, wslab_vars, assert_websocket_as_expected
):
    opens = layout["expect"]["websocket"]["verdict"] == "open"
    hold = HOLD_READ_TIMEOUTS * wslab_vars["wslab_proxy_read_timeout"] if opens else 0.0
    assert_websocket_as_expected(run_probe(site_url, hold=hold, timeout=TIMEOUT_S), hold)


def _ws_url(site_url: str, path: str) -> tuple[str, str]:
    origin = site_url.rstrip("/")
    return origin.replace("http://", "ws://", 1) + path, origin


async def _welcome(ws) -> dict:
    message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
    assert message["type"] == "welcome", message
    return message


def _needs_open_websocket(layout):
    if layout["expect"]["websocket"]["verdict"] != "open":
        pytest.skip("the layout does not carry WebSockets through nginx")


async def test_broadcast_reaches_every_member_of_a_room(site_url, layout):
    _needs_open_websocket(layout)
    url, origin = _ws_url(site_url, "/ws/broadcast/lab/")
    async with (
        connect(url, origin=origin, open_timeout=TIMEOUT_S, proxy=None) as first,
        connect(url, origin=origin, open_timeout=TIMEOUT_S, proxy=None) as second,
        connect(url.replace("/lab/", "/elsewhere/"), origin=origin, open_timeout=TIMEOUT_S, proxy=None) as outsider,
    ):
        welcomes = [await _welcome(ws) for ws in (first, second, outsider)]
        # The socket is held by the ASGI server the layout routes /ws/ to.
        assert {w["server"] for w in welcomes} == {layout["expect"]["websocket"]["server"]}
        await first.send("hello room")
        for ws in (first, second):
            message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
            assert message["type"] == "broadcast"
            assert message["message"] == "hello room"
            assert message["from_pid"] == welcomes[0]["pid"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(outsider.recv(), 1.0)


# Connections opened to find clients on two different worker processes.
_MAX_CLIENTS = 16


async def test_broadcast_crosses_worker_processes(site_url, layout):
    if not layout["expect"]["websocket"].get("cross_process"):
        pytest.skip("the layout runs one ASGI process")
    url, origin = _ws_url(site_url, "/ws/broadcast/cross/")
    async with AsyncExitStack() as stack:
        clients: dict[int, object] = {}
        for _ in range(_MAX_CLIENTS):
            ws = await stack.enter_async_context(connect(url, origin=origin, open_timeout=TIMEOUT_S, proxy=None))
            clients.setdefault((await _welcome(ws))["pid"], ws)
            if len(clients) >= 2:
                break
        # The kernel hands connections to whichever worker accepts first: two
        # distinct PIDs prove the clients really sit on different processes.
        assert len(clients) >= 2, f"all {_MAX_CLIENTS} connections landed on one worker process"
        (sender_pid, sender), (receiver_pid, receiver) = list(clients.items())[:2]
        await sender.send("across processes")
        message = json.loads(await asyncio.wait_for(receiver.recv(), TIMEOUT_S))
        assert message["message"] == "across processes"
        assert message["from_pid"] == sender_pid
        assert message["to_pid"] == receiver_pid != sender_pid


# What the server holding the socket answers a client that offers
# permessage-deflate, as browsers do: Daphne declines it; Uvicorn agrees unless
# uvicorn_ws_per_message_deflate is false (the split-uvicorn scenario sets it
# so); the sample app's UvicornWorker under Gunicorn agrees unless
# gunicorn_ws_per_message_deflate is false (the gunicorn-uvicorn scenario sets
# it so). Agreed, each socket keeps a compressor and a decompressor:
# docs/bench.md measures what that costs.
async def test_the_server_agrees_to_compression_as_configured(site_url, layout, role_vars):
    _needs_open_websocket(layout)
    server = layout["expect"]["websocket"]["server"]
    if server == "daphne":
        expected = False
    else:
        expected = role_vars(server)[f"{server}_ws_per_message_deflate"]
    url, origin = _ws_url(site_url, "/ws/echo/?welcome=1")
    async with connect(url, origin=origin, open_timeout=TIMEOUT_S, proxy=None) as ws:
        agreed = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert agreed.startswith("permessage-deflate") is expected, f"{server} agreed to {agreed!r}"
        assert (await _welcome(ws))["server"] == server
        await ws.send("through the extension, if any")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT_S) == "through the extension, if any"


def test_the_server_itself_upgrades_when_addressed_directly(host, layout, wslab_vars):
    """The failure through a broken proxy is the proxy's: inside the host, the
    same server answers the same handshake with 101."""
    direct = layout["expect"]["websocket"].get("direct")
    if not direct:
        pytest.skip("the layout states no direct expectation")
    (server,) = [name for name, spec in layout["servers"].items() if spec["interface"] == "asgi"]
    bind = wslab_vars["wslab_app_binds"][server]
    assert not bind.startswith("unix:"), "the direct check speaks TCP"
    host.run("install -d -m 0755 /opt/wslab-probe")
    subprocess.run(
        ["docker", "cp", str(PROBE_SOURCE), f"{host.backend.get_hostname()}:/opt/wslab-probe/probe.py"],
        check=True, timeout=30,
    )
    # The app's venv has the websockets library (uvicorn[standard] needs it).
    run = host.run(
        f"{wslab_vars['wslab_app_root']}/venv/bin/python /opt/wslab-probe/probe.py http://{bind}/ --json"
    )
    record = json.loads(run.stdout)
    assert record["verdict"] == direct, record
    assert record["handshake_status"] == 101, record


def test_channel_layer_redis_listens_on_loopback_only(host, layout, wslab_vars):
    if layout.get("channel_layer") != "redis":
        pytest.skip("the layout uses the in-memory channel layer")
    redis = host.service("redis-server")
    assert redis.is_enabled and redis.is_running
    port = wslab_vars["wslab_redis_port"]
    listening = {str(s) for s in host.socket.get_listening_sockets() if str(s).endswith(f":{port}")}
    assert listening, f"redis-server listens on no port {port}"
    assert listening <= {f"tcp://127.0.0.1:{port}", f"tcp://::1:{port}"}, listening
