"""Capacity: the limits the roles derive from wslab_max_connections (or the
inventory sets) are the ones in force, a thousand WebSockets go through nginx
at once, through the scenario's published port, and each still echoes after
three of nginx's read timeouts; the published port still answers afterwards;
and with Debian's stock worker_connections (768) nginx turns sockets away long
before that, saying so in its error log.

Not wslab_max_connections (4,096) yet: with the lab's scaled-down timeouts
(pings every 2 s, a 10 s read timeout) Daphne's one process, sharing two
cores with every other scenario, fell behind on 2,048 pings a second, and
nginx closed 942 of 4,096 idle sockets during the hold (1006). Alone on the
machine all three servers held 4,096 (README, Capacity).

What was measured (time to open, CPU, how the sockets spread over nginx's
workers, what a refused client got) is printed to the test output and kept in
build/findings/capacity-<suite>-<layout>.json.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import resource
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from wslab import findings
from wslab.probe import handshake_failure, probe


# The load test: this many sockets at once, opened this many at a time, each
# echoing once after it opens and once after the hold, which lasts this many
# of nginx's read timeouts (only the servers' pings keep an idle socket open).
# Timeouts are bounds that hold with every scenario running at once on two
# cores; what the run took is reported in build/findings/, not asserted.
SOCKETS = 1_000
# 50 in flight: Daphne's one process accepts a few dozen a second with every
# scenario running at once, and a deeper queue only makes each handshake
# wait longer (the bench measures bursts: docs/bench.md).
OPEN_CONCURRENCY = 50
HOLD_READ_TIMEOUTS = 3
OPEN_TIMEOUT_S = 30.0
ECHO_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 5.0
# No phase of the load test may take longer than this (Daphne, one process,
# opens a few hundred a second on an idle machine).
PHASE_TIMEOUT_S = 600.0

# The negative control: Debian's stock worker_connections, and how far the
# test pushes it. Refusals must start well below wslab_max_connections.
STOCK_WORKER_CONNECTIONS = 768
CONTROL_MAX_ATTEMPTS = 2_000
CONTROL_MAX_SECONDS = 180.0
# Attempts refused in a row before the control looks at how full each worker
# is. A refusal means one worker is full, not all of them: the kernel hands
# each new connection to any worker, so a half-full one still accepts some
# (even after 20 refusals in a row, once one worker held 381 sockets and the
# other 209, and the probe reached the emptier one and opened). The control
# stops only when every worker holds FULL_WORKER_SOCKETS, counted with ss: the
# state the probe must then see.
CONTROL_REFUSALS_IN_A_ROW = 20
FULL_WORKER_SOCKETS = STOCK_WORKER_CONNECTIONS // 2 - 16
NGINX_CONF = "/etc/nginx/nginx.conf"
NGINX_CONF_SAVED = "/run/wslab-capacity-test-nginx.conf"
ERROR_LOG = "/var/log/nginx/error.log"
NOT_ENOUGH = "worker_connections are not enough"


# ------------------------------------------------------------------ helpers


def _limits(role_vars, servers) -> dict[str, int]:
    """The limits in force: the inventory's, else what the roles derive from wslab_max_connections."""
    nginx = role_vars("nginx")
    limits = {name: int(nginx[name]) for name in ("nginx_worker_connections", "nginx_limit_nofile")}
    for server in servers:
        limits[f"{server}_limit_nofile"] = int(role_vars(server)[f"{server}_limit_nofile"])
    return limits


def _max_open_files(host, pid: int) -> tuple[int, int]:
    """(soft, hard) 'Max open files' of a process in the container."""
    line = next(
        line for line in host.check_output(f"cat /proc/{pid}/limits").splitlines()
        if line.startswith("Max open files")
    )
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


def _nginx_pids(host) -> tuple[int, list[int]]:
    master = int(host.check_output("cat /run/nginx.pid").strip())
    workers = [int(pid) for pid in host.run(f"pgrep -P {master}").stdout.split()]
    return master, workers


def _nginx_worker_connections(host) -> list[int]:
    dump = host.check_output("nginx -T 2>/dev/null")
    return [int(n) for n in re.findall(r"^\s*worker_connections\s+(\d+)\s*;", dump, re.MULTILINE)]


