"""Role variables set in the scenario's inventory (.config/molecule/config.yml's
group_vars, as a user sets them in theirs) reach the host: one per role, read
back from the file or unit it ends up in. The same settings were once
overridden without a word by play variables that outranked the inventory."""

from __future__ import annotations

import re

import pytest


def _set(inventory_vars, name):
    assert name in inventory_vars, f"the scenario's inventory no longer sets {name}"
    return inventory_vars[name]


def test_django_app_writes_the_inventorys_extra_env(host, inventory_vars, wslab_vars):
    extra = _set(inventory_vars, "django_app_extra_env")
    lines = host.file(wslab_vars["wslab_app_env_file"]).content_string.splitlines()
    for key, value in extra.items():
        assert f"{key}={value}" in lines, key


def test_app_units_carry_the_inventorys_limit(host, inventory_vars, units_of):
    for server, unit in ((server, unit) for server, units in units_of.items() for unit in units):
        wanted = _set(inventory_vars, f"{server}_limit_nofile")
        got = host.check_output(f"systemctl show -p LimitNOFILE --value {unit}").strip()
        assert got == str(wanted), unit


def test_nginx_carries_the_inventorys_worker_connections(host, inventory_vars):
    wanted = _set(inventory_vars, "nginx_worker_connections")
    dump = host.check_output("nginx -T 2>/dev/null")
    assert re.findall(r"^\s*worker_connections\s+(\d+)\s*;", dump, re.MULTILINE) == [str(wanted)]


def test_redis_runs_with_the_inventorys_maxmemory(host, inventory_vars, wslab_vars, layout):
    if layout.get("channel_layer", "memory") != "redis":
        pytest.skip("the layout runs no Redis")
    wanted = _set(inventory_vars, "redis_maxmemory")
    number, unit = re.fullmatch(r"(\d+)(mb|gb)", wanted).groups()
    got = host.check_output(f"redis-cli -p {wslab_vars['wslab_redis_port']} CONFIG GET maxmemory").split()[-1]
    assert int(got) == int(number) * {"mb": 2**20, "gb": 2**30}[unit]


def test_a_connection_user_who_is_not_root_deploys_through_sudo(host, inventory_vars):
    """Where the inventory connects as a user with sudo, Ansible became root
    through sudo, as the plays ask: sudo logs each command it ran as root, and
    Ansible's are its Python (one per task, or one per connection with
    Mitogen's strategy), apart from this test's own commands."""
    user = inventory_vars.get("ansible_user", "root")
    if user == "root":
        pytest.skip("this scenario connects as root")
    journal = host.check_output("journalctl --no-pager -q -o cat _COMM=sudo")
    commands = [line.strip() for line in journal.splitlines() if line.lstrip().startswith(f"{user} :")]
    python = inventory_vars.get("ansible_python_interpreter", "/usr/bin/python3")
    ansible = [line for line in commands if "BECOME-SUCCESS-" in line or f"COMMAND={python} -c " in line]
    assert ansible, commands[-20:]
    assert all("USER=root" in line for line in ansible), ansible[:5]
