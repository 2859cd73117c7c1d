"""The capacity rule: can every limit on the path hold wslab_max_connections?

The nginx and app server roles derive their limits from wslab_max_connections
with room to spare (their defaults/main.yml); this filter refuses values set
in the inventory or with -e that cannot hold that many WebSockets at all,
naming the variables.

The rule, per process (the kernel may hand most connections to one nginx
worker or one app worker, so no limit is divided by a process count):

- a proxied WebSocket is two connections of one nginx worker, the client's
  and the upstream one, and every nginx listening socket takes a connection
  slot in every worker: worker_connections >= 2 x sockets + a few;
- every connection is an open file: nginx's open-file limit >= its
  worker_connections, or the worker fails with "Too many open files" first;
- an app server process holds one descriptor per WebSocket (nginx's upstream
  connection) besides its own files: LimitNOFILE >= sockets + a few dozen.
"""

from __future__ import annotations

from typing import Any

# nginx connections per proxied WebSocket: the client's and the upstream one.
NGINX_CONNECTIONS_PER_WEBSOCKET = 2
# Least spare worker connections besides the WebSockets: nginx's listening
# sockets (one slot each in every worker) and a few plain requests.
NGINX_MIN_SPARE_CONNECTIONS = 16
# Least spare open files of an app server process besides its WebSockets:
# a Python server with Django loaded holds about 30 (modules, logs, its
# listening socket, the channel layer's connections).
APP_MIN_SPARE_FILES = 64


def _count(value: Any) -> int | None:
    """A positive integer, also from "-e name=4096" (a string); None otherwise."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def wslab_min_worker_connections(max_connections: int) -> int:
    """The fewest nginx worker_connections that hold max_connections WebSockets."""
    return NGINX_CONNECTIONS_PER_WEBSOCKET * max_connections + NGINX_MIN_SPARE_CONNECTIONS


def wslab_min_app_limit_nofile(max_connections: int) -> int:
    """The lowest LimitNOFILE of an app server that holds max_connections WebSockets."""
    return max_connections + APP_MIN_SPARE_FILES


def wslab_capacity_errors(
    max_connections: Any,
    worker_connections: Any = None,
    nginx_limit_nofile: Any = None,
    app_limit_nofile: dict[str, Any] | None = None,
    servers: list[str] | None = None,
) -> list[str]:
    """Every limit that cannot hold max_connections WebSockets, as messages that
    name the variable to change. None skips a check (the role is not deployed).
    app_limit_nofile maps a server role (daphne, ...) to its <role>_limit_nofile;
    only the servers listed in servers are checked.
    """
    wanted = _count(max_connections)
    if wanted is None:
        return [f"wslab_max_connections must be a positive integer, got {max_connections!r}"]
    errors: list[str] = []
    hint = "leave it unset, and its role derives it from wslab_max_connections, or lower that"
    connections = _count(worker_connections)
    if worker_connections is not None:
        least = wslab_min_worker_connections(wanted)
        if connections is None:
            errors.append(f"nginx_worker_connections must be a positive integer, got {worker_connections!r}")
        elif connections < least:
            errors.append(
                f"nginx_worker_connections is {connections}, which cannot hold wslab_max_connections "
                f"({wanted}) WebSockets: each proxied socket is two connections of one nginx worker "
                f"(client and upstream), and one worker may get them all; it needs at least {least} ({hint})"
            )
    if nginx_limit_nofile is not None:
        files = _count(nginx_limit_nofile)
        if files is None:
            errors.append(f"nginx_limit_nofile must be a positive integer, got {nginx_limit_nofile!r}")
        elif connections is not None and files < connections:
            errors.append(
                f"nginx_limit_nofile ({files}) is below nginx_worker_connections "
                f"({connections}): every connection is an open file, so a worker would fail with "
                f"'Too many open files' before it reached worker_connections ({hint})"
            )
    least_app = wslab_min_app_limit_nofile(wanted)
    for server in servers or []:
        given = (app_limit_nofile or {}).get(server)
        if given is None:
            continue
        limit = _count(given)
        if limit is None:
            errors.append(f"{server}_limit_nofile must be a positive integer, got {given!r}")
        elif limit < least_app:
            errors.append(
                f"{server}_limit_nofile is {limit}, which cannot hold wslab_max_connections "
                f"({wanted}) WebSockets: each is an open file of the {server} process that holds "
                f"it, besides the process's own; it needs at least {least_app} ({hint})"
            )
    return errors


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"wslab_capacity_errors": wslab_capacity_errors}
