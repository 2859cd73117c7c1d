"""The Gunicorn worker class that makes uvicorn's WebSocket pings and compression settable."""

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


def test_compression_is_offered_unless_the_environment_says_false():
    assert _config_kwargs()["ws_per_message_deflate"] is True
    assert _config_kwargs(UVICORN_WS_PER_MESSAGE_DEFLATE="false")["ws_per_message_deflate"] is False
    assert _config_kwargs(UVICORN_WS_PER_MESSAGE_DEFLATE="True")["ws_per_message_deflate"] is True


def test_a_compression_setting_that_is_not_a_boolean_stops_the_worker():
    result = subprocess.run(
        [sys.executable, "-c", DUMP],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(SAMPLE_APP), "PYTHONDONTWRITEBYTECODE": "1",
             "UVICORN_WS_PER_MESSAGE_DEFLATE": "yes please"},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert "UVICORN_WS_PER_MESSAGE_DEFLATE must be true or false, got 'yes please'" in result.stderr
