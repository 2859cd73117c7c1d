"""The layout definitions and the filters that turn them into role inputs."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from wslab import layout as schema
from wslab.layout import PROJECT_DIR, layout_names, load_layout
from wslab.probe import Verdict

DEFAULTS = yaml.safe_load((PROJECT_DIR / "roles/wslab/defaults/main.yml").read_text())
BINDS = DEFAULTS["wslab_app_binds"]
# What a layout may expect of a handshake: what the probe can see of a handshake alone.
VERDICTS = {Verdict.OPEN, Verdict.WSGI_BACKEND, Verdict.UPGRADE_NOT_FORWARDED, Verdict.ORIGIN_REJECTED,
            Verdict.SERVER_DOWN, Verdict.HTTP_STATUS}


def errors(definition, layout=None, binds=BINDS, read_timeout=60, ping=20):
    return schema.layout_errors(definition, layout or definition["name"], binds, read_timeout, ping)


@pytest.mark.parametrize("name", layout_names())
def test_every_layout_is_deployable_with_the_default_binds(name):
    assert errors(load_layout(name), name) == []


@pytest.mark.parametrize("name", layout_names())
def test_every_layout_states_its_expectation_in_probe_verdicts(name):
    expect = load_layout(name)["expect"]
    assert expect["websocket"]["verdict"] in VERDICTS
    assert (expect["websocket"]["handshake_status"] == 101) == (expect["websocket"]["verdict"] == "open")
    assert expect["http"]["interface"] in {"wsgi", "asgi"}
    if expect["websocket"]["verdict"] == "open":
        assert expect["websocket"]["server"] in load_layout(name)["servers"]
        assert expect["websocket"]["restart_close_code"] in {1000, 1001, 1006, 1012}


def test_the_lab_covers_the_wsgi_and_daphne_layouts():
    assert {"wsgi", "daphne"} <= set(layout_names())


def test_unknown_layout_names_the_known_ones():
    with pytest.raises(KeyError, match="known: .*daphne"):
        load_layout("no-such-layout")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.update(name="other"), "expected 'daphne' (the file name)"),
        (lambda t: t["servers"].update(hypercorn={"interface": "asgi"}), "unknown server 'hypercorn'"),
        (lambda t: t["servers"]["daphne"].update(interface="wsgi"), "daphne speaks ['asgi']"),
        (lambda t: t["routes"].append({"path": "/ws/", "server": "uvicorn"}), "is not one of servers"),
        (lambda t: t["routes"].append({"path": "/", "server": "daphne"}), "appears twice"),
        (lambda t: t.update(channel_layer="postgres"), "channel_layer is 'postgres'"),
        (lambda t: t["servers"]["daphne"].update(processes=3), "share the in-memory channel layer"),
        (lambda t: t.pop("expect"), "expect must give"),
    ],
)
def test_layout_mistakes_are_named(mutate, message):
    definition = copy.deepcopy(load_layout("daphne"))
    mutate(definition)
    assert any(message in error for error in errors(definition, "daphne")), errors(definition, "daphne")


def test_websocket_route_to_a_wsgi_server_is_refused_unless_the_layout_expects_failure():
    wsgi = load_layout("wsgi")
    assert errors(wsgi) == []  # the wsgi layout fails on purpose and says so
    claims_open = copy.deepcopy(wsgi)
    claims_open["routes"] = [{"path": "/", "server": "gunicorn"}, {"path": "/ws/", "server": "gunicorn", "websocket": True}]
    claims_open["expect"]["websocket"] = {"verdict": "open", "handshake_status": 101}
    assert any("WSGI server, which cannot hold a WebSocket" in e for e in errors(claims_open))


def test_a_catch_all_route_to_a_wsgi_server_cannot_promise_open_websockets():
    claims_open = copy.deepcopy(load_layout("wsgi"))
    claims_open["expect"]["websocket"] = {"verdict": "open", "handshake_status": 101}
    assert any("(path /) sends /ws/ to gunicorn, a WSGI server" in e for e in errors(claims_open))


def test_an_open_layout_must_forward_the_upgrade_on_its_ws_route():
    claims_open = copy.deepcopy(load_layout("broken-proxy"))
    claims_open["expect"]["websocket"] = {"verdict": "open", "handshake_status": 101}
    assert any("without websocket: true" in e for e in errors(claims_open))
    assert errors(load_layout("broken-proxy")) == []  # it breaks the rule on purpose


def test_http_version_must_be_one_nginx_knows():
    definition = copy.deepcopy(load_layout("proxy-http10"))
    definition["routes"][0]["http_version"] = "2"
    assert any("http_version must be one of" in e for e in errors(definition))


def test_nginx_locations_carry_an_explicit_http_version():
    (location,) = schema.nginx_locations(load_layout("proxy-http10"))
    assert location == {"path": "/", "upstream": "daphne", "websocket": True, "http_version": "1.0"}


def test_processes_must_be_an_integer():
    definition = copy.deepcopy(load_layout("uvicorn"))
    definition["servers"]["uvicorn"]["processes"] = "2"
    assert any("servers.uvicorn.processes must be a positive integer" in e for e in errors(definition))


def test_an_option_no_role_reads_is_refused():
    definition = copy.deepcopy(load_layout("split-uvicorn"))
    definition["servers"]["uvicorn"]["options"] = {"ws_ping_interval": 5}
    definition["servers"]["gunicorn"]["options"]["timeout"] = 60
    found = errors(definition)
    assert (
        "layouts/split-uvicorn.yml: servers.uvicorn.options has ws_ping_interval, which no role reads "
        "(options a layout may give uvicorn: none); set the role's variables in the inventory instead"
    ) in found
    assert any("servers.gunicorn.options has timeout" in e and "gunicorn: worker_class" in e for e in found)


def test_the_stock_uvicorn_worker_cannot_ping_below_a_short_read_timeout():
    definition = copy.deepcopy(load_layout("gunicorn-uvicorn"))
    assert errors(definition, read_timeout=5, ping=2) == []  # the sample app's worker follows the setting
    definition["servers"]["gunicorn"]["options"]["worker_class"] = "uvicorn_worker.UvicornWorker"
    assert any("pings idle WebSockets every 20s" in e for e in errors(definition, read_timeout=5, ping=2))
    assert errors(definition, read_timeout=60, ping=20) == []


def test_gunicorn_asgi_needs_an_asgi_worker_class():
    definition = copy.deepcopy(load_layout("wsgi"))
    definition["servers"]["gunicorn"]["interface"] = "asgi"
    assert any("uvicorn_worker.UvicornWorker" in e for e in errors(definition))


@pytest.mark.parametrize(
    ("bind", "ok"),
    [
        ("127.0.0.1:8001", True),
        ("[::1]:8001", True),
        ("unix:/run/wslab-daphne/daphne.sock", True),
        ("unix:/tmp/daphne.sock", False),  # not under /run/<dir>/: a socket lives in /run
        ("127.0.0.1", False),
        ("127.0.0.1:99999", False),
        (8001, False),
    ],
)
def test_bind_syntax(bind, ok):
    assert (schema.bind_errors(bind, "daphne") == []) is ok


def test_a_bad_bind_is_named_with_the_forms_it_may_take():
    (error,) = errors(load_layout("daphne"), "daphne", dict(BINDS, daphne="localhost"))
    assert error.startswith("wslab_app_binds.daphne is 'localhost': use HOST:PORT (e.g. 127.0.0.1:8001) or unix:/run/")


def test_two_servers_on_one_address_is_a_conflict():
    definition = copy.deepcopy(load_layout("daphne"))
    definition["servers"]["gunicorn"] = {"interface": "wsgi", "processes": 1}
    definition["routes"] = [{"path": "/", "server": "gunicorn"}, {"path": "/ws/", "server": "daphne", "websocket": True}]
    for gunicorn_bind in ("127.0.0.1:8001", "0.0.0.0:8001", "[::]:8001"):
        binds = dict(BINDS, gunicorn=gunicorn_bind)
        assert any("which is the same address" in e for e in errors(definition, "daphne", binds)), gunicorn_bind
    assert errors(definition, "daphne", dict(BINDS, gunicorn="127.0.0.2:8001", daphne="127.0.0.1:8001")) == []


def test_ping_interval_must_be_below_the_proxy_read_timeout():
    definition = load_layout("daphne")
    assert any("must be below wslab_proxy_read_timeout" in e for e in errors(definition, read_timeout=20, ping=20))
    assert errors(definition, read_timeout=21, ping=20) == []


def test_nginx_inputs_follow_the_routes():
    definition = copy.deepcopy(load_layout("daphne"))
    definition["servers"]["gunicorn"] = {"interface": "wsgi", "processes": 1}
    definition["routes"] = [
        {"path": "/", "server": "gunicorn"},
        {"path": "/ws/", "server": "daphne", "websocket": True},
    ]
    assert schema.nginx_upstreams(definition, BINDS) == [
        {"name": "gunicorn", "servers": [BINDS["gunicorn"]]},
        {"name": "daphne", "servers": [BINDS["daphne"]]},
    ]
    assert schema.nginx_locations(definition) == [
        {"path": "/", "upstream": "gunicorn", "websocket": False},
        {"path": "/ws/", "upstream": "daphne", "websocket": True},
    ]


def test_lab_containers_and_molecule_platform_run_alike():
    """inventories/lab and Molecule must boot systemd the same way."""
    molecule = yaml.safe_load((PROJECT_DIR / ".config/molecule/config.yml").read_text())["platforms"][0]
    lab = yaml.safe_load((PROJECT_DIR / "inventories/lab/group_vars/wslab_lab/containers.yml").read_text())
    container = lab["wslab_lab_container"]
    for key in ("command", "capabilities", "security_opts", "cgroupns_mode", "tmpfs"):
        assert molecule[key] == container[key], key
    assert molecule["volumes"][0] == container["volumes"][0]


def test_every_layout_has_a_molecule_scenario_and_a_lab_host():
    scenarios = {path.parent.name for path in (PROJECT_DIR / "molecule").glob("*/molecule.yml")}
    hosts = yaml.safe_load((PROJECT_DIR / "inventories/lab/hosts.yml").read_text())
    lab_layouts = {h["wslab_layout"] for h in hosts["all"]["children"]["wslab_lab"]["hosts"].values()}
    assert scenarios == set(layout_names())
    assert lab_layouts == set(layout_names())


def test_the_readme_shows_each_layouts_summary():
    """The README's table of layouts is the summaries (layouts/*.yml is their one home)."""
    readme = (PROJECT_DIR / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (.+?) \| .+? \| .+? \|$", readme, re.M))
    assert rows == {name: load_layout(name)["summary"] for name in layout_names()}


def test_a_layout_without_a_summary_is_refused():
    definition = copy.deepcopy(load_layout("daphne"))
    del definition["summary"]
    assert any("summary must be one line" in e for e in errors(definition))


# ------------------------------------------------------------ Daphne's instances


@pytest.mark.parametrize(
    ("bind", "processes", "expected"),
    [
        ("127.0.0.1:8001", 1, ["127.0.0.1:8001"]),
        ("127.0.0.1:8001", 3, ["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"]),
        ("[::1]:8001", 2, ["[::1]:8001", "[::1]:8002"]),
        ("unix:/run/wslab-daphne/daphne.sock", 2,
         ["unix:/run/wslab-daphne/daphne-1.sock", "unix:/run/wslab-daphne/daphne-2.sock"]),
    ],
)
def test_each_instance_gets_its_own_address(bind, processes, expected):
    assert schema.instance_binds(bind, processes) == expected


def test_several_daphne_processes_are_instances_and_nginx_lists_them_all():
    definition = load_layout("split-daphne")
    assert definition["servers"]["daphne"]["processes"] == 2
    binds = dict(BINDS, daphne="unix:/run/wslab-daphne/daphne.sock")
    assert errors(definition, binds=binds) == []
    assert schema.server_units(definition) == {
        "gunicorn": ["wslab-gunicorn"], "daphne": ["wslab-daphne@1", "wslab-daphne@2"],
    }
    upstreams = {upstream["name"]: upstream["servers"] for upstream in schema.nginx_upstreams(definition, binds)}
    # Gunicorn's two workers share one socket; Daphne's processes each have theirs.
    assert upstreams == {
        "gunicorn": [BINDS["gunicorn"]],
        "daphne": ["unix:/run/wslab-daphne/daphne-1.sock max_fails=0", "unix:/run/wslab-daphne/daphne-2.sock max_fails=0"],
    }
    assert schema.unit_file("wslab-daphne@2") == "/etc/systemd/system/wslab-daphne@.service"
    assert schema.unit_file("wslab-gunicorn") == "/etc/systemd/system/wslab-gunicorn.service"


def test_an_instance_on_another_servers_port_is_refused():
    definition = copy.deepcopy(load_layout("split-daphne"))
    # Daphne's second instance would take 8002, Gunicorn's port here.
    binds = dict(BINDS, daphne="127.0.0.1:8001", gunicorn="127.0.0.1:8002")
    assert any(
        "gunicorn listens on 127.0.0.1:8002 and daphne on 127.0.0.1:8002, which is the same address" in error
        for error in errors(definition, binds=binds)
    ), errors(definition, binds=binds)


def test_instances_past_the_last_port_are_refused():
    definition = copy.deepcopy(load_layout("split-daphne"))
    binds = dict(BINDS, daphne="127.0.0.1:65535")
    assert any("past 65535" in error for error in errors(definition, binds=binds))
