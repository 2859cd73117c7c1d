"""The preview the README recommends before every change
(`ansible-playbook site.yml --check --diff`), run against the host this
scenario deployed, after the operations tests have restarted, killed and
reloaded its services: it fails nowhere and reports nothing to change.

It runs the same converge playbook Molecule ran, with the same inventory and
settings (Molecule's verifier environment names them), in check mode.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from wslab.playbook_output import changed_tasks, recaps, tasks_run

pytestmark = pytest.mark.operations

# One layout whose converge goes through django_app, Gunicorn, Redis and nginx:
# a preview costs a whole pass of Ansible, so one run pays for it.
PREVIEWED_LAYOUTS = frozenset({"gunicorn-uvicorn"})
# Generous: a pass takes well under a minute alone, minutes with every scenario at once.
PREVIEW_TIMEOUT_S = 900


def _preview(*options: str) -> tuple[str, str]:
    """Runs the preview with these options; returns (output, its tail for messages)
    after checking that it fails nowhere and would change nothing."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    playbook = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]).parent / "shared" / "converge.yml"
    run = subprocess.run(
        ["ansible-playbook", "--check", "--diff", *options, "--inventory", str(inventory), str(playbook)],
        capture_output=True, text=True, timeout=PREVIEW_TIMEOUT_S, check=False,
    )
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-40:])
    assert run.returncode == 0, tail
    hosts = recaps(run.stdout)
    assert hosts, tail
    for recap in hosts:
        assert (recap["failed"], recap["unreachable"]) == ("0", "0"), tail
        assert recap["changed"] == "0", f"the preview would change: {changed_tasks(run.stdout)}"
    return run.stdout, tail


def test_a_preview_of_the_deployed_host_fails_nowhere_and_changes_nothing(layout_name):
    if layout_name not in PREVIEWED_LAYOUTS:
        pytest.skip(f"the preview runs on {', '.join(sorted(PREVIEWED_LAYOUTS))} only")
    _preview()


def test_a_tagged_preview_runs_the_checks_and_only_the_tagged_steps(layout_name):
    """--tags (README: Tags) picks steps, and the preflight and the layout
    still run whatever the tags say."""
    if layout_name not in PREVIEWED_LAYOUTS:
        pytest.skip(f"the preview runs on {', '.join(sorted(PREVIEWED_LAYOUTS))} only")
    output, tail = _preview("--tags", "nginx_configure,gunicorn")
    tasks = tasks_run(output)
    for task in ("wslab : Check the layout and the values it will be deployed with",
                 "Remember that every check passed", "nginx : Install the site",
                 "app_server : Install the unit of gunicorn", "app_server : Enable and start gunicorn"):
        assert task in tasks, f"{task!r} did not run\n{tail}"
    for task in ("django_app : Upload the code bundle", "django_app : Write the app's env file",
                 "redis : Write the lab's Redis settings", "nginx : Enable and start nginx"):
        assert task not in tasks, f"{task!r} ran under --tags\n{tail}"
