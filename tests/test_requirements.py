"""The lab's pins: what requirements/lab.txt and the sample app ask for is what
requirements/lab.lock (what `make venv` installs) holds, every package hashed."""

from __future__ import annotations

import re
from pathlib import Path

from packaging.markers import Marker

from wslab.topology import PROJECT_DIR

REQUIREMENTS = PROJECT_DIR / "requirements"
# The Python the lock is resolved for (`make lock`): the controller's.
LOCK_PYTHON = {"python_version": "3.11", "python_full_version": "3.11.0"}
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;\\]+)")


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    """name -> version of every `name==version` line in PATH that applies to
    LOCK_PYTHON (environment markers), following -r includes."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            pins.update(_pins((path.parent / line[3:].strip()).resolve()))
        elif match := _PIN.match(line):
            _, _, marker = line.partition(";")
            if not marker.strip() or Marker(marker.strip()).evaluate(LOCK_PYTHON):
                pins[_name(match["name"])] = match["version"]
    return pins


def _lock_entries(path: Path) -> dict[str, list[str]]:
    """name==version -> its lines (the pin and its hashes) in a lock file."""
    entries: dict[str, list[str]] = {}
    current = None
    for line in path.read_text().splitlines():
        if match := _PIN.match(line):
            current = f"{_name(match['name'])}=={match['version']}"
            entries[current] = [line]
        elif current and line.startswith("    --hash="):
            entries[current].append(line)
    return entries


def test_the_lock_holds_every_pin_of_the_lab_and_the_app():
    wanted = _pins(REQUIREMENTS / "lab.txt")
    assert {"ansible", "django", "channels", "websockets", "pytest-xdist"} <= wanted.keys()
    locked = dict(entry.split("==", 1) for entry in _lock_entries(REQUIREMENTS / "lab.lock"))
    differ = {name: (version, locked.get(name)) for name, version in wanted.items() if locked.get(name) != version}
    assert not differ, f"requirements/lab.lock is stale, run `make lock`: (wanted, locked) {differ}"


def test_every_locked_package_is_pinned_with_hashes():
    for path in (REQUIREMENTS / "lab.lock", REQUIREMENTS / "bootstrap.txt"):
        entries = _lock_entries(path)
        assert entries, path
        unhashed = [entry for entry, lines in entries.items() if len(lines) < 2]
        assert not unhashed, f"{path.name}: no hashes for {unhashed}"
