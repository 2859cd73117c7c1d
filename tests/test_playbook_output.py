"""Reading ansible-playbook's output, as the preview tests do."""

from __future__ import annotations

from wslab.playbook_output import changed_tasks, recaps, tasks_run

OUTPUT = """
PLAY [Deploy] ******************************************************************

TASK [nginx : Install the site] ************************************************
changed: [web1]

TASK [nginx : Enable the site] *************************************************
ok: [web1]

RUNNING HANDLER [nginx : Reload nginx] *****************************************
changed: [web1]

PLAY RECAP *********************************************************************
web1                       : ok=3    changed=2    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
"""


def test_the_recap_the_tasks_and_the_changes_are_read():
    assert recaps(OUTPUT) == [{"host": "web1", "ok": "3", "changed": "2", "unreachable": "0", "failed": "0"}]
    assert tasks_run(OUTPUT) == ["nginx : Install the site", "nginx : Enable the site"]
    assert changed_tasks(OUTPUT) == ["nginx : Install the site", "nginx : Reload nginx"]
