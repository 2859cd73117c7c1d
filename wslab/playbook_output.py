"""Read what ansible-playbook printed (the default callback): the recap line
of each host, and the tasks that reported a change."""

from __future__ import annotations

import re

RECAP = re.compile(
    r"^(?P<host>\S+)\s*: ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.*)\]")


def recaps(output: str) -> list[dict[str, str]]:
    """One dict per host of the PLAY RECAP: host, ok, changed, unreachable, failed."""
    return [match.groupdict() for match in RECAP.finditer(output)]


def tasks_run(output: str) -> list[str]:
    """The names of the tasks that started, in order."""
    return re.findall(r"^TASK \[(.*)\]", output, re.MULTILINE)


def changed_tasks(output: str) -> list[str]:
    """The tasks (and handlers) that reported changed, each once, in order."""
    changed, task = [], ""
    for line in output.splitlines():
        header = _HEADER.match(line)
        if header:
            task = header[1]
        elif line.startswith("changed:") and task not in changed:
            changed.append(task)
    return changed
