"""Fixtures for the testinfra suites every scenario runs.

Molecule runs these with the scenario's inventory (one container per
scenario); WSLAB_LAYOUT names the layout the scenario deployed. The
expectations come from topologies/<layout>.yml, the same file the playbooks
deployed from, so a test states a claim of the layout and checks it with
real connections.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(PROJECT_DIR))

# Units whose journal is shown when a test fails.
_JOURNAL_LINES = 40


def _load_yaml(path: Path):
    with path.open() as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def layout_name() -> str:
    return os.environ["WSLAB_LAYOUT"]


@pytest.fixture(scope="session")
def layout(layout_name):
    return _load_yaml(PROJECT_DIR / "topologies" / f"{layout_name}.yml")


@pytest.fixture(scope="session")
def wslab_defaults():
    return _load_yaml(PROJECT_DIR / "roles" / "wslab" / "defaults" / "main.yml")


@pytest.fixture(scope="module")
def wslab_vars(host, wslab_defaults):
    """wslab_* variables as the play saw them: inventory over role defaults."""
    inventory = host.ansible.get_variables()
    return {key: inventory.get(key, value) for key, value in wslab_defaults.items()}


@pytest.fixture(scope="module")
def site_url(host) -> str:
    """nginx of the scenario's container, as published on 127.0.0.1."""
    name = host.backend.get_hostname()
    out = subprocess.run(
        ["docker", "port", name, "80/tcp"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    address = next(line for line in out.splitlines() if line.startswith("127.0.0.1:"))
    return f"http://{address}/"


@pytest.fixture
def server_units(layout):
    return [f"wslab-{server}" for server in layout["servers"]]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and "host" in item.funcargs:
        host = item.funcargs["host"]
        units = ["nginx"] + [f"wslab-{name}" for name in item.funcargs.get("layout", {}).get("servers", {})]
        args = " ".join(f"-u {unit}" for unit in units)
        journal = host.run(f"journalctl --no-pager -n {_JOURNAL_LINES} {args}")
        report.sections.append(("journal of " + ", ".join(units), journal.stdout + journal.stderr))
    return report
