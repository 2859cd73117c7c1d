"""Gunicorn worker classes for serving the ASGI application.

    gunicorn -k labsite.workers.UvicornWorker labsite.asgi:application

uvicorn_worker.UvicornWorker builds uvicorn's settings from Gunicorn's, and
Gunicorn has no options for WebSocket pings: every worker pings idle sockets
every 20 s, uvicorn's default, whatever the deployment needs. A proxy that
closes idle connections sooner (nginx's proxy_read_timeout) then cuts every
quiet WebSocket. This subclass reads the ping settings from the environment,
which the unit sets.
"""

from __future__ import annotations

import os

from uvicorn_worker import UvicornWorker as _UvicornWorker


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value else default


class UvicornWorker(_UvicornWorker):
    """uvicorn_worker.UvicornWorker with UVICORN_WS_PING_INTERVAL / _TIMEOUT (seconds)."""

    CONFIG_KWARGS = {
        **_UvicornWorker.CONFIG_KWARGS,
        "ws_ping_interval": _seconds("UVICORN_WS_PING_INTERVAL", 20.0),
        "ws_ping_timeout": _seconds("UVICORN_WS_PING_TIMEOUT", 20.0),
    }
