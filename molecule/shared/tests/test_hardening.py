"""The units' sandboxes, as systemd itself rates them.

`systemd-analyze security UNIT` scores a unit's exposure from 0 (locked down)
to 10 (UNSAFE). Every app server unit (roles/app_server) is at most
APP_UNIT_MAX_EXPOSURE, nginx with the lab's drop-in at most
NGINX_MAX_EXPOSURE (Debian's own unit: 9.6, UNSAFE), Redis (Debian's unit
and the lab's drop-in) at most REDIS_MAX_EXPOSURE. The settings that make the
score are asserted as systemd reports them, and each score is recorded in
build/findings/hardening-<suite>-<layout>.json for docs/runbook.md ("Units and their sandboxes").
"""

from __future__ import annotations

import re

import pytest

from wslab import findings
from wslab.layout import server_binds, server_units

APP_UNIT_MAX_EXPOSURE = 2.0
NGINX_MAX_EXPOSURE = 3.0
REDIS_MAX_EXPOSURE = 2.0
_OVERALL = re.compile(r"Overall exposure level for (?P<unit>\S+)\.service: (?P<score>\d+(?:\.\d+)?)")

# What systemd reports for every app server unit (`systemctl show`).
APP_UNIT_PROPERTIES = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallErrorNumber": "1",  # EPERM
    "UMask": "0027",
    "CapabilityBoundingSet": "",
    "RestrictNamespaces": "yes",
    "RemoveIPC": "yes",
    "DevicePolicy": "closed",
}
# The only capabilities nginx's root master keeps.
NGINX_CAPABILITIES = {"cap_chown", "cap_dac_override", "cap_kill", "cap_setgid", "cap_setuid", "cap_net_bind_service"}


def _uses_redis(layout) -> bool:
    return layout.get("channel_layer") == "redis"


@pytest.fixture(scope="module")
def exposure(host, server_units, layout, layout_name) -> dict[str, float]:
    """unit -> its overall exposure, every unit of the layout in one call."""
    units = [*server_units, "nginx", *(["redis-server"] if _uses_redis(layout) else [])]
    out = host.check_output(
        " ; ".join(f"systemd-analyze security --no-pager {unit}.service | grep 'Overall exposure level'" for unit in units)
    )
    scores = {match["unit"]: float(match["score"]) for match in _OVERALL.finditer(out)}
    assert set(scores) == set(units), out
    findings.record("hardening", layout_name, "exposure", scores)
    return scores


def test_every_app_server_unit_is_sandboxed_to_an_exposure_of_at_most_2(server_units, exposure, unit_properties):
    for unit in server_units:
        assert exposure[unit] <= APP_UNIT_MAX_EXPOSURE, f"{unit}: {exposure[unit]}"
        props = unit_properties(unit, *APP_UNIT_PROPERTIES, "SystemCallFilter")
        filtered = props.pop("SystemCallFilter")
        assert props == APP_UNIT_PROPERTIES, unit
        # An allow list (@system-service) without the privileged calls.
        assert filtered and not filtered.startswith("~"), filtered
        assert not re.search(r"\b(mount|reboot|setuid|init_module|kexec_load|setrlimit)\b", filtered), unit


def _unix_sockets(layout, wslab_vars) -> dict[str, str]:
    """unit -> the path of its unix socket, for the servers on a unix: bind:
    wslab-<server>'s, or each instance's (wslab-daphne@N, with several)."""
    binds = server_binds(layout, wslab_vars["wslab_app_binds"])
    return {
        unit: bind[5:]
        for server, units in server_units(layout).items()
        for unit, bind in zip(units, binds[server], strict=True)
        if bind.startswith("unix:")
    }


_CONNECT = "python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])' {path}"


def test_a_unix_socket_admits_the_app_and_nginx_only(host, layout, wslab_vars, unit_properties):
    """systemd creates each unix socket (the server's .socket unit) 0660,
    owned by the app's user and nginx's group, in a directory only they may
    enter (0750): nginx's user connects, any other user is refused by the
    kernel (EACCES)."""
    sockets = _unix_sockets(layout, wslab_vars)
    if not sockets:
        pytest.skip("every server of this scenario listens on TCP")
    owner = (wslab_vars["wslab_app_user"], wslab_vars["wslab_proxy_user"])
    for unit, path in sockets.items():
        directory = host.file(path.rsplit("/", 1)[0])
        assert (directory.mode, directory.user, directory.group) == (0o750, *owner), directory.path
        stat = host.file(path)
        assert stat.is_socket, path
        # Twisted, under Daphne, chmods even a socket it was handed to 0666
        # (twisted.internet.unix.Port.startListening): the directory is what
        # keeps others out there.
        mode = 0o666 if unit.startswith("wslab-daphne") else 0o660
        assert (stat.mode, stat.user, stat.group) == (mode, *owner), path
        props = unit_properties(f"{unit}.socket", "ActiveState", "Listen")
        assert props == {"ActiveState": "active", "Listen": f"{path} (Stream)"}, props
        proxy = host.run(f"runuser -u {wslab_vars['wslab_proxy_user']} -- " + _CONNECT.format(path=path))
        assert proxy.rc == 0, proxy.stderr
        other = host.run("runuser -u nobody -- " + _CONNECT.format(path=path))
        assert other.rc != 0 and "PermissionError" in other.stderr, (other.rc, other.stderr)


def test_nginx_is_sandboxed_and_keeps_only_the_capabilities_it_uses(host, exposure, unit_properties, wslab_vars):
    assert exposure["nginx"] <= NGINX_MAX_EXPOSURE
    props = unit_properties("nginx", "CapabilityBoundingSet", "NoNewPrivileges", "ProtectSystem",
                            "MemoryDenyWriteExecute", "DropInPaths")
    assert set(props["CapabilityBoundingSet"].split()) == NGINX_CAPABILITIES
    assert (props["NoNewPrivileges"], props["ProtectSystem"], props["MemoryDenyWriteExecute"]) == ("yes", "strict", "yes")
    assert "/etc/systemd/system/nginx.service.d/wslab-hardening.conf" in props["DropInPaths"]
    # The master keeps root for the ports and keys; the workers that serve are
    # wslab_proxy_user (www-data).
    users = host.check_output("ps -o user=,args= -C nginx").splitlines()
    assert any(line.split()[0] == "root" and "master process" in line for line in users), users
    workers = [line.split()[0] for line in users if "worker process" in line]
    assert workers and set(workers) == {wslab_vars["wslab_proxy_user"]}, users


def test_redis_stays_within_its_exposure(layout, exposure):
    if not _uses_redis(layout):
        pytest.skip("this layout runs no Redis")
    assert exposure["redis-server"] <= REDIS_MAX_EXPOSURE
