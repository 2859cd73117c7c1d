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


def test_app_units_carry_the_inventorys_limit(host, inventory_vars, layout):
    for server in layout["servers"]:
        wanted = _set(inventory_vars, f"{server}_limit_nofile")
        got = host.check_output(f"systemctl show -p LimitNOFILE --value wslab-{server}").strip()
        assert got == str(wanted), server


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
