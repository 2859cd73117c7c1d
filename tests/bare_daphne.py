"""A bare Daphne on 127.0.0.1 serving the sample app, for the tests that need a
real server without a deployment (the echo page's browser test, the bench
client's): started, stopped and started again on the same port, the way a
restart looks to a client. Every wait is bounded; every process started here
is stopped (cleanup) by the fixture that made it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

HOST = "127.0.0.1"
# What the app is told it is deployed as (WSLAB_LAYOUT): no layout of the lab's.
BARE_LAYOUT = "bare-daphne"
REPO = Path(__file__).resolve().parents[1]
SAMPLE_APP = REPO / "sample_app"
START_TIMEOUT = 60.0  # bounds that hold on a busy machine; a passing run waits only as long as it takes
STOP_TIMEOUT = 30.0


def _stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process started in its own session, and its children, by group id."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _daphne() -> str:
    beside_python = Path(sys.executable).parent / "daphne"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("daphne")
    if found is None:
        pytest.fail("daphne is not installed in the test venv")
    return found


def _app_env(tmp: Path, layout: str, pythonpath: Sequence[Path]) -> dict[str, str]:
    # The deployed configuration interface (labsite/settings.py), and nothing
    # inherited: pytest-django has set DJANGO_SETTINGS_MODULE to the test
    # settings in this process.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "WSLAB_", "REDIS_", "PYTHON"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="labsite.settings",
        DJANGO_SECRET_KEY="django-insecure-wslab-browser-test-key-not-a-secret",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_DATABASE_PATH=str(tmp / "db.sqlite3"),
        WSLAB_SERVER="daphne",
        WSLAB_LAYOUT=layout,
        PYTHONPATH=os.pathsep.join([str(SAMPLE_APP), *map(str, pythonpath)]),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


class AppServer:
    """An ASGI app under Daphne on one fixed port, stoppable and restartable:
    by default the sample app's, told it is deployed as the given layout;
    pythonpath adds folders (an app of a test's own)."""

    def __init__(self, tmp: Path, app: str = "labsite.asgi:application", layout: str = BARE_LAYOUT,
                 pythonpath: Sequence[Path] = ()) -> None:
        self.app = app
        self.layout = layout
        self.pythonpath = tuple(pythonpath)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}/"
        self.tmp = tmp
        self.log_path = tmp / "daphne.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [
                    _daphne(),
                    "-b",
                    HOST,
                    "-p",
                    str(self.port),
                    self.app,
                ],
                cwd=SAMPLE_APP,
                env=_app_env(self.tmp, self.layout, self.pythonpath),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def _answers(self) -> bool:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, self.port), 1.0
            )
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(
                f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), 2.0)
            return status.startswith(b"HTTP/1.1 200")
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()

    async def start(self) -> float:
        """Start Daphne; return the monotonic time it started answering /healthz."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._spawn()
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while not await self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"daphne did not start on port {self.port} "
                    f"(exit {self.proc.poll()}):\n{self.log()}"
                )
            await asyncio.sleep(0.05)
        return time.monotonic()

    async def stop(self) -> int:
        """Terminate Daphne (SIGTERM, as systemd stops it); return its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                _stop_group(self.proc, signal.SIGKILL)
                raise RuntimeError(f"daphne ignored SIGTERM for {STOP_TIMEOUT:.0f} s")
            await asyncio.sleep(0.05)
        return self.proc.returncode

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )

    def cleanup(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)
