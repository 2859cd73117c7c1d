"""Bad inputs stop the real site.yml in its preflight play, named, before the host changes.

Each case runs `ansible-playbook site.yml` against a container (see conftest.py) with a
valid baseline inventory and one thing wrong, and checks that the run fails,
that the failure names the variable or layout key to change, that no play
after the preflight started, and that `docker diff` of the host is unchanged.
A case marked xfail (with a gap) would be a bad input the preflight does not
stop yet: the reason says what it misses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from wslab.layout import PROJECT_DIR, LAYOUTS_DIR, layout_names

PREFLIGHT_PLAY = yaml.safe_load((PROJECT_DIR / "playbooks/preflight.yml").read_text())[0]["name"]
DEFAULT_BINDS = yaml.safe_load((PROJECT_DIR / "roles/wslab/defaults/main.yml").read_text())["wslab_app_binds"]
KNOWN_LAYOUTS = ", ".join(layout_names())

DAPHNE = {"interface": "asgi", "processes": 1, "options": {}}
GUNICORN_WSGI = {"interface": "wsgi", "processes": 2, "options": {"worker_class": "sync"}}


def layout(name: str, servers: dict[str, Any], routes: list[dict[str, Any]]) -> dict[str, Any]:
    """A layout definition (see layouts/README.md) that claims WebSockets open."""
    front = servers.get(routes[0]["server"]) or {}
    return {
        "name": name,
        "summary": "preflight test layout",
        "servers": servers,
        "routes": routes,
        "channel_layer": "memory",
        "expect": {
            "http": {"status": 200, "interface": front.get("interface"), "server": routes[0]["server"]},
            "websocket": {"verdict": "open", "handshake_status": 101},
        },
    }


SPLIT = layout(
    "split",
    {"gunicorn": GUNICORN_WSGI, "daphne": DAPHNE},
    [{"path": "/", "server": "gunicorn"}, {"path": "/ws/", "server": "daphne", "websocket": True}],
)


@dataclass(frozen=True)
class Case:
    id: str
    # Substrings of the failure message Ansible prints (whitespace collapsed).
    message: tuple[str, ...]
    extra_vars: dict[str, Any] = field(default_factory=dict)
    # Set in the inventory's group_vars, as a user sets them.
    group_vars: dict[str, Any] = field(default_factory=dict)
    # Baseline variables left out of the inventory.
    unset: tuple[str, ...] = ()
    # (file name, definition): a layout in a directory of its own, which
    # wslab_layouts_dir then points at; wslab_layout names the file.
    layout: tuple[str, Any] | None = None
    # Substrings of the whole output, such as the assertion that failed.
    output: tuple[str, ...] = ()
    gap: str = ""


# Each check the preflight makes is proven here once, end to end: the real
# site.yml refuses the input, names what to fix, and leaves the host as it was.
# The variants of one check (every way a layout or its binds can be wrong) are
# unit tests of the filter that check calls (tests/test_layouts.py), which run
# in milliseconds where each case here costs an Ansible run.
CASES = [
    Case(
        "unknown-layout",
        extra_vars={"wslab_layout": "nosuch"},
        message=(
            "Unknown layout wslab_layout='nosuch'",
            f"Known layouts (files in {LAYOUTS_DIR.resolve()}): {KNOWN_LAYOUTS}.",
        ),
    ),
    Case(
        "layout-empty",
        extra_vars={"wslab_layout": ""},
        message=("wslab_layout is not set for ", f"Set it in the inventory (group_vars) to one of: {KNOWN_LAYOUTS}."),
    ),
    Case(
        "layout-unset",
        unset=("wslab_layout",),
        message=("wslab_layout is not set for ", f"Set it in the inventory (group_vars) to one of: {KNOWN_LAYOUTS}."),
    ),
    Case(
        "websocket-route-to-wsgi-server-expected-open",
        layout=(
            "wsgi-ws",
            layout(
                "wsgi-ws",
                {"gunicorn": GUNICORN_WSGI},
                [{"path": "/", "server": "gunicorn"}, {"path": "/ws/", "server": "gunicorn", "websocket": True}],
            ),
        ),
        message=(
            "layouts/wsgi-ws.yml: routes[1] (path /ws/) sends /ws/ to gunicorn, a WSGI server, "
            "which cannot hold a WebSocket; route it to daphne or uvicorn",
        ),
    ),
    Case(
        "two-servers-on-one-bind",
        layout=("split", SPLIT),
        extra_vars={"wslab_app_binds": dict(DEFAULT_BINDS, gunicorn="127.0.0.1:8001", daphne="127.0.0.1:8001")},
        message=(
            "wslab_app_binds: gunicorn listens on 127.0.0.1:8001 and daphne on 127.0.0.1:8001, "
            "which is the same address",
        ),
    ),
    Case(
        "secret-key-unset",
        unset=("django_app_secret_key",),
        message=("django_app_secret_key must be set (at least 32 characters; keep it in Ansible Vault",),
        output=("django_app_secret_key | length >= 32",),
    ),
    Case(
        "secret-key-too-short",
        extra_vars={"django_app_secret_key": "too-short-for-a-key"},
        message=("django_app_secret_key must be set (at least 32 characters; keep it in Ansible Vault",),
        output=("django_app_secret_key | length >= 32",),
    ),
    Case(
        "allowed-hosts-wildcard",
        extra_vars={"django_app_allowed_hosts": ["localhost", "*"]},
        message=("django_app_allowed_hosts must list the site's host names explicitly (not '*'",),
        output=("not in django_app_allowed_hosts",),
    ),
    Case(
        "read-timeout-not-an-integer",
        extra_vars={"wslab_proxy_read_timeout": "soon"},
        message=("argument 'wslab_proxy_read_timeout' is of type str and we were unable to convert to int",),
    ),
    # Role variables that other roles never read: each must equal the project
    # fact the others follow (roles/wslab/vars/main.yml).
    Case(
        "server-bind-in-inventory-differs-from-wslab-app-binds",
        group_vars={"daphne_bind": "127.0.0.1:9001"},
        message=(
            "daphne_bind is '127.0.0.1:9001', but the other roles follow wslab_app_binds.daphne, which makes it "
            "'127.0.0.1:8001'; set wslab_app_binds.daphne instead and leave daphne_bind unset",
        ),
    ),
    Case(
        "app-root-in-inventory-differs-from-wslab-app-root",
        group_vars={"django_app_root": "/srv/myapp", "uvicorn_venv": "/srv/myapp/venv"},
        message=(
            "django_app_root is '/srv/myapp', but the other roles follow wslab_app_root",
            "uvicorn_venv is '/srv/myapp/venv', but the other roles follow wslab_app_root",
        ),
    ),
    Case(
        "redis-port-in-inventory-differs-from-wslab-redis-port",
        group_vars={"redis_port": 6380},
        message=("redis_port is 6380, but the other roles follow wslab_redis_port, which makes it 6379",),
    ),
    # Free role variables, refused only where they cannot work.
    Case(
        "ping-in-inventory-not-below-read-timeout",
        group_vars={"daphne_ping_interval": 60},
        message=("daphne_ping_interval (60s) must be below wslab_proxy_read_timeout (60s)",),
    ),
    Case(
        "read-timeout-in-inventory-below-the-pings",
        group_vars={"nginx_proxy_read_timeout": 15},
        message=("daphne_ping_interval (20s) must be below nginx_proxy_read_timeout (15s)",),
    ),
    Case(
        "worker-connections-in-inventory-too-few",
        group_vars={"nginx_worker_connections": 768},
        message=("nginx_worker_connections is 768, which cannot hold wslab_max_connections (4096)",),
    ),
    # Above what any engine's or host's open-file limit allows (Linux's
    # default fs.nr_open is 1048576): systemd would clamp it, silently.
    Case(
        "max-connections-above-what-systemd-may-grant",
        group_vars={"wslab_max_connections": 2_000_000},
        message=("daphne_limit_nofile is 2001024, but systemd on", "can grant at most"),
    ),
    Case(
        "nginx-location-in-inventory-reuses-a-layout-path",
        group_vars={
            "nginx_upstreams": [{"name": "other", "servers": ["127.0.0.1:9000"]}],
            "nginx_locations": [{"path": "/", "upstream": "other"}],
        },
        message=("A location path appears twice (/, /, /static/)",),
    ),
    Case(
        "nginx-upstream-in-inventory-reuses-a-layout-name",
        group_vars={"nginx_upstreams": [{"name": "daphne", "servers": ["127.0.0.1:9000"]}]},
        message=("An upstream name appears twice (daphne, daphne)",),
    ),
    Case(
        "nginx-listen-port-not-an-integer",
        extra_vars={"nginx_listen_port": "eighty"},
        message=("argument 'nginx_listen_port' is of type str and we were unable to convert to int",),
    ),
]


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=case.gap)] if case.gap else []
    return pytest.param(case, id=case.id, marks=marks)


def test_changes_on_the_target_are_seen(deployer, target):
    """The inventory reaches the container, and what a run changes shows in docker diff."""
    run = deployer.ad_hoc("ansible.builtin.file", "path=/srv/wslab-preflight-canary state=touch mode=0644")
    assert run.returncode == 0, run.report()
    assert "+ A /srv/wslab-preflight-canary" in target.changes(), run.report()


def test_preflight_passes_the_baseline_and_changes_nothing(deployer, target):
    run = deployer.playbook("playbooks/preflight.yml")
    assert run.returncode == 0, run.report()
    assert run.plays == [PREFLIGHT_PLAY], run.report()
    assert target.changes() == [], run.report()


def test_preflight_passes_role_variables_that_agree_with_the_facts(deployer, target):
    """Set in the inventory: bound variables equal to their fact (as the
    inventory may spell them), and free ones the roles take as they are."""
    agreeing = {
        "daphne_bind": "127.0.0.1:8001",
        "redis_port": "6379",
        "daphne_read_write_paths": ["/var/lib/wslab"],
        "daphne_ping_interval": 5,
        "nginx_proxy_read_timeout": 30,
        "nginx_worker_connections": 9_000,
        "nginx_static_locations": [{"path": "/media/", "alias": "/srv/media/"}],
    }
    run = deployer.playbook("playbooks/preflight.yml", group_vars=agreeing)
    assert run.returncode == 0, run.report()
    assert target.changes() == [], run.report()


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_bad_input_stops_site_yml_before_any_change(case, deployer, target):
    extra_vars = dict(case.extra_vars)
    if case.layout:
        name, definition = case.layout
        extra_vars["wslab_layouts_dir"] = str(deployer.layouts_dir({name: definition}))
        extra_vars["wslab_layout"] = name

    run = deployer.playbook("site.yml", extra_vars=extra_vars, unset=case.unset, group_vars=case.group_vars)

    assert run.returncode != 0, f"site.yml succeeded\n{run.report()}"
    errors = " | ".join(run.error_messages)
    for text in case.message:
        assert text in errors, f"{text!r} not in the failure: {errors!r}\n{run.report()}"
    output = " ".join(run.output.split())
    for text in case.output:
        assert text in output, f"{text!r} not in the output\n{run.report()}"
    changes = target.changes()
    assert changes == [], f"the host changed: {changes}\n{run.report()}"
    assert run.plays == [PREFLIGHT_PLAY], f"the run went past the preflight play\n{run.report()}"
