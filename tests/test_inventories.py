"""The shipped inventories: the production example and the local lab."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from wslab.layout import PROJECT_DIR, layout_names

VENV_BIN = PROJECT_DIR / ".venv" / "bin"
PROD = ["-i", "inventories/prod", "--vault-password-file", "inventories/prod/vault-password.example"]


def _ansible(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / args[0]), *args[1:]],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
        env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "ANSIBLE_NOCOLOR": "1", "HOME": "/root"},
    )


@pytest.fixture(scope="module")
def prod_inventory():
    run = _ansible("ansible-inventory", *PROD, "--list")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_prod_example_names_every_group(prod_inventory):
    for group in ("wslab_proxy", "wslab_app", "wslab_redis"):
        assert prod_inventory[group]["hosts"], group


def test_prod_example_secret_comes_from_the_vault_and_passes_preflight():
    host = "web1.example.org"
    run = _ansible("ansible", host, *PROD, "-m", "ansible.builtin.debug", "-a", "var=django_app_secret_key")
    assert run.returncode == 0, run.stdout + run.stderr
    match = re.search(r"django_app_secret_key: (\S+)", run.stdout)
    assert match, run.stdout
    key = match[1]
    assert key.startswith("example-not-a-secret")
    assert len(key) >= 32
    vault = (PROJECT_DIR / "inventories/prod/group_vars/all/vault.yml").read_text()
    assert vault.startswith("$ANSIBLE_VAULT;") and "example-not-a-secret" not in vault


def test_prod_example_layout_exists(prod_inventory):
    layouts = {vars_["wslab_layout"] for vars_ in prod_inventory["_meta"]["hostvars"].values()}
    assert layouts <= set(layout_names())


@pytest.mark.parametrize("inventory", ["inventories/prod", "inventories/lab", "inventories/bench"])
def test_site_playbook_parses_against_the_inventory(inventory):
    args = PROD if inventory == "inventories/prod" else ["-i", inventory]
    run = _ansible("ansible-playbook", "site.yml", *args, "--syntax-check")
    assert run.returncode == 0, run.stdout + run.stderr


def test_lab_hosts_publish_distinct_ports():
    run = _ansible("ansible-inventory", "-i", "inventories/lab", "--list")
    hostvars = json.loads(run.stdout)["_meta"]["hostvars"]
    ports = [vars_["wslab_lab_port"] for vars_ in hostvars.values()]
    assert len(ports) == len(set(ports))


def test_bench_containers_are_apart_from_the_labs_and_hold_the_benchmarks_sockets():
    from wslab import bench

    def hostvars(inventory: str) -> dict:
        run = _ansible("ansible-inventory", "-i", inventory, "--list")
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)["_meta"]["hostvars"]

    lab, bench_hosts = hostvars("inventories/lab"), hostvars("inventories/bench")
    assert sorted(bench_hosts) == sorted(bench.CONTAINER.format(layout=layout) for layout in bench.LAYOUTS)
    assert {h: v["wslab_layout"] for h, v in bench_hosts.items()} == {
        bench.CONTAINER.format(layout=layout): layout for layout in bench.LAYOUTS}
    def ports(hosts: dict) -> set[int]:
        return {v[key] for v in hosts.values() for key in ("wslab_lab_port", "wslab_lab_tls_port")}

    assert not ports(lab) & ports(bench_hosts) and len(ports(bench_hosts)) == 2 * len(bench_hosts)
    # Every limit on the path holds the benchmark's sockets, nginx's over its
    # workers (each socket is two connections, and two open files, of one).
    wanted = bench.FULL.sockets + bench.FULL.echo_sockets
    for vars_ in bench_hosts.values():
        workers = int(vars_["nginx_worker_processes"])
        assert workers * int(vars_["nginx_worker_connections"]) >= 2 * wanted
        assert int(vars_["nginx_limit_nofile"]) >= int(vars_["nginx_worker_connections"])
        for server in ("gunicorn", "daphne", "uvicorn"):
            assert int(vars_[f"{server}_limit_nofile"]) >= wanted + 64, server
        assert vars_["nginx_websocket_connections_per_client"] >= wanted
        assert vars_["wslab_lab_cpuset"] != bench.CLIENT_CORE
