"""The Gunicorn worker class that makes uvicorn's WebSocket pings settable."""

import json
import os
import subprocess
import sys
from pathlib import Path

SAMPLE_APP = Path(__file__).resolve().parents[2] / "sample_app"
DUMP = "import json; from labsite.workers import UvicornWorker as W; print(json.dumps(W.CONFIG_KWARGS))"


def _config_kwargs(**env):
    result = subprocess.run(
        [sys.executable, "-c", DUMP],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(SAMPLE_APP), "PYTHONDONTWRITEBYTECODE": "1", **env},
        capture_output=True, text=True, timeout=60, check=True,
    )
    return json.loads(result.stdout)


def test_pings_default_to_uvicorns_own_interval():
    kwargs = _config_kwargs()
    assert kwargs["ws_ping_interval"] == 20.0
    assert kwargs["loop"] == "auto"  # the parent's settings are kept


def test_pings_follow_the_environment():
    kwargs = _config_kwargs(UVICORN_WS_PING_INTERVAL="2", UVICORN_WS_PING_TIMEOUT="7.5")
    assert kwargs["ws_ping_interval"] == 2.0
    assert kwargs["ws_ping_timeout"] == 7.5