def _sockets_per_worker(host) -> dict[int, int]:
    """Established client connections on port 80, by the nginx worker holding them.

    As www-data: root in the container lacks CAP_SYS_PTRACE, so its ss -p cannot
    see another user's sockets; the workers' own user can."""
    out = host.run(
        "setpriv --reuid=www-data --regid=www-data --clear-groups ss -Htnp state established '( sport = :80 )'"
    ).stdout
    return dict(collections.Counter(int(pid) for pid in re.findall(r'"nginx",pid=(\d+)', out)))


def _container_cpu_s(host) -> float | None:
    """CPU seconds the container's cgroup has used (cgroup v1 or v2), read on the docker host."""
    cid = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", host.backend.get_hostname()],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()
    v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
    if v1.exists():
        return int(v1.read_text()) / 1e9
    for v2 in (Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"),
               Path(f"/sys/fs/cgroup/docker/{cid}/cpu.stat")):
        if v2.exists():
            usage = dict(line.split() for line in v2.read_text().splitlines())
            return int(usage["usage_usec"]) / 1e6
    return None


def _raise_nofile(needed: int) -> tuple[int, int]:
    """Raise this process's open-file limit up to its hard limit; returns the new (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _ws_url(site_url: str) -> tuple[str, str]:
    origin = site_url.rstrip("/")
    return origin.replace("http://", "ws://", 1) + "/ws/echo/", origin


def _report(capsys, layout_name: str, key: str, value) -> None:
    """Print a measurement past pytest's capture and keep it in the capacity findings (wslab.findings)."""
    with capsys.disabled():
        print(f"\n[capacity {layout_name}] {key}: {json.dumps(value, sort_keys=True)}")
    findings.record("capacity", layout_name, key, value)


# One layout per ASGI server: the split and proxy-http10 layouts put the same
# servers behind the same nginx, so proving the sockets once per server keeps
# the scenario matrix inside its time budget.
CAPACITY_LAYOUTS = {"daphne", "uvicorn", "gunicorn-uvicorn"}
# nginx's stock worker_connections runs out in nginx, whichever server holds the
# sockets behind it: shown once, in front of Daphne.
STOCK_LIMIT_LAYOUTS = {"daphne"}


def _needs_open_websocket(layout, layout_name):
    if layout["expect"]["websocket"]["verdict"] != "open":
        pytest.skip("the layout does not carry WebSockets through nginx")
    if layout_name not in CAPACITY_LAYOUTS:
        pytest.skip(f"capacity is proven on {sorted(CAPACITY_LAYOUTS)}, which run the same servers")


async def _close_all(sockets, semaphore) -> None:
    async def close(ws):
        async with semaphore:
            await ws.close()

    await asyncio.wait_for(asyncio.gather(*(close(ws) for ws in sockets), return_exceptions=True), PHASE_TIMEOUT_S)


# ------------------------------------------------------------------ limits


def test_nginx_limits_are_the_ones_in_force(host, wslab_vars, role_vars, layout, capsys, layout_name):
    limits = _limits(role_vars, layout["servers"])
    assert _nginx_worker_connections(host) == [limits["nginx_worker_connections"]]
    assert host.check_output("systemctl show -p LimitNOFILE --value nginx").strip() == str(limits["nginx_limit_nofile"])
    dropins = host.check_output("systemctl show -p DropInPaths --value nginx")
    assert "/etc/systemd/system/nginx.service.d/wslab-limits.conf" in dropins
    master, workers = _nginx_pids(host)
    assert workers, "nginx runs no worker process"
    seen = {}
    for pid in [master, *workers]:
        soft, hard = _max_open_files(host, pid)
        seen[pid] = [soft, hard]
        # What each process can really open, not only what was asked for.
        assert soft >= limits["nginx_limit_nofile"], f"nginx pid {pid}: Max open files {soft} (soft)"
        assert hard >= limits["nginx_limit_nofile"], f"nginx pid {pid}: Max open files {hard} (hard)"
    _report(capsys, layout_name, "nginx_limits", {
        "wslab_max_connections": int(wslab_vars["wslab_max_connections"]),
        "worker_connections": limits["nginx_worker_connections"],
        "limit_nofile": limits["nginx_limit_nofile"],
        "workers": len(workers),
        "max_open_files_by_pid": seen,
    })


