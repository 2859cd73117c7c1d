"""The pins: what requirements/lab.txt (with the sample app's pins) and
requirements/bootstrap.txt ask for is what their .lock files, which `make venv`
installs, hold, every package hashed; and the app's own lock, which
roles/django_app installs on the hosts, holds its pins for each Python a host
may have."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from wslab.layout import PROJECT_DIR

REQUIREMENTS = PROJECT_DIR / "requirements"
# The Python the lock is resolved for (`make lock`): the controller's.
LOCK_PYTHON = {"python_version": "3.11", "python_full_version": "3.11.0"}
# A pinned line of a lock file (uv writes `name==version \`, hashes below).
_LOCKED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s\\]+)")


def _pins(path: Path, environment: dict[str, str] = LOCK_PYTHON) -> dict[str, str]:
    """name -> version of every `name==version` line in PATH that applies to
    the environment (its markers), following -r includes."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            pins.update(_pins((path.parent / line[3:].strip()).resolve(), environment))
        elif line and not line.startswith("#"):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                (specifier,) = requirement.specifier  # the lab pins with ==, one version
                pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def _lock_entries(path: Path) -> dict[str, list[str]]:
    """name==version -> its lines (the pin and its hashes) in a lock file."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if match := _LOCKED.match(line):
            current = f"{canonicalize_name(match['name'])}=={match['version']}"
            entries[current] = [line]
        elif current and line.startswith("    --hash="):
            entries[current].append(line)
    return entries


def test_each_lock_holds_every_pin_it_was_made_from():
    assert {"ansible", "django", "channels", "websockets", "pytest-xdist"} <= _pins(REQUIREMENTS / "lab.txt").keys()
    for name in ("lab", "bootstrap"):
        wanted = _pins(REQUIREMENTS / f"{name}.txt")
        locked = dict(entry.split("==", 1) for entry in _lock_entries(REQUIREMENTS / f"{name}.lock"))
        differ = {pkg: (version, locked.get(pkg)) for pkg, version in wanted.items() if locked.get(pkg) != version}
        assert not differ, f"requirements/{name}.lock is stale, run `make lock`: (wanted, locked) {differ}"


def test_every_locked_package_is_pinned_with_hashes():
    example = PROJECT_DIR / "examples" / "uvicorn-alone" / "requirements.lock"
    for path in (REQUIREMENTS / "lab.lock", REQUIREMENTS / "bootstrap.lock", example):
        entries = _lock_entries(path)
        assert entries, path
        unhashed = [entry for entry, lines in entries.items() if len(lines) < 2]
        assert not unhashed, f"{path.name}: no hashes for {unhashed}"


APP = PROJECT_DIR / "sample_app"
# The Pythons of the hosts: Debian 12's and Debian 13's (CPython on Linux).
HOST_PYTHONS = {
    "bookworm": {"python_version": "3.11", "python_full_version": "3.11.2"},
    "trixie": {"python_version": "3.13", "python_full_version": "3.13.5"},
}


def _locked_for(path: Path, environment: dict[str, str]) -> dict[str, str]:
    """name -> version of the lock's entries that apply to the environment."""
    locked = {}
    for line in path.read_text().splitlines():
        if _LOCKED.match(line):
            requirement = Requirement(line.rstrip(" \\"))
            if requirement.marker is None or requirement.marker.evaluate(environment):
                (specifier,) = requirement.specifier
                locked[canonicalize_name(requirement.name)] = specifier.version
    return locked


def test_the_apps_lock_holds_its_pins_for_each_hosts_python():
    for suite, python in HOST_PYTHONS.items():
        wanted = _pins(APP / "requirements.txt", python)
        locked = _locked_for(APP / "requirements.lock", python)
        differ = {pkg: (version, locked.get(pkg)) for pkg, version in wanted.items() if locked.get(pkg) != version}
        assert not differ, f"{suite}: sample_app/requirements.lock is stale, run `make lock`: {differ}"
        # Dependencies too, not only the pins: the lock is the whole venv.
        assert {"asgiref", "twisted", "websockets", "sqlparse"} <= locked.keys(), suite


def test_every_package_of_the_apps_lock_is_hashed():
    entries = _lock_entries(APP / "requirements.lock")
    assert len(entries) > 20
    assert not [entry for entry, lines in entries.items() if len(lines) < 2]
