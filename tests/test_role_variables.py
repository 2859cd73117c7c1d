"""Role variables and the project facts they derive from: every default is
documented with its type in the role's argument_specs.yml, a derived default
is a template over the facts, and the variables that must equal a fact are
derived from it exactly as the preflight expects (roles/wslab/vars/main.yml)."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from wslab.layout import layout_names, load_layout, server_binds
from wslab.roles import ROLES_DIR, app_server_inputs, app_server_unit, raw_defaults, role_defaults

ROLES = ("wslab", "django_app", "gunicorn", "daphne", "uvicorn", "nginx", "redis")
BOUND = yaml.safe_load((ROLES_DIR / "wslab/vars/main.yml").read_text())["_wslab_bound_variables"]

_spec = importlib.util.spec_from_file_location(
    "wslab_settings_filters", ROLES_DIR / "wslab/filter_plugins/wslab_settings.py"
)
settings = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(settings)


def _options(role: str) -> dict:
    return yaml.safe_load((ROLES_DIR / role / "meta/argument_specs.yml").read_text())["argument_specs"]["main"][
        "options"
    ]


def _derived(value) -> bool:
    return "{{" in str(value)


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_name_the_same_variables(role):
    defaults, options = raw_defaults(role), _options(role)
    assert sorted(defaults) == sorted(options)


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_give_each_fixed_default_and_say_where_a_derived_one_comes_from(role):
    for name, value in raw_defaults(role).items():
        spec = _options(role)[name]
        if _derived(value):
            assert "default" not in spec, name
            assert "Default" in str(spec["description"]), name
        elif not spec.get("required"):
            assert spec.get("default") == value, name


@pytest.mark.parametrize("name", sorted(BOUND))
def test_a_bound_variable_defaults_to_its_fact_as_the_preflight_expects(name):
    role = next(role for role in ROLES if name.startswith(f"{role}_"))
    fact, expected = BOUND[name]
    assert " ".join(str(raw_defaults(role)[name]).split()) == " ".join(str(expected).split())
    # A project fact, or a key of the layout (which nginx's wiring reads).
    assert fact.startswith("the layout's servers.") or fact.split(".")[0].split()[0] in raw_defaults("wslab")
    description = str(_options(role)[name]["description"])
    assert "the project fact" in description or "wslab_" in description or "the layout's" in description, name


@pytest.mark.parametrize("layout", ["wsgi", "gunicorn-uvicorn", "daphne", "uvicorn", "split-daphne"])
def test_derived_defaults_render_to_their_declared_types(layout):
    python_types = {"int": int, "str": str, "path": str, "bool": bool, "list": list, "dict": dict, "float": (int, float)}
    for role in ("django_app", "gunicorn", "daphne", "uvicorn", "nginx", "redis"):
        values = role_defaults(role, layout=layout)
        for name, raw in raw_defaults(role).items():
            if not _derived(raw) or name not in values:
                continue
            wanted = python_types[_options(role)[name]["type"]]
            assert isinstance(values[name], wanted), (role, name, values[name])


def test_the_default_project_facts_give_the_documented_values():
    assert role_defaults("gunicorn", layout="wsgi")["gunicorn_app"] == "labsite.wsgi:application"
    gunicorn = role_defaults("gunicorn", layout="gunicorn-uvicorn")
    assert gunicorn["gunicorn_app"] == "labsite.asgi:application"
    assert gunicorn["gunicorn_environment"] == {
        "UVICORN_WS_PING_INTERVAL": "20", "UVICORN_WS_PER_MESSAGE_DEFLATE": "true",
    }
    assert role_defaults("django_app", layout="daphne")["django_app_redis_url"] == ""
    assert role_defaults("django_app", layout="uvicorn")["django_app_redis_url"] == "redis://127.0.0.1:6379/0"
    moved = role_defaults("uvicorn", layout="uvicorn", wslab_app_root="/srv/app", wslab_max_connections=10_000)
    assert (moved["uvicorn_venv"], moved["uvicorn_chdir"]) == ("/srv/app/venv", "/srv/app/app")
    assert moved["uvicorn_limit_nofile"] == 11_024


def test_an_inventory_value_wins_over_a_derived_default():
    assert role_defaults("gunicorn", layout="wsgi", gunicorn_workers=8)["gunicorn_workers"] == 8
    assert role_defaults("nginx", nginx_worker_connections=100_000)["nginx_limit_nofile"] == 200_000


def test_contradictions_name_the_variable_and_the_fact_to_set():
    bound = {"gunicorn_bind": ["wslab_app_binds.gunicorn", "127.0.0.1:8000"], "redis_port": ["wslab_redis_port", 6379]}
    assert settings.wslab_contradictions(bound, {"gunicorn_bind": None, "redis_port": "6379"}) == []
    (error,) = settings.wslab_contradictions(bound, {"gunicorn_bind": "127.0.0.1:9000", "redis_port": 6379})
    assert error == (
        "gunicorn_bind is '127.0.0.1:9000', but the other roles follow wslab_app_binds.gunicorn, which makes it "
        "'127.0.0.1:8000'; set wslab_app_binds.gunicorn instead and leave gunicorn_bind unset"
    )
    paths = {"uvicorn_read_write_paths": ["wslab_app_state_dir", ["/var/lib/wslab"]]}
    assert settings.wslab_contradictions(paths, {"uvicorn_read_write_paths": ["/var/lib/wslab"]}) == []
    assert settings.wslab_contradictions(paths, {"uvicorn_read_write_paths": ["/srv"]}) != []


def test_pings_must_come_before_the_read_timeout():
    timeout = ("nginx_proxy_read_timeout", 30)
    assert settings.wslab_ping_errors(timeout, {"daphne_ping_interval": 20, "uvicorn_ws_ping_interval": 0}) == []
    (error,) = settings.wslab_ping_errors(timeout, {"uvicorn_ws_ping_interval": "30"})
    assert error.startswith("uvicorn_ws_ping_interval (30s) must be below nginx_proxy_read_timeout (30s)")
    assert settings.wslab_ping_errors(("nginx_proxy_read_timeout", "soon"), {}) == [
        "nginx_proxy_read_timeout must be a number of seconds, got 'soon'"
    ]


def test_the_skeletons_defaults_are_its_documented_inputs():
    """roles/app_server: every default is an optional input of the entry point that reads it."""
    specs = yaml.safe_load((ROLES_DIR / "app_server/meta/argument_specs.yml").read_text())["argument_specs"]
    options = {**specs["unit"]["options"], **specs["service"]["options"]}
    for name, value in raw_defaults("app_server").items():
        assert options[name].get("default") == value, name
        assert not options[name].get("required"), name


@pytest.mark.parametrize(
    ("server", "layout", "bind", "listens"),
    [
        ("gunicorn", "wsgi", "127.0.0.1:8000", "--bind 127.0.0.1:8000"),
        ("daphne", "daphne", "127.0.0.1:8001", "-e tcp:port=8001:interface=127.0.0.1:backlog=2048"),
        ("daphne", "daphne", "[::1]:8001", "-b ::1 -p 8001"),
        ("uvicorn", "uvicorn", "[::1]:8002", "--host ::1 --port 8002"),
        # A unix socket comes from systemd: Gunicorn finds it in LISTEN_FDS by
        # itself, Daphne and Uvicorn are told to take descriptor 3.
        ("gunicorn", "wsgi", "unix:/run/wslab-gunicorn/gunicorn.sock", "--bind unix:/run/wslab-gunicorn/gunicorn.sock"),
        ("daphne", "daphne", "unix:/run/wslab-daphne/daphne.sock", "-e systemd:domain=UNIX:index=0"),
        ("uvicorn", "uvicorn", "unix:/run/wslab-uvicorn/uvicorn.sock", "--fd 3"),
    ],
)
def test_the_skeleton_writes_each_servers_unit(server, layout, bind, listens):
    binds = {"gunicorn": "127.0.0.1:8000", "daphne": "127.0.0.1:8001", "uvicorn": "127.0.0.1:8002", server: bind}
    unit = app_server_unit(server, layout=layout, wslab_app_binds=binds, wslab_max_connections=2000)
    assert f"\nEnvironment=WSLAB_SERVER={server} PYTHONDONTWRITEBYTECODE=1\n" in unit
    assert f"\n    {listens} \\\n" in unit
    facts = raw_defaults("wslab")
    assert f"\nExecStart={facts['wslab_app_root']}/venv/bin/{server} \\\n" in unit
    assert "\nLimitNOFILE=3024\n" in unit
    assert (f"\nRequires=wslab-{server}.socket\n" in unit) == bind.startswith("unix:")
    assert "RuntimeDirectory" not in unit
    # The sandbox every server shares.
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=",
                 f"ReadWritePaths={facts['wslab_app_state_dir']}"):
        assert f"\n{line}\n" in unit, line


@pytest.mark.parametrize("server", ["gunicorn", "daphne", "uvicorn"])
def test_a_unix_bind_gets_a_socket_unit_only_the_app_and_nginx_may_use(server):
    path = f"/run/wslab-{server}/{server}.sock"
    binds = {"gunicorn": "127.0.0.1:8000", "daphne": "127.0.0.1:8001", "uvicorn": "127.0.0.1:8002", server: f"unix:{path}"}
    socket_unit = app_server_unit(server, wslab_app_binds=binds, kind="socket")
    facts = raw_defaults("wslab")
    for line in (f"ListenStream={path}", f"SocketUser={facts['wslab_app_user']}",
                 f"SocketGroup={facts['wslab_proxy_user']}", "SocketMode=0660",
                 f"PartOf=wslab-{server}.service"):
        assert f"\n{line}\n" in socket_unit, line
    # Its directory, made at every boot, admits the same two only.
    tmpfiles = app_server_unit(server, wslab_app_binds=binds, kind="tmpfiles")
    assert f"\nd /run/wslab-{server} 0750 {facts['wslab_app_user']} {facts['wslab_proxy_user']} -\n" in tmpfiles


@pytest.mark.parametrize("entry_point", ["unit", "service", "preflight"])
@pytest.mark.parametrize(
    ("server", "layout"),
    [(server, layout) for layout in layout_names() for server in load_layout(layout)["servers"]],
)
def test_each_server_hands_the_skeleton_inputs_its_argument_specs_accept(server, layout, entry_point):
    """The server roles include roles/app_server without Ansible's own
    validation (rolespec_validate: false: their own settings are validated),
    so what they hand it is checked here against its argument_specs."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    spec = yaml.safe_load((ROLES_DIR / "app_server/meta/argument_specs.yml").read_text())["argument_specs"]
    options = spec[entry_point]["options"]
    inputs = app_server_inputs(server, layout=layout, tasks_from=entry_point)
    result = ArgumentSpecValidator(options).validate({name: inputs[name] for name in options if name in inputs})
    assert not result.error_messages, result.error_messages
    required = {name for name, option in options.items() if option.get("required")}
    assert required <= set(inputs), required - set(inputs)
    # What the preflight checks is what the unit gets.
    unit = app_server_inputs(server, layout=layout)
    assert {name: value for name, value in inputs.items() if name in unit} == {
        name: unit[name] for name in inputs if name in unit}


