"""Filters that check the role variables an inventory sets against the project
facts (roles/wslab/defaults/main.yml) that other roles read.

Every role derives its defaults from those facts, so a role variable left
alone always agrees with them. A value set in the inventory (or with -e)
takes effect; these filters refuse the ones that would leave two layers
disagreeing, naming the variable and what to set instead.
"""

from __future__ import annotations

from typing import Any


def _comparable(value: Any) -> Any:
    """A value as the inventory may spell it: 6379 and "6379" are one port."""
    if isinstance(value, (list, tuple)):
        return [_comparable(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    return str(value)


def wslab_contradictions(bound: dict[str, list[Any]], given: dict[str, Any]) -> list[str]:
    """The role variables set to a value their project fact does not have.

    bound maps a role variable to [the fact to set instead, the value the fact
    gives it]; given maps the same names to what the inventory set, None where
    it sets nothing.
    """
    errors = []
    for name, (fact, expected) in bound.items():
        value = given.get(name)
        if value is None or _comparable(value) == _comparable(expected):
            continue
        errors.append(
            f"{name} is {value!r}, but the other roles follow {fact}, which makes it {expected!r}; "
            f"set {fact} instead and leave {name} unset"
        )
    return errors


def wslab_ping_errors(read_timeout: tuple[str, Any], pings: dict[str, Any]) -> list[str]:
    """Server ping intervals (name -> seconds, 0 for none) that come too late to
    keep an idle WebSocket alive through nginx's read timeout (name, seconds)."""
    timeout_name, timeout = read_timeout
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        return [f"{timeout_name} must be a number of seconds, got {timeout!r}"]
    errors = []
    for name, interval in pings.items():
        try:
            interval = float(interval)
        except (TypeError, ValueError):
            errors.append(f"{name} must be a number of seconds, got {interval!r}")
            continue
        # 0: no pings, a choice the server roles document (idle sockets then
        # last one read timeout).
        if interval > 0 and interval >= timeout:
            errors.append(
                f"{name} ({interval:g}s) must be below {timeout_name} ({timeout:g}s), or nginx closes idle "
                "WebSockets before the server's ping keeps them alive"
            )
    return errors


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "wslab_contradictions": wslab_contradictions,
            "wslab_ping_errors": wslab_ping_errors,
        }
