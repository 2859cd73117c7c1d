"""The capacity rule: wslab_max_connections, the limits the roles' defaults
derive from it, and the preflight filter that refuses limits too small to hold it."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from wslab.roles import app_server_unit, role_defaults
from wslab.layout import PROJECT_DIR

_spec = importlib.util.spec_from_file_location(
    "wslab_capacity_filters", PROJECT_DIR / "roles/wslab/filter_plugins/wslab_capacity.py"
)
capacity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(capacity)

APP_SERVERS = ("gunicorn", "daphne", "uvicorn")
# name -> the role that owns it
LIMITS = {
    "nginx_worker_connections": "nginx",
    "nginx_limit_nofile": "nginx",
    **{f"{server}_limit_nofile": server for server in APP_SERVERS},
}


def _yaml(path: str):
    return yaml.safe_load((PROJECT_DIR / path).read_text())


def derive(max_connections: int) -> dict[str, int]:
    """The limits as the roles' defaults derive them (their own expressions)."""
    return {
        name: role_defaults(role, wslab_max_connections=max_connections)[name] for name, role in LIMITS.items()
    }


def check(max_connections, limits: dict, servers=APP_SERVERS) -> list[str]:
    return capacity.wslab_capacity_errors(
        max_connections,
        limits.get("nginx_worker_connections"),
        limits.get("nginx_limit_nofile"),
        {server: limits.get(f"{server}_limit_nofile") for server in APP_SERVERS},
        list(servers),
    )


def test_the_default_target_derives_the_documented_limits():
    assert _yaml("roles/wslab/defaults/main.yml")["wslab_max_connections"] == 4096
    assert derive(4096) == {
        "nginx_worker_connections": 2 * 4096 + 1024,
        "nginx_limit_nofile": 2 * (2 * 4096 + 1024),
        "gunicorn_limit_nofile": 4096 + 1024,
        "daphne_limit_nofile": 4096 + 1024,
        "uvicorn_limit_nofile": 4096 + 1024,
    }


@pytest.mark.parametrize("role", sorted({*LIMITS.values(), "wslab"}))
def test_argument_specs_type_the_capacity_variables(role):
    """Typed as what they render to; a derived limit has no fixed default to document."""
    defaults = _yaml(f"roles/{role}/defaults/main.yml")
    options = _yaml(f"roles/{role}/meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    names = [n for n in defaults if n in LIMITS or n in ("wslab_max_connections", "nginx_worker_processes")]
    assert names
    for name in names:
        spec = options[name]
        assert spec["type"] == ("str" if name == "nginx_worker_processes" else "int"), name
        if name in LIMITS:
            assert "default" not in spec, name
            assert "Default: derived" in str(spec["description"]), name
        else:
            assert spec["default"] == defaults[name], name


@pytest.mark.parametrize("max_connections", [1, 100, 384, 1000, 4096, 28_000, 100_000])
def test_derived_limits_pass_the_preflight(max_connections):
    assert check(max_connections, derive(max_connections)) == []


def test_debians_768_worker_connections_hold_about_380_websockets():
    stock = dict(derive(4096), nginx_worker_connections=768)
    errors = check(4096, stock)
    assert len(errors) == 1
    assert errors[0].startswith("nginx_worker_connections is 768, which cannot hold wslab_max_connections (4096)")
    assert "two connections of one nginx worker" in errors[0]
    assert f"at least {2 * 4096 + 16}" in errors[0]
    most = (768 - capacity.NGINX_MIN_SPARE_CONNECTIONS) // 2
    assert check(most, stock) == []
    assert check(most + 1, stock) != []


def test_worker_connections_are_not_divided_by_the_number_of_workers():
    """The rule holds every socket in one worker: 2 x wanted, whatever worker_processes says."""
    assert capacity.wslab_min_worker_connections(4096) >= 2 * 4096


def test_nginx_open_files_must_cover_its_connections():
    limits = dict(derive(4096), nginx_limit_nofile=9215)
    (error,) = check(4096, limits)
    assert "nginx_limit_nofile (9215) is below nginx_worker_connections (9216)" in error
    assert "Too many open files" in error


@pytest.mark.parametrize("server", APP_SERVERS)
def test_an_app_unit_at_systemds_default_limit_is_refused(server):
    limits = dict(derive(4096), **{f"{server}_limit_nofile": 1024})
    (error,) = check(4096, limits)
    assert error.startswith(f"{server}_limit_nofile is 1024, which cannot hold wslab_max_connections (4096)")
    assert f"at least {4096 + capacity.APP_MIN_SPARE_FILES}" in error
    # A server the layout does not run is not checked.
    assert check(4096, limits, servers=[s for s in APP_SERVERS if s != server]) == []


def test_limits_a_host_does_not_deploy_are_skipped():
    assert capacity.wslab_capacity_errors(4096, None, None, {"daphne": None}, ["daphne"]) == []


def test_numbers_given_on_the_command_line_are_read_as_numbers():
    """`-e nginx_worker_connections=768` arrives as a string."""
    assert any("nginx_worker_connections is 768," in e for e in capacity.wslab_capacity_errors("4096", "768"))
    assert capacity.wslab_capacity_errors("4096", "9216", "18432") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0,), "wslab_max_connections must be a positive integer, got 0"),
        (("many",), "wslab_max_connections must be a positive integer, got 'many'"),
        ((True,), "wslab_max_connections must be a positive integer, got True"),
        ((4096, -1), "nginx_worker_connections must be a positive integer, got -1"),
        ((4096, 9216, "lots"), "nginx_limit_nofile must be a positive integer, got 'lots'"),
        ((4096, None, None, {"uvicorn": 1.5}, ["uvicorn"]), "uvicorn_limit_nofile must be a positive integer, got 1.5"),
    ],
)
def test_malformed_values_are_named(args, message):
    assert message in capacity.wslab_capacity_errors(*args)


def test_the_nginx_templates_render_the_limits():
    conf = (PROJECT_DIR / "roles/nginx/templates/etc/nginx/nginx.conf.j2").read_text()
    dropin = (PROJECT_DIR / "roles/nginx/templates/etc/systemd/system/nginx.service.d/wslab-limits.conf.j2").read_text()
    assert conf.startswith("{{ ansible_managed | comment }}\n")
    assert dropin.startswith("{{ ansible_managed | comment }}\n")
    assert "\n\tworker_connections {{ nginx_worker_connections }};\n" in conf
    assert "\nworker_rlimit_nofile {{ nginx_limit_nofile }};\n" in conf
    assert "\nworker_processes {{ nginx_worker_processes }};\n" in conf
    assert "[Service]\nLimitNOFILE={{ nginx_limit_nofile }}\n" in dropin


@pytest.mark.parametrize("server", APP_SERVERS)
def test_every_app_unit_renders_its_limit(server):
    layout = {"gunicorn": "wsgi", "daphne": "daphne", "uvicorn": "uvicorn"}[server]
    unit = app_server_unit(server, layout=layout, wslab_max_connections=10_000)
    assert "\nLimitNOFILE=11024\n" in unit
