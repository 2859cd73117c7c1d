"""What every layout must show: its units under systemd, nginx valid, HTTP
through nginx served by the interface the layout claims, and the WebSocket
behaviour its definition expects, observed with a real client."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from websockets.asyncio.client import connect

from wslab.probe import run_probe

HOLD_SECONDS = 10


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the lab's own container
        return response.status, dict(response.headers), response.read()


def test_systemd_runs_as_pid_1(host):
    assert host.run("cat /proc/1/comm").stdout.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-pager").stdout


def test_app_server_units_are_enabled_and_running(host, server_units):
    for unit in server_units:
        service = host.service(unit)
        assert service.is_enabled, unit
        assert service.is_running, unit


def test_app_servers_run_unprivileged_and_restart_on_failure(host, server_units, wslab_vars):
    for unit in server_units:
        props = dict(
            line.split("=", 1)
            for line in host.check_output(f"systemctl show -p User,Restart,MainPID,NoNewPrivileges {unit}").splitlines()
        )
        assert props["User"] == wslab_vars["wslab_app_user"]
        assert props["Restart"] == "on-failure"
        assert props["NoNewPrivileges"] == "yes"
        owner = host.check_output(f"ps -o user= -p {props['MainPID']}").strip()
        assert owner == wslab_vars["wslab_app_user"], f"{unit} main process runs as {owner}"


def test_app_servers_listen_where_nginx_expects(host, layout, wslab_vars):
    site = host.file("/etc/nginx/sites-enabled/wslab").content_string
    for server in layout["servers"]:
        bind = wslab_vars["wslab_app_binds"][server]
        socket = f"unix://{bind[5:]}" if bind.startswith("unix:") else f"tcp://{bind}"
        assert host.socket(socket).is_listening, f"{server} is not listening on {bind}"
        assert f"server {bind};" in site


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


def test_healthz_through_nginx_names_the_expected_interface(site_url, layout):
    status, headers, body = _get(site_url + "healthz")
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


def test_websocket_through_nginx_behaves_as_the_layout_expects(site_url, layout):
    expected = layout["expect"]["websocket"]
    opens = expected["verdict"] == "open"
    result = run_probe(site_url, hold=HOLD_SECONDS if opens else 0.0, timeout=10.0)
    record = result.to_dict()
    assert result.verdict == expected["verdict"], record
    assert result.handshake_status == expected["handshake_status"], record
    if opens:
        assert result.echo_ok is True, record
        assert not result.closed_early, record
        assert result.held_s >= HOLD_SECONDS, record
    else:
        assert result.opened is False, record
        # Who answered the refused handshake: the app stamps every response
        # it serves with the interface and server that carried it.
        answered_by = expected.get("answered_by") or {}
        assert result.handshake_interface == answered_by.get("interface"), record
        assert result.handshake_server == answered_by.get("server"), record


async def test_broadcast_reaches_every_member_of_a_room(site_url, layout):
    if layout["expect"]["websocket"]["verdict"] != "open":
        pytest.skip("the layout does not carry WebSockets")
    origin = site_url.rstrip("/")
    url = origin.replace("http://", "ws://") + "/ws/broadcast/lab/"
    async with (
        connect(url, origin=origin, open_timeout=10, proxy=None) as first,
        connect(url, origin=origin, open_timeout=10, proxy=None) as second,
        connect(url.replace("/lab/", "/elsewhere/"), origin=origin, open_timeout=10, proxy=None) as outsider,
    ):
        welcomes = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for ws in (first, second, outsider)]
        assert [w["type"] for w in welcomes] == ["welcome"] * 3
        await first.send("hello room")
        for ws in (first, second):
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "broadcast"
            assert message["message"] == "hello room"
            assert message["from_pid"] == welcomes[0]["pid"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(outsider.recv(), 1.0)
