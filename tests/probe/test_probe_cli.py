"""``python -m wslab.probe`` as an operator runs it: a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLI_BOUND = 30.0

WsServer = Callable[..., Awaitable[int]]
HttpServer = Callable[..., int]


async def run_cli(*args: str) -> tuple[int, str, str]:
    """Run the probe CLI; the servers keep running in this test's loop meanwhile."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wslab.probe",
        *args,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), CLI_BOUND)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture
async def echo_url(ws_server: WsServer) -> str:
    return f"http://127.0.0.1:{await ws_server()}/"


@pytest.fixture
def wsgi_url(http_server: HttpServer) -> str:
    port = http_server(
        404, {"X-Wslab-Interface": "wsgi", "X-Wslab-Server": "gunicorn"}, b"Not Found"
    )
    return f"http://127.0.0.1:{port}/"


async def test_json_record(echo_url: str) -> None:
    code, stdout, stderr = await run_cli(echo_url, "--json", "--hold", "0.2")

    assert code == 0, stderr
    record = json.loads(stdout)
    assert record["verdict"] == "open"
    assert record["url"] == echo_url
    assert record["handshake_status"] == 101
    assert record["echo_ok"] is True
    assert record["hold_requested_s"] == 0.2
    assert record["message"].startswith("OPEN: ")
    for field in (
        "ws_url",
        "http_status",
        "http_interface",
        "http_server",
        "handshake_interface",
        "handshake_server",
        "handshake_body_excerpt",
        "opened",
        "rtt_ms",
        "held_s",
        "closed_early",
        "close_code",
        "close_reason",
        "error",
    ):
        assert field in record


async def test_human_line(wsgi_url: str) -> None:
    code, stdout, _ = await run_cli(wsgi_url)

    assert code == 1
    lines = stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "REJECTED: HTTP 404 from upstream (served by gunicorn over WSGI)"
    )


async def test_expect_rejected(wsgi_url: str, echo_url: str) -> None:
    assert (await run_cli(wsgi_url, "--expect", "rejected"))[0] == 0
    assert (await run_cli(echo_url, "--expect", "rejected"))[0] == 1


async def test_expect_open(wsgi_url: str, echo_url: str) -> None:
    assert (await run_cli(echo_url, "--expect", "open"))[0] == 0
    assert (await run_cli(wsgi_url, "--expect", "open"))[0] == 1


async def test_unreachable_is_not_a_rejection(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/"
    code, stdout, _ = await run_cli(url, "--expect", "rejected", "--timeout", "2")
    assert code == 1
    assert stdout.startswith("UNREACHABLE: ")


async def test_origin_none(ws_server: WsServer) -> None:
    port = await ws_server(origins=[None])  # accepts only handshakes without Origin
    url = f"http://127.0.0.1:{port}/"

    code, stdout, _ = await run_cli(url, "--origin", "none", "--json")
    assert code == 0
    assert json.loads(stdout)["origin_sent"] is None

    code, stdout, _ = await run_cli(url, "--json")
    assert code == 1
    assert json.loads(stdout)["verdict"] == "origin-rejected"


@pytest.mark.parametrize(
    "args",
    [
        ("ftp://127.0.0.1/",),
        ("http://127.0.0.1/", "--hold", "-1"),
        ("http://127.0.0.1/", "--ws-path", "no-slash"),
        ("http://127.0.0.1/", "--expect", "sometimes"),
    ],
)
async def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    code, stdout, stderr = await run_cli(*args)
    assert code == 2
    assert stdout == ""
    assert "usage:" in stderr
