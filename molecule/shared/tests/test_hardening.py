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


def test_nginx_is_sandboxed_and_keeps_only_the_capabilities_it_uses(host, exposure, unit_properties):
    assert exposure["nginx"] <= NGINX_MAX_EXPOSURE
    props = unit_properties("nginx", "CapabilityBoundingSet", "NoNewPrivileges", "ProtectSystem",
                            "MemoryDenyWriteExecute", "DropInPaths")
    assert set(props["CapabilityBoundingSet"].split()) == NGINX_CAPABILITIES
    assert (props["NoNewPrivileges"], props["ProtectSystem"], props["MemoryDenyWriteExecute"]) == ("yes", "strict", "yes")
    assert "/etc/systemd/system/nginx.service.d/wslab-hardening.conf" in props["DropInPaths"]
    # The master keeps root for the ports and keys; the workers that serve are www-data.
    users = host.check_output("ps -o user=,args= -C nginx").splitlines()
    assert any(line.split()[0] == "root" and "master process" in line for line in users), users
    workers = [line.split()[0] for line in users if "worker process" in line]
    assert workers and set(workers) == {"www-data"}, users


def test_redis_stays_within_its_exposure(layout, exposure):
    if not _uses_redis(layout):
        pytest.skip("this layout runs no Redis")
    assert exposure["redis-server"] <= REDIS_MAX_EXPOSURE
