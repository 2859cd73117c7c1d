"""Fixtures for the testinfra suites every scenario runs.

Molecule runs these with the scenario's inventory (one container per
scenario); WSLAB_LAYOUT names the layout the scenario deployed. The
expectations come from layouts/<layout>.yml, the same file the playbooks
deployed from, so a test states a claim of the layout and checks it with
real connections.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from wslab.layout import load_layout, server_units as units_of_servers
from wslab.roles import raw_defaults, role_defaults

# Units whose journal is shown when a test fails.
_JOURNAL_LINES = 40
# WSLAB_VERIFY: "full" runs every test; "verdicts" leaves out the tests marked
# operations, load or browser (python -m wslab.scenarios sets it per Debian suite).
_LEFT_OUT = {"full": set(), "verdicts": {"operations", "load", "browser"}}


def pytest_configure(config):
    config.addinivalue_line("markers", "operations: acts on the host as an operator would (restart, kill, reload)")
    config.addinivalue_line("markers", "load: opens thousands of sockets")
    config.addinivalue_line("markers", "browser: drives the echo page in Chromium")


def pytest_collection_modifyitems(config, items):
    scope = os.environ.get("WSLAB_VERIFY", "full")
    if scope not in _LEFT_OUT:
        raise pytest.UsageError(f"WSLAB_VERIFY={scope!r}: use one of {sorted(_LEFT_OUT)}")
    keep = [item for item in items if not _LEFT_OUT[scope] & {mark.name for mark in item.iter_markers()}]
    left_out = [item for item in items if item not in keep]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = keep


@pytest.fixture(scope="session")
def layout_name() -> str:
    return os.environ["WSLAB_LAYOUT"]


@pytest.fixture(scope="session")
def layout(layout_name):
    return load_layout(layout_name)


@pytest.fixture(scope="session")
def wslab_defaults():
    return raw_defaults("wslab")


@pytest.fixture(scope="module")
def inventory_vars(host) -> dict:
    """The variables the scenario's inventory sets for the host."""
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def wslab_vars(inventory_vars, wslab_defaults):
    """wslab_* variables as the play saw them: inventory over role defaults."""
    return {key: inventory_vars.get(key, value) for key, value in wslab_defaults.items()}


@pytest.fixture(scope="module")
def role_vars(inventory_vars, layout_name):
    """role -> that role's variables as the play saw them: the inventory's
    value, else the role's default, derived from the inventory's facts."""

    def of(role: str) -> dict:
        return role_defaults(role, layout=layout_name, **inventory_vars)

    return of


def _published_url(host, port: int, scheme: str) -> str:
    """A port of the scenario's container, as Docker published it on 127.0.0.1."""
    name = host.backend.get_hostname()
    out = subprocess.run(
        ["docker", "port", name, f"{port}/tcp"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    address = next(line for line in out.splitlines() if line.startswith("127.0.0.1:"))
    return f"{scheme}://{address}/"


@pytest.fixture(scope="module")
def site_url(host) -> str:
    """nginx's plain HTTP port."""
    return _published_url(host, 80, "http")


@pytest.fixture(scope="module")
def tls_url(host) -> str:
    """nginx's TLS port (the Molecule base config turns nginx_tls on)."""
    return _published_url(host, 443, "https")


@pytest.fixture
def assert_websocket_as_expected(layout):
    """Checks a probe result against the layout's expect.websocket claim."""

    def check(result, hold: float) -> None:
        expected = layout["expect"]["websocket"]
        record = result.to_dict()
        assert result.verdict == expected["verdict"], record
        assert result.handshake_status == expected["handshake_status"], record
        if expected["verdict"] == "open":
            assert result.echo_ok is True, record
            assert not result.closed_early, record
            assert result.held_s >= hold, record
        else:
            assert result.opened is False, record
            # Who answered the refused handshake: the app stamps every
            # response it serves with the interface and server that carried it.
            answered_by = expected.get("answered_by") or {}
            assert result.handshake_interface == answered_by.get("interface"), record
            assert result.handshake_server == answered_by.get("server"), record

    return check


@pytest.fixture(scope="module")
def unit_properties(host):
    """(unit, *names) -> {name: value} as `systemctl show` reports them."""

    def show(unit: str, *names: str) -> dict[str, str]:
        out = host.check_output(f"systemctl show -p {','.join(names)} {unit}")
        return dict(line.split("=", 1) for line in out.splitlines())

    return show


@pytest.fixture(scope="session")
def units_of(layout) -> dict[str, list[str]]:
    """server -> the systemd services that run it: wslab-<server>, or
    wslab-<server>@1, @2, ... for Daphne with several processes."""
    return units_of_servers(layout)


@pytest.fixture(scope="session")
def server_units(units_of) -> list[str]:
    return [unit for units in units_of.values() for unit in units]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and "host" in item.funcargs:
        host = item.funcargs["host"]
        layout = item.funcargs.get("layout")
        units = ["nginx"] + ([unit for units in units_of_servers(layout).values() for unit in units] if layout else [])
        args = " ".join(f"-u {unit}" for unit in units)
        journal = host.run(f"journalctl --no-pager -n {_JOURNAL_LINES} {args}")
        report.sections.append(("journal of " + ", ".join(units), journal.stdout + journal.stderr))
    return report