def test_app_units_limits_are_the_ones_in_force(host, layout, role_vars, units_of):
    limits = _limits(role_vars, layout["servers"])
    for server, unit in ((server, unit) for server, units in units_of.items() for unit in units):
        wanted = limits[f"{server}_limit_nofile"]
        assert host.check_output(f"systemctl show -p LimitNOFILE --value {unit}").strip() == str(wanted), unit
        main = int(host.check_output(f"systemctl show -p MainPID --value {unit}").strip())
        # The main process and its workers (Uvicorn's and Gunicorn's) alike.
        for pid in [main, *(int(p) for p in host.run(f"pgrep -P {main}").stdout.split())]:
            assert min(_max_open_files(host, pid)) >= wanted, f"{unit} pid {pid}"


# ------------------------------------------------------------------ load


@pytest.mark.load
async def test_a_thousand_websockets_through_nginx_held_and_echoing(
    host, site_url, layout, layout_name, wslab_vars, capsys
):
    _needs_open_websocket(layout, layout_name)
    hold_s = HOLD_READ_TIMEOUTS * float(wslab_vars["wslab_proxy_read_timeout"])
    count = SOCKETS
    soft, hard = _raise_nofile(count + 256)
    assert soft >= count + 64, f"the test process may open only {soft} files (hard limit {hard})"
    url, origin = _ws_url(site_url)
    token = uuid.uuid4().hex[:12]
    semaphore = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_and_echo(index: int):
        async with semaphore:
            ws = await connect(
                url, origin=origin, open_timeout=OPEN_TIMEOUT_S, close_timeout=CLOSE_TIMEOUT_S,
                ping_interval=None, proxy=None,
            )
            try:
                message = f"{token}-{index}-start"
                await ws.send(message)
                echoed = await asyncio.wait_for(ws.recv(), ECHO_TIMEOUT_S)
                assert echoed == message, f"socket {index} echoed {echoed!r}, sent {message!r}"
            except BaseException:
                await ws.close()
                raise
            return ws

    async def echo_again(index: int, ws) -> None:
        async with semaphore:
            message = f"{token}-{index}-end"
            await ws.send(message)
            echoed = await asyncio.wait_for(ws.recv(), ECHO_TIMEOUT_S)
            assert echoed == message, f"socket {index} echoed {echoed!r}, sent {message!r}"

    cpu_client, cpu_container = time.process_time(), _container_cpu_s(host)
    started = time.monotonic()
    results = await asyncio.wait_for(
        asyncio.gather(*(open_and_echo(i) for i in range(count)), return_exceptions=True), PHASE_TIMEOUT_S
    )
    open_s = time.monotonic() - started
    sockets = {i: ws for i, ws in enumerate(results) if not isinstance(ws, BaseException)}
    try:
        failures = collections.Counter(
            f"{type(r).__name__}: {r}"[:160] for r in results if isinstance(r, BaseException)
        )
        spread = sorted(_sockets_per_worker(host).values(), reverse=True)
        _report(capsys, layout_name, "load_open", {
            "sockets": count, "opened_and_echoed": len(sockets), "open_s": round(open_s, 2),
            "concurrency": OPEN_CONCURRENCY, "sockets_per_nginx_worker": spread, "failures": dict(failures),
        })
        assert len(sockets) == count, f"{count - len(sockets)} sockets failed to open or echo: {dict(failures)}"

        await asyncio.sleep(hold_s)
        closed = collections.Counter(ws.close_code for ws in sockets.values() if ws.close_code is not None)
        assert not closed, f"{sum(closed.values())} sockets were closed during the {hold_s} s hold (codes {dict(closed)})"
        again = await asyncio.wait_for(
            asyncio.gather(*(echo_again(i, ws) for i, ws in sockets.items()), return_exceptions=True),
            PHASE_TIMEOUT_S,
        )
        late = collections.Counter(f"{type(r).__name__}: {r}"[:160] for r in again if isinstance(r, BaseException))
        assert not late, f"after {hold_s} s, {sum(late.values())} sockets did not echo: {dict(late)}"
    finally:
        await _close_all(sockets.values(), semaphore)
    cpu_after = _container_cpu_s(host)
    _report(capsys, layout_name, "load_done", {
        "held_s": hold_s, "echoed_at_end": len(sockets), "total_s": round(time.monotonic() - started, 1),
        "client_cpu_s": round(time.process_time() - cpu_client, 2),
        "container_cpu_s": round(cpu_after - cpu_container, 2) if cpu_after is not None else None,
        "closed": [ws.close_code for ws in sockets.values()].count(1000),
    })
    # The published port (the engine's NAT, no docker-proxy) still answers.
    after = (await probe(site_url, timeout=ECHO_TIMEOUT_S)).to_dict()
    assert (after["verdict"], after["handshake_status"]) == ("open", 101), after


