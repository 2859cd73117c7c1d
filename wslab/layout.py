"""The layouts: their definitions in layouts/ (the files the playbooks deploy),
and their schema, the one place that says what a definition may hold.

Imported by Ansible (roles/wslab/filter_plugins/wslab_layout.py: the preflight
and the nginx wiring), the scenario runner, the matrix, the Molecule suites and
the tests. Kept in Python rather than Jinja so each rule reads as one line and
pytest can exercise it without a playbook run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
LAYOUTS_DIR = PROJECT_DIR / "layouts"


def layout_names(directory: Path = LAYOUTS_DIR) -> list[str]:
    return sorted(path.stem for path in directory.glob("*.yml"))


def load_layout(name: str, directory: Path = LAYOUTS_DIR) -> dict[str, Any]:
    path = directory / f"{name}.yml"
    if not path.is_file():
        known = ", ".join(layout_names(directory))
        raise KeyError(f"unknown layout {name!r}; known: {known}")
    with path.open() as handle:
        return yaml.safe_load(handle)


# Server role -> the interfaces it can speak to Django.
SERVER_INTERFACES = {
    "gunicorn": {"wsgi", "asgi"},  # asgi only with an ASGI worker class
    "daphne": {"asgi"},
    "uvicorn": {"asgi"},
}
# The stock Uvicorn worker classes ping idle WebSockets every 20 s, uvicorn's
# default, and Gunicorn cannot change it; the sample app's subclass reads the
# interval from the environment the gunicorn role sets.
STOCK_UVICORN_WORKERS = {"uvicorn_worker.UvicornWorker", "uvicorn.workers.UvicornWorker"}
STOCK_UVICORN_PING_INTERVAL = 20
GUNICORN_ASGI_WORKERS = STOCK_UVICORN_WORKERS | {"labsite.workers.UvicornWorker"}
CHANNEL_LAYERS = {"memory", "redis"}
# The options a layout may give a server (servers.<name>.options), which the
# server's role reads (roles/gunicorn/defaults/main.yml); anything else would
# be silently ignored, so it is refused. Every other setting of a server is a
# role variable, set in the inventory.
SERVER_OPTIONS = {"gunicorn": {"worker_class"}, "daphne": set(), "uvicorn": set()}
# Servers that run one process per systemd instance, each on its own socket,
# with nginx spreading connections over them (Daphne has no worker processes);
# Gunicorn and Uvicorn run their processes behind one socket instead.
INSTANCE_SERVERS = {"daphne"}
_BIND_TCP = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")
# The path the lab's WebSocket routes live under (sample_app/echo/routing.py).
WS_PATH = "/ws/"
# proxy_http_version values nginx accepts.
HTTP_VERSIONS = {"1.0", "1.1"}
_WILDCARD_HOSTS = {"0.0.0.0", "[::]", "::", "*"}
_BIND_UNIX = re.compile(r"^unix:/run/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+\.sock$")


def bind_errors(bind: Any, server: str) -> list[str]:
    """Problems with one `wslab_app_binds` value (empty when it is usable)."""
    if not isinstance(bind, str):
        return [f"wslab_app_binds.{server} must be a string, got {bind!r}"]
    if _BIND_UNIX.match(bind):
        return []
    match = _BIND_TCP.match(bind)
    if match and 0 < int(match["port"]) < 65536:
        return []
    return [
        f"wslab_app_binds.{server} is {bind!r}: use HOST:PORT (e.g. 127.0.0.1:8001) "
        "or unix:/run/DIR/NAME.sock (systemd creates it, 0660, for nginx's group only)"
    ]


def _binds_collide(first: str, second: str) -> bool:
    """Whether two valid binds would fight over one address."""
    if first.startswith("unix:") or second.startswith("unix:"):
        return first == second
    (host_a, port_a), (host_b, port_b) = (bind.rsplit(":", 1) for bind in (first, second))
    if int(port_a) != int(port_b):
        return False
    return host_a == host_b or host_a in _WILDCARD_HOSTS or host_b in _WILDCARD_HOSTS


def layout_errors(
    definition: Any,
    layout: str,
    binds: dict[str, Any],
    read_timeout: int,
    ping_interval: int,
) -> list[str]:
    """Everything wrong with a layout and the values it will be deployed with.

    Returns messages that name the variable or key to change; an empty list
    means the layout can be deployed.
    """
    if not isinstance(definition, dict):
        return [f"layouts/{layout}.yml must be a mapping"]
    errors: list[str] = []
    where = f"layouts/{layout}.yml"
    if definition.get("name") != layout:
        errors.append(f"{where}: name is {definition.get('name')!r}, expected {layout!r} (the file name)")

    summary = definition.get("summary")
    if not isinstance(summary, str) or not summary.strip() or "\n" in summary.strip():
        errors.append(f"{where}: summary must be one line that says what the layout runs (the README's table shows it)")

    servers = definition.get("servers")
    if not isinstance(servers, dict) or not servers:
        return errors + [f"{where}: servers must name at least one of {sorted(SERVER_INTERFACES)}"]
    for name, spec in servers.items():
        if name not in SERVER_INTERFACES:
            errors.append(f"{where}: unknown server {name!r}; known: {sorted(SERVER_INTERFACES)}")
            continue
        spec = spec or {}
        interface = spec.get("interface")
        if interface not in SERVER_INTERFACES[name]:
            errors.append(
                f"{where}: servers.{name}.interface is {interface!r}; "
                f"{name} speaks {sorted(SERVER_INTERFACES[name])}"
            )
        options = spec.get("options") or {}
        unknown = sorted(set(options) - SERVER_OPTIONS[name]) if isinstance(options, dict) else ["(not a mapping)"]
        if unknown:
            known = ", ".join(sorted(SERVER_OPTIONS[name])) or "none"
            errors.append(
                f"{where}: servers.{name}.options has {', '.join(unknown)}, which no role reads "
                f"(options a layout may give {name}: {known}); set the role's variables in the inventory instead"
            )
            options = {}
        worker_class = options.get("worker_class", "sync")
        if name == "gunicorn" and interface == "asgi" and worker_class not in GUNICORN_ASGI_WORKERS:
            errors.append(
                f"{where}: gunicorn with interface asgi needs options.worker_class "
                f"uvicorn_worker.UvicornWorker (got {worker_class!r})"
            )
        if (
            name == "gunicorn"
            and worker_class in STOCK_UVICORN_WORKERS
            and isinstance(read_timeout, int)
            and STOCK_UVICORN_PING_INTERVAL >= read_timeout
        ):
            errors.append(
                f"{where}: gunicorn's {worker_class} pings idle WebSockets every "
                f"{STOCK_UVICORN_PING_INTERVAL}s whatever wslab_ws_ping_interval says, which is not below "
                f"wslab_proxy_read_timeout ({read_timeout}s); use labsite.workers.UvicornWorker or raise "
                "the read timeout"
            )
        if name == "gunicorn" and interface == "wsgi" and worker_class in GUNICORN_ASGI_WORKERS:
            errors.append(f"{where}: gunicorn worker_class {worker_class} serves ASGI; set interface: asgi")
        processes = spec.get("processes", 1)
        if not isinstance(processes, int) or processes < 1:
            errors.append(f"{where}: servers.{name}.processes must be a positive integer")
        if name not in binds:
            errors.append(f"wslab_app_binds has no entry for {name!r}, which the layout runs")
        else:
            problems = bind_errors(binds[name], name)
            errors.extend(problems)
            if not problems and _processes(name, spec) > 1:
                last = instance_binds(binds[name], processes)[-1]
                if not last.startswith("unix:") and int(last.rsplit(":", 1)[1]) > 65535:
                    errors.append(
                        f"wslab_app_binds.{name} is {binds[name]!r}: its {processes} processes listen on "
                        f"{processes} ports from there, past 65535; lower the port"
                    )

    channel_layer = definition.get("channel_layer", "memory")
    if channel_layer not in CHANNEL_LAYERS:
        errors.append(f"{where}: channel_layer is {channel_layer!r}; use one of {sorted(CHANNEL_LAYERS)}")
    asgi_processes = sum(
        spec.get("processes", 1)
        for spec in servers.values()
        if isinstance(spec, dict)
        and spec.get("interface") == "asgi"
        and isinstance(spec.get("processes", 1), int)
    )
    if channel_layer == "memory" and asgi_processes > 1:
        errors.append(
            f"{where}: {asgi_processes} ASGI processes share the in-memory channel layer, so a "
            "group message reaches only clients of the same process; set channel_layer: redis"
        )

    routes = definition.get("routes")
    if not isinstance(routes, list) or not routes:
        errors.append(f"{where}: routes must list at least one nginx location")
        routes = []
    seen_paths: set[str] = set()
    expected_verdict = ((definition.get("expect") or {}).get("websocket") or {}).get("verdict")
    usable: list[tuple[int, dict[str, Any]]] = []
    for index, route in enumerate(routes):
        if not isinstance(route, dict):
            errors.append(f"{where}: routes[{index}] must be a mapping")
            continue
        path = route.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            errors.append(f"{where}: routes[{index}].path must start with '/'")
            continue
        if path in seen_paths:
            errors.append(f"{where}: routes[{index}].path {path} appears twice")
        seen_paths.add(path)
        if route.get("server") not in servers:
            errors.append(
                f"{where}: routes[{index}].server {route.get('server')!r} is not one of servers {sorted(servers)}"
            )
            continue
        if not isinstance(route.get("websocket", False), bool):
            errors.append(f"{where}: routes[{index}].websocket must be true or false")
            continue
        if route.get("http_version", "1.1") not in HTTP_VERSIONS:
            errors.append(f"{where}: routes[{index}].http_version must be one of {sorted(HTTP_VERSIONS)}")
            continue
        usable.append((index, route))

    # A layout that promises open WebSockets must send /ws/ (by nginx's
    # longest-prefix rule) to an ASGI server, through a location that forwards
    # the upgrade. The wsgi and broken-proxy layouts break these on purpose,
    # and say so in their expectation.
    if expected_verdict == "open" and usable:
        matching = [(i, r) for i, r in usable if WS_PATH.startswith(r["path"])]
        if not matching:
            errors.append(f"{where}: no route serves {WS_PATH}, yet the layout expects WebSockets to open")
        else:
            index, route = max(matching, key=lambda item: len(item[1]["path"]))
            server = route["server"]
            served = f"routes[{index}] (path {route['path']})"
            if (servers[server] or {}).get("interface") == "wsgi":
                errors.append(
                    f"{where}: {served} sends {WS_PATH} to {server}, a WSGI server, which cannot hold "
                    "a WebSocket; route it to daphne or uvicorn"
                )
            elif not route.get("websocket", False):
                errors.append(
                    f"{where}: {served} serves {WS_PATH} without websocket: true, so nginx would drop "
                    "the Upgrade and Connection headers; set websocket: true on it"
                )

    expect = definition.get("expect")
    if not isinstance(expect, dict) or "http" not in expect or "websocket" not in expect:
        errors.append(f"{where}: expect must give http and websocket expectations")

    bound = [
        (name, bind)
        for name, spec in servers.items()
        if name in binds and not bind_errors(binds[name], name)
        for bind in instance_binds(binds[name], _processes(name, spec))
    ]
    for position, (name, bind) in enumerate(bound):
        for other, other_bind in bound[position + 1 :]:
            if _binds_collide(bind, other_bind):
                errors.append(
                    f"wslab_app_binds: {name} listens on {bind} and {other} on {other_bind}, "
                    "which is the same address; give each server its own port or socket"
                )

    if not isinstance(ping_interval, int) or not isinstance(read_timeout, int):
        errors.append("wslab_ws_ping_interval and wslab_proxy_read_timeout must be integers (seconds)")
    elif ping_interval >= read_timeout:
        errors.append(
            f"wslab_ws_ping_interval ({ping_interval}s) must be below wslab_proxy_read_timeout "
            f"({read_timeout}s), or nginx closes idle WebSockets before the server's ping keeps them alive"
        )
    return errors


def _processes(name: str, spec: Any) -> int:
    """The processes a layout gives server NAME, as instance_binds counts them
    (1 for a server that shares one socket among its workers, or for a value
    layout_errors refuses)."""
    processes = spec.get("processes", 1) if isinstance(spec, dict) else 1
    return processes if name in INSTANCE_SERVERS and isinstance(processes, int) and processes > 1 else 1


def instance_binds(bind: str, processes: int) -> list[str]:
    """Where each of PROCESSES instances of a server in INSTANCE_SERVERS
    listens, from its wslab_app_binds value: the bind itself for one; for
    more, consecutive ports from the bind's (127.0.0.1:8001, 127.0.0.1:8002,
    ...) or numbered sockets beside it (unix:/run/wslab-daphne/daphne-1.sock,
    ...-2.sock, ...)."""
    if processes <= 1:
        return [bind]
    if bind.startswith("unix:"):
        stem = bind.removesuffix(".sock")
        return [f"{stem}-{number}.sock" for number in range(1, processes + 1)]
    host, port = bind.rsplit(":", 1)
    return [f"{host}:{int(port) + offset}" for offset in range(processes)]


def server_binds(definition: dict[str, Any], binds: dict[str, str]) -> dict[str, list[str]]:
    """Every address each server of the layout listens on (one per instance)."""
    return {
        name: instance_binds(binds[name], _processes(name, spec)) for name, spec in definition["servers"].items()
    }


def server_units(definition: dict[str, Any], service_prefix: str = "wslab-") -> dict[str, list[str]]:
    """The systemd services that run each server of the layout: wslab-<server>,
    or for a server in INSTANCE_SERVERS with several processes one instance of
    the template unit wslab-<server>@.service per process, numbered from 1
    (roles/app_server)."""
    units = {}
    for name, spec in definition["servers"].items():
        processes = _processes(name, spec)
        units[name] = (
            [f"{service_prefix}{name}@{number}" for number in range(1, processes + 1)]
            if processes > 1
            else [f"{service_prefix}{name}"]
        )
    return units


def unit_file(unit: str) -> str:
    """The file a server's service comes from: its own, or an instance's template."""
    return f"/etc/systemd/system/{unit.split('@', 1)[0]}{'@' if '@' in unit else ''}.service"


# How nginx lists a server's instances: never marked down after a failed
# connection (nginx's default, max_fails=1, shuts an address out for
# fail_timeout, 10 s). A stopped instance refuses at once and nginx tries the
# next (proxy_next_upstream); one that is back, or whose socket systemd kept
# open while it restarted, takes connections at once, where the default
# answered 502 for 10 s after a restart of every instance.
INSTANCE_UPSTREAM_PARAMETERS = "max_fails=0"


def nginx_upstreams(definition: dict[str, Any], binds: dict[str, str]) -> list[dict[str, Any]]:
    """nginx upstream blocks for the servers the layout's routes use: one
    server line per instance of the server."""
    used = []
    for route in definition["routes"]:
        if route["server"] not in used:
            used.append(route["server"])
    addresses = server_binds(definition, binds)
    return [
        {
            "name": server,
            "servers": addresses[server]
            if len(addresses[server]) == 1
            else [f"{address} {INSTANCE_UPSTREAM_PARAMETERS}" for address in addresses[server]],
        }
        for server in used
    ]


def nginx_locations(definition: dict[str, Any]) -> list[dict[str, Any]]:
    """nginx proxied locations, in the layout's order."""
    locations = []
    for route in definition["routes"]:
        location = {
            "path": route["path"],
            "upstream": route["server"],
            "websocket": bool(route.get("websocket", False)),
        }
        if "http_version" in route:
            location["http_version"] = str(route["http_version"])
        locations.append(location)
    return locations