def test_https_only_and_hsts_reach_the_apps_env_file():
    """django_app's HTTPS settings become the env variables the sample app's
    settings read (sample_app/labsite/settings.py); HSTS follows the project's
    wslab_hsts_max_age, as nginx's header does."""
    from wslab.roles import _role_context

    lab = _role_context("django_app", "daphne", {"django_app_secret_key": "k"})["_django_app_env"]
    assert (lab["DJANGO_HTTPS_ONLY"], lab["DJANGO_HSTS_INCLUDE_SUBDOMAINS"], lab["DJANGO_HSTS_PRELOAD"]) == ("0", "0", "0")
    site = _role_context("django_app", "daphne", {
        "django_app_secret_key": "k", "django_app_https_only": True, "wslab_hsts_max_age": 600,
        "django_app_hsts_include_subdomains": True,
    })["_django_app_env"]
    assert (site["DJANGO_HTTPS_ONLY"], site["DJANGO_HSTS_SECONDS"], site["DJANGO_HSTS_INCLUDE_SUBDOMAINS"]) == ("1", 600, "1")
    assert role_defaults("nginx", wslab_hsts_max_age=600)["nginx_tls_hsts_max_age"] == 600


@pytest.mark.parametrize(
    "bind", ["127.0.0.1:8001", "[::1]:8001", "unix:/run/wslab-daphne/daphne.sock"],
)
def test_daphnes_instances_listen_where_nginx_sends_them(bind):
    """The daphne role's instances (its Jinja) take the addresses nginx's
    upstream lists (wslab/layout.py), each on a socket systemd opens."""
    binds = {"gunicorn": "127.0.0.1:8000", "daphne": bind, "uvicorn": "127.0.0.1:8002"}
    inputs = app_server_inputs("daphne", layout="split-daphne", wslab_app_binds=binds)
    definition = load_layout("split-daphne")
    assert inputs["app_server_instance_binds"] == server_binds(definition, binds)["daphne"]
    unit = app_server_unit("daphne", layout="split-daphne", wslab_app_binds=binds)
    domain = "UNIX" if bind.startswith("unix:") else "INET6" if bind.startswith("[") else "INET"
    assert f"\n    -e systemd:domain={domain}:index=0 \\\n" in unit
    assert "\nRequires=wslab-daphne@%i.socket\n" in unit
    assert "\nDescription=Daphne (ASGI) serving labsite.asgi:application, instance %i\n" in unit
    for number, address in enumerate(inputs["app_server_instance_binds"], start=1):
        socket_unit = app_server_unit("daphne", layout="split-daphne", wslab_app_binds=binds, kind="socket",
                                      instance=number)
        assert f"\nListenStream={address.removeprefix('unix:')}\n" in socket_unit
        assert f"\nPartOf=wslab-daphne@{number}.service\n" in socket_unit
        assert ("\nSocketMode=0660\n" in socket_unit) == bind.startswith("unix:")


def test_one_daphne_process_keeps_one_service():
    inputs = app_server_inputs("daphne", layout="daphne")
    assert inputs["app_server_instance_binds"] == []
    unit = app_server_unit("daphne", layout="daphne")
    assert "@" not in unit.split("[Service]")[0]
