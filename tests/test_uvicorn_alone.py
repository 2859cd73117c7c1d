"""Each server role works alone: examples/uvicorn-alone/playbook.yml uses only
roles/uvicorn (with a venv and an app it brings itself) and deploys a running,
sandboxed unit into a systemd container, none of the lab's other roles or
project facts involved. Checked with real requests from inside the container.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from wslab.containers import base_image, docker, systemd_options
from wslab.layout import PROJECT_DIR
from wslab.playbook_output import recaps, tasks_run
from wslab.scenarios import MITOGEN_HOST_VARS, mitogen_env

EXAMPLE_DIR = PROJECT_DIR / "examples" / "uvicorn-alone"
PLAYBOOK = EXAMPLE_DIR / "playbook.yml"
SUITE = "bookworm"
# On the seeded image, python3-venv is in place; pip still fetches the
# example's own lock (through the pip cache the scenarios share).
CACHE_DIR = Path(os.environ.get("WSLAB_CACHE_DIR", "/var/cache/wslab"))
# Bounds that hold on a busy machine; none of them is a verdict on speed.
RUN_TIMEOUT = 300
LISTEN_DEADLINE = 60.0


def _play_vars() -> dict:
    (play,) = yaml.safe_load(PLAYBOOK.read_text())
    return play["vars"]


@pytest.fixture
def host() -> Iterator[str]:
    """A fresh systemd container; its name."""
    image = base_image(SUITE, seeded=True)
    name = f"wslab-uvicorn-alone-{secrets.token_hex(4)}"
    (CACHE_DIR / "pip").mkdir(parents=True, exist_ok=True)
    docker(
        "run", "--detach", "--name", name, *systemd_options(),
        f"--volume={CACHE_DIR / 'pip'}:/root/.cache/pip:rw", image, "/lib/systemd/systemd",
    )  # fmt: skip
    try:
        yield name
    finally:
        docker("rm", "--force", name, check=False)


def _deploy(host: str, tmp_path: Path) -> str:
    inventory = tmp_path / "hosts.yml"
    # Through Mitogen's strategy, as the seeded scenarios run (wslab.scenarios.mitogen_env).
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {host: MITOGEN_HOST_VARS}}}))
    result = subprocess.run(
        [str(PROJECT_DIR / ".venv/bin/ansible-playbook"), str(PLAYBOOK), "-i", str(inventory)],
        cwd=PROJECT_DIR,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", **mitogen_env()),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _in_host(host: str, *command: str) -> subprocess.CompletedProcess:
    return docker("exec", host, *command, check=False)


def _until_listening(host: str, url: str) -> str:
    """The body of GET url, once Uvicorn (started, with Type=exec, before it binds) answers."""
    fetch = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode(), end='')"
    deadline = time.monotonic() + LISTEN_DEADLINE
    while True:
        answer = _in_host(host, "python3", "-c", fetch)
        if answer.returncode == 0 or time.monotonic() > deadline:
            assert answer.returncode == 0, answer.stderr
            return answer.stdout
        time.sleep(0.5)


def _properties(host: str, service: str, *names: str) -> dict[str, str]:
    shown = _in_host(host, "systemctl", "show", service, *(f"--property={name}" for name in names)).stdout
    return dict(line.split("=", 1) for line in shown.splitlines())


# One test, one deployment: its checks share the container (see tests/conftest.py).
def test_the_uvicorn_role_alone_deploys_a_running_sandboxed_unit(host, tmp_path):
    settings = _play_vars()
    service, bind = settings["uvicorn_service_name"], settings["uvicorn_bind"]
    output = _deploy(host, tmp_path)

    # Only the uvicorn role (and the skeleton it includes) ran, with no project facts.
    assert {task.split(" : ")[0] for task in tasks_run(output) if " : " in task} == {"uvicorn", "app_server"}, output
    (play,) = yaml.safe_load(PLAYBOOK.read_text())
    assert play["roles"] == [{"role": "uvicorn"}]
    assert not [name for name in settings if name.startswith("wslab_")]

    # The unit runs, enabled and sandboxed, with the play's settings.
    assert _properties(
        host, service, "ActiveState", "UnitFileState", "User", "LimitNOFILE", "NoNewPrivileges", "ProtectSystem",
        "WorkingDirectory",
    ) == {
        "ActiveState": "active",
        "UnitFileState": "enabled",
        "User": settings["uvicorn_user"],
        "LimitNOFILE": str(settings["uvicorn_limit_nofile"]),
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "WorkingDirectory": "/opt/hello/app",
    }  # fmt: skip

    # The app answers over HTTP and WebSocket.
    body = _until_listening(host, f"http://{bind}/")
    assert body.startswith("hello from the uvicorn role alone from pid "), body
    echo = (
        "from websockets.sync.client import connect\n"
        f"with connect('ws://{bind}/', open_timeout=10) as ws:\n"
        "    ws.send('ping'); print(ws.recv(timeout=10), end='')\n"
    )
    answer = _in_host(host, "/opt/hello/venv/bin/python", "-c", echo)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == "hello from the uvicorn role alone: ping"

    # A second run changes nothing and leaves the server running as it was.
    main_pid = _properties(host, service, "MainPID")["MainPID"]
    again = _deploy(host, tmp_path)
    (recap,) = recaps(again)
    assert (recap["changed"], recap["failed"]) == ("0", "0"), again
    assert _properties(host, service, "MainPID")["MainPID"] == main_pid


def test_the_example_runs_the_labs_own_pins():
    """Its lock holds the versions of Uvicorn and websockets the lab's app runs (sample_app/requirements.lock)."""

    def locked(path: Path) -> dict[str, str]:
        return dict(re.findall(r"^([a-z0-9-]+)==(\S+) \\$", path.read_text(), re.M))

    app, example = locked(PROJECT_DIR / "sample_app/requirements.lock"), locked(EXAMPLE_DIR / "requirements.lock")
    asked = re.findall(r"^([a-z0-9-]+)==", (EXAMPLE_DIR / "requirements.txt").read_text(), re.M)
    assert set(asked) == {"uvicorn", "websockets"}
    assert {package: example[package] for package in asked} == {package: app[package] for package in asked}
