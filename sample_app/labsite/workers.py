"""Gunicorn worker classes for serving the ASGI application.

    gunicorn -k labsite.workers.UvicornWorker labsite.asgi:application

uvicorn_worker.UvicornWorker builds uvicorn's settings from Gunicorn's, and
Gunicorn has no options for WebSocket pings: every worker pings idle sockets
every 20 s, uvicorn's default, whatever the deployment needs. A proxy that
closes idle connections sooner (nginx's proxy_read_timeout) then cuts every
quiet WebSocket. This subclass reads the ping settings from the environment,
which the unit sets, and whether to offer permessage-deflate compression
(uvicorn's --ws-per-message-deflate, which Gunicorn cannot pass either): each
socket that agrees keeps a compressor and a decompressor, about half of what
a socket costs the worker (docs/bench.md).
"""

from __future__ import annotations

import os

from uvicorn_worker import UvicornWorker as _UvicornWorker


def _seconds(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value else default


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in ("true", "false"):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value == "true"


class UvicornWorker(_UvicornWorker):
    """uvicorn_worker.UvicornWorker with UVICORN_WS_PING_INTERVAL / _TIMEOUT
    (seconds) and UVICORN_WS_PER_MESSAGE_DEFLATE (true or false)."""

    CONFIG_KWARGS = {
        **_UvicornWorker.CONFIG_KWARGS,
        "ws_ping_interval": _seconds("UVICORN_WS_PING_INTERVAL", 20.0),
        "ws_ping_timeout": _seconds("UVICORN_WS_PING_TIMEOUT", 20.0),
        "ws_per_message_deflate": _flag("UVICORN_WS_PER_MESSAGE_DEFLATE", True),
    }
