"""A layout that changes Daphne's processes, deployed over the one before
with the same site.yml: from instances (split-daphne: wslab-daphne@1 and @2)
to one service and back, each run leaving the units of its own form only,
running, and a WebSocket through nginx.

It converges the host twice more, with the scenario's inventory and settings
(Molecule's verifier environment names them), and ends on the layout the
scenario deployed, whatever happened in between.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from wslab.layout import load_layout, server_units
from wslab.playbook_output import recaps
from wslab.probe import run_probe

pytestmark = pytest.mark.operations

# The scenario whose layout runs Daphne's instances, and the layout with one
# Daphne process it switches to and back from (the same binds; Gunicorn stays).
SWITCHED_LAYOUTS = {"split-daphne": "daphne"}
# Generous: a converge takes well under a minute alone, minutes with every scenario at once.
CONVERGE_TIMEOUT_S = 900
PROBE_TIMEOUT_S = 30.0


def _converge(layout: str) -> None:
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    playbook = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]).parent / "shared" / "converge.yml"
    run = subprocess.run(
        ["ansible-playbook", "--inventory", str(inventory), "-e", f"wslab_layout={layout}", str(playbook)],
        capture_output=True, text=True, timeout=CONVERGE_TIMEOUT_S, check=False,
    )
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-40:])
    assert run.returncode == 0, tail
    assert [(r["failed"], r["unreachable"]) for r in recaps(run.stdout)] == [("0", "0")], tail


def _expect(host, site_url: str, layout: str, unix_bind: bool) -> None:
    """Daphne's unit files are those of LAYOUT's form only, its services
    enabled and running, nothing of the other form running; a WebSocket
    opens through nginx."""
    units = server_units(load_layout(layout))["daphne"]
    if units == ["wslab-daphne"]:
        # One service; on a unix bind, with the socket unit systemd opens it from.
        sockets = {"wslab-daphne.socket"} if unix_bind else set()
        files = {"wslab-daphne.service"} | sockets
    else:
        sockets = {f"{unit}.socket" for unit in units}
        files = {"wslab-daphne@.service"} | sockets
    found = set(host.check_output("ls /etc/systemd/system | grep '^wslab-daphne' || true").split())
    assert found == files
    enabled = set(
        host.check_output("ls /etc/systemd/system/multi-user.target.wants | grep '^wslab-daphne' || true").split()
    )
    assert enabled == {f"{unit}.service" for unit in units}
    running = set(host.check_output(
        "systemctl list-units 'wslab-daphne*' --state=active --plain --no-legend --no-pager | awk '{print $1}'"
    ).split())
    assert running == {f"{unit}.service" for unit in units} | sockets
    # Nothing the switch stopped or removed is left failed (the host would read degraded).
    assert host.run("systemctl --failed --plain --no-legend --no-pager").stdout.strip() == ""
    result = run_probe(site_url, hold=0.5, timeout=PROBE_TIMEOUT_S)
    assert result.verdict == "open", result.to_dict()


def test_daphne_goes_from_instances_to_one_service_and_back(host, site_url, layout_name, wslab_vars):
    other = SWITCHED_LAYOUTS.get(layout_name)
    if other is None:
        pytest.skip(f"the switch runs on {', '.join(sorted(SWITCHED_LAYOUTS))} only")
    unix_bind = wslab_vars["wslab_app_binds"]["daphne"].startswith("unix:")
    _expect(host, site_url, layout_name, unix_bind)
    try:
        _converge(other)
        _expect(host, site_url, other, unix_bind)
    finally:
        _converge(layout_name)
    _expect(host, site_url, layout_name, unix_bind)
