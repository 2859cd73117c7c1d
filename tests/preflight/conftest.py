"""A throwaway target host for the preflight tests, and the real playbook run against it.

The target is a plain container of the lab's base image (no systemd: the
preflight must fail before anything is touched, so nothing needs to run in
it), without a network (a run that gets past the preflight fails at its first
download instead of fetching anything). Ansible reaches it with the
community.docker.docker connection, i.e. `docker exec`. What a run changed on
it is read with `docker diff`, compared with a snapshot taken right after the
container started.

A test that changes the container (one that documents a gap, or the check
that changes are seen at all) leaves it dirty; the next test gets a fresh one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from wslab.containers import base_image, docker, image_name
from wslab.layout import PROJECT_DIR
from wslab.scenarios import MITOGEN_HOST_VARS, mitogen_env

IMAGE_SUITE = "bookworm"
IMAGE = image_name(IMAGE_SUITE)
ANSIBLE_BIN = PROJECT_DIR / ".venv" / "bin"
RUN_TIMEOUT = 300  # seconds per ansible run: a bound that holds on a busy machine

# A valid baseline: every test overrides one thing of it.
BASELINE_VARS: dict[str, Any] = {
    "wslab_layout": "daphne",
    "django_app_secret_key": "preflight-tests-only-key-0123456789abcdefghijklmnopqrstuvwxyz",
}


class Target:
    """One container standing in for a host of the wslab_app, wslab_proxy and wslab_redis groups."""

    def __init__(self) -> None:
        self.name = ""
        self.baseline: list[str] = []

    def start(self) -> None:
        self.name = f"wslab-preflight-{secrets.token_hex(4)}"
        docker("run", "-d", "--network", "none", "--name", self.name, IMAGE, "sleep", "infinity")
        self.baseline = self.diff()
        if self.baseline:
            warnings.warn(
                f"docker diff of a fresh {IMAGE} container is not empty; comparing with it: {self.baseline}",
                stacklevel=1,
            )

    def remove(self) -> None:
        if self.name:
            docker("rm", "--force", self.name, check=False)
            self.name = ""

    def diff(self) -> list[str]:
        """Paths added (A), changed (C) or deleted (D) since the container was created."""
        return sorted(docker("diff", self.name).stdout.splitlines())

    def changes(self) -> list[str]:
        """What changed on the host since right after it started."""
        current = self.diff()
        return [f"+ {line}" for line in current if line not in self.baseline] + [
            f"- {line}" for line in self.baseline if line not in current
        ]

    def renew_if_changed(self) -> None:
        if self.changes():
            self.remove()
            self.start()


@pytest.fixture(scope="session")
def _session_target() -> Iterator[Target]:
    base_image(IMAGE_SUITE)
    target = Target()
    target.start()
    try:
        yield target
    finally:
        target.remove()


@pytest.fixture
def target(_session_target: Target) -> Target:
    """The target host, unchanged since it started."""
    _session_target.renew_if_changed()
    return _session_target


@dataclass
class Run:
    """One finished ansible run: its command line, exit status and output."""

    command: list[str]
    returncode: int
    output: str

    @property
    def plays(self) -> list[str]:
        """Names of the plays that started, in order."""
        return re.findall(r"^PLAY \[(.*)\] \**$", self.output, re.MULTILINE)

    @property
    def error_messages(self) -> list[str]:
        """Each [ERROR] Ansible printed, whitespace collapsed to single spaces."""
        messages, current = [], None
        for line in self.output.splitlines():
            if line.startswith("[ERROR]: "):
                current = [line.removeprefix("[ERROR]: ")]
                messages.append(current)
            elif current is not None and line.startswith(("Origin:", "fatal:", "PLAY RECAP")):
                current = None
            elif current is not None:
                current.append(line)
        return [" ".join(" ".join(lines).split()) for lines in messages]

    def report(self) -> str:
        return f"$ {' '.join(self.command)}\n(exit status {self.returncode})\n{self.output}"


class Deployer:
    """Writes inventories and layouts for one test and runs the real playbooks with them."""

    def __init__(self, target: Target, tmp_path: Path) -> None:
        self.target = target
        self.tmp_path = tmp_path

    def inventory(
        self, unset: tuple[str, ...] = (), group_vars: dict[str, Any] | None = None, mitogen: bool = False,
    ) -> Path:
        """The target in wslab_app, wslab_proxy and wslab_redis, the baseline
        in group_vars minus `unset`, plus `group_vars`; for MITOGEN, the
        connection and interpreter as Mitogen's strategy wants them."""
        directory = self.tmp_path / "inventory"
        (directory / "group_vars").mkdir(parents=True, exist_ok=True)
        connection = {"ansible_connection": "community.docker.docker", "ansible_host": self.target.name}
        if mitogen:
            connection |= MITOGEN_HOST_VARS
        host = {self.target.name: connection}
        hosts = {
            "all": {
                "children": {
                    "wslab_app": {"hosts": host},
                    "wslab_proxy": {"hosts": {self.target.name: {}}},
                    "wslab_redis": {"hosts": {self.target.name: {}}},
                }
            }
        }
        baseline = {key: value for key, value in BASELINE_VARS.items() if key not in unset} | (group_vars or {})
        (directory / "hosts.yml").write_text(yaml.safe_dump(hosts, sort_keys=False))
        (directory / "group_vars" / "all.yml").write_text(yaml.safe_dump(baseline, sort_keys=False))
        return directory

    def layouts_dir(self, layouts: dict[str, Any]) -> Path:
        """A directory of layout files, one <name>.yml per entry, for wslab_layouts_dir."""
        directory = self.tmp_path / "layouts"
        directory.mkdir(exist_ok=True)
        for name, body in layouts.items():
            (directory / f"{name}.yml").write_text(yaml.safe_dump(body, sort_keys=False))
        return directory

    def _run(self, command: list[str], extra_env: dict[str, str] | None = None) -> Run:
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", **(extra_env or {}))
        # A session of its own, so that a run over time is stopped with its workers.
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            pytest.fail(f"{' '.join(command)} ran over {RUN_TIMEOUT}s:\n{output}")
        return Run(command, process.returncode, output)

    def playbook(
        self,
        playbook: str = "site.yml",
        extra_vars: dict[str, Any] | None = None,
        unset: tuple[str, ...] = (),
        group_vars: dict[str, Any] | None = None,
        options: tuple[str, ...] = (),
        mitogen: bool = False,
    ) -> Run:
        """A run of PLAYBOOK through Ansible's own linear strategy, as users
        run it, or for MITOGEN through Mitogen's (wslab.scenarios.mitogen_env)."""
        inventory = self.inventory(unset, group_vars, mitogen=mitogen)
        command = [str(ANSIBLE_BIN / "ansible-playbook"), playbook, "-i", str(inventory), *options]
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        return self._run(command, mitogen_env() if mitogen else None)

    def ad_hoc(self, module: str, args: str) -> Run:
        return self._run([str(ANSIBLE_BIN / "ansible"), "all", "-i", str(self.inventory()), "-m", module, "-a", args])


@pytest.fixture
def deployer(target: Target, tmp_path: Path) -> Deployer:
    return Deployer(target, tmp_path)