# ------------------------------------------------------------------ negative control


def _wait_for_new_workers(host, old: list[int], timeout: float = 60.0) -> list[int]:
    """After a reload: the new workers, once the old ones are gone (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        _, workers = _nginx_pids(host)
        fresh = [pid for pid in workers if pid not in old]
        if fresh and (len(fresh) == len(workers) or time.monotonic() > deadline):
            return fresh
        if time.monotonic() > deadline:
            pytest.fail(f"nginx started no new worker within {timeout} s of a reload")
        time.sleep(0.2)


@pytest.fixture
def stock_worker_connections(host, layout, layout_name):
    """nginx with Debian's stock worker_connections (768) and no worker_rlimit_nofile,
    for one test; the managed nginx.conf is put back and reloaded afterwards. The
    drop-in's LimitNOFILE stays (changing it takes a restart), so the workers can open
    far more files than 768: worker_connections alone is what runs out."""
    _needs_open_websocket(layout, layout_name)
    if layout_name not in STOCK_LIMIT_LAYOUTS:
        pytest.skip(f"nginx's stock limit is shown on {sorted(STOCK_LIMIT_LAYOUTS)}: it runs out in nginx, "
                    "whichever server is behind it")
    managed = host.check_output(f"sha256sum {NGINX_CONF}").split()[0]
    host.check_output(f"cp -p {NGINX_CONF} {NGINX_CONF_SAVED}")
    _, old = _nginx_pids(host)
    log_offset = int(host.check_output(f"stat -c %s {ERROR_LOG}").strip())
    try:
        edit = (
            f"sed -i -e 's/^\\(\\s*worker_connections\\s\\+\\)[0-9]\\+;/\\1{STOCK_WORKER_CONNECTIONS};/'"
            f" -e '/^worker_rlimit_nofile /d' {NGINX_CONF}"
        )
        host.check_output(edit)
        host.check_output("nginx -t -q && systemctl reload nginx")
        workers = _wait_for_new_workers(host, old)
        assert _nginx_worker_connections(host) == [STOCK_WORKER_CONNECTIONS]
        yield {"workers": workers, "log_offset": log_offset}
    finally:
        _, during = _nginx_pids(host)
        host.check_output(f"cp -p {NGINX_CONF_SAVED} {NGINX_CONF} && rm -f {NGINX_CONF_SAVED}")
        host.check_output("nginx -t -q && systemctl reload nginx")
        _wait_for_new_workers(host, during)
        assert host.check_output(f"sha256sum {NGINX_CONF}").split()[0] == managed
        assert STOCK_WORKER_CONNECTIONS not in _nginx_worker_connections(host)


def _refusal(exc: BaseException) -> str:
    """What the client got instead of a WebSocket, in a few words."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        body = re.sub(r"\s+", " ", response.body.decode(errors="replace"))[:60] if response.body else ""
        return (f"HTTP {response.status_code} {response.reason_phrase}"
                f" (Server: {response.headers.get('Server')}, X-Wslab-Server: {response.headers.get('X-Wslab-Server')},"
                f" body {body!r})")
    cause = exc.__cause__ if isinstance(exc, InvalidMessage) else None
    detail = f"{type(cause).__name__}: {cause}" if cause else f"{type(exc).__name__}: {exc}"
    return f"no response ({detail}; probe: {handshake_failure(exc)})"


@pytest.mark.load
async def test_debians_stock_worker_connections_refuse_websockets_early(
    host, site_url, layout, layout_name, stock_worker_connections, wslab_vars, capsys
):
    _needs_open_websocket(layout, layout_name)
    _raise_nofile(CONTROL_MAX_ATTEMPTS + 256)
    url, origin = _ws_url(site_url)
    opened: list = []
    refusals: list[tuple[int, str]] = []
    in_a_row = 0
    probe_record = None
    started = time.monotonic()
    try:
        # One at a time, so the count at the first refusal is exact.
        every_worker_full = False
        for attempt in range(CONTROL_MAX_ATTEMPTS):
            if in_a_row >= CONTROL_REFUSALS_IN_A_ROW:
                held = _sockets_per_worker(host)
                every_worker_full = all(held.get(pid, 0) >= FULL_WORKER_SOCKETS
                                        for pid in stock_worker_connections["workers"])
                if every_worker_full:
                    break
                in_a_row = 0  # a worker still has room: go on until it is full too
            if time.monotonic() - started > CONTROL_MAX_SECONDS:
                break
            try:
                opened.append(await connect(url, origin=origin, open_timeout=OPEN_TIMEOUT_S, close_timeout=2,
                                            ping_interval=None, proxy=None))
                in_a_row = 0
            except (InvalidStatus, InvalidMessage, OSError, TimeoutError) as exc:
                refusals.append((len(opened), _refusal(exc)))
                in_a_row += 1
        spread = sorted(_sockets_per_worker(host).values(), reverse=True)
        if every_worker_full:
            # What the lab's probe reports for a site in this state.
            probe_record = (await probe(site_url, timeout=5.0)).to_dict()
    finally:
        semaphore = asyncio.Semaphore(OPEN_CONCURRENCY)
        await _close_all(opened, semaphore)
    elapsed = time.monotonic() - started
    log = host.check_output(f"tail -c +{stock_worker_connections['log_offset'] + 1} {ERROR_LOG}")
    alerts = [line for line in log.splitlines() if NOT_ENOUGH in line]
    kinds = collections.Counter(re.sub(r"^.*?\d+#\d+: (\*\d+ )?", "", line)[:120] for line in alerts)
    first = refusals[0][0] if refusals else None
    _report(capsys, layout_name, "stock_768", {
        "nginx_workers": len(stock_worker_connections["workers"]),
        "open_when_refusals_began": first,
        "attempts": len(opened) + len(refusals), "open_when_every_worker_was_full": len(opened),
        "seconds": round(elapsed, 1),
        "sockets_per_nginx_worker": spread,
        "refused": dict(collections.Counter(what for _, what in refusals)),
        "error_log_first_line": alerts[0] if alerts else None,
        "error_log_kinds": dict(kinds),
        "probe_verdict": probe_record and probe_record["verdict"],
        "probe_handshake_status": probe_record and probe_record["handshake_status"],
        "probe_http_status": probe_record and probe_record["http_status"],
        "probe_message": probe_record and probe_record["message"],
    })
    assert refusals, f"{len(opened)} sockets opened with worker_connections {STOCK_WORKER_CONNECTIONS}, none refused"
    # Two connections per proxied socket: one full worker holds ~380; all of them together at most this.
    ceiling = len(stock_worker_connections["workers"]) * STOCK_WORKER_CONNECTIONS // 2
    assert first <= ceiling < int(wslab_vars["wslab_max_connections"]), f"refusals began at {first} open sockets"
    assert first >= STOCK_WORKER_CONNECTIONS // 2 - 16, f"refusals began at only {first} open sockets"
    assert alerts, f"no '{NOT_ENOUGH}' in {ERROR_LOG} after the refusals: {log[-500:]!r}"
    assert every_worker_full, (
        f"not every nginx worker filled up within {CONTROL_MAX_ATTEMPTS} attempts and {CONTROL_MAX_SECONDS} s"
        f" (spread {spread}, {len(opened)} open)")
    # The probe names the failure class from what the client sees (a 500 from nginx itself).
    assert probe_record["verdict"] == "too-many-connections", probe_record
