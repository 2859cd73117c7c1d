"""The preview the README recommends before the first deploy
(`ansible-playbook site.yml --check --diff`), on a host never deployed: it
fails nowhere, shows what the run would install and write, and changes
nothing (`docker diff` of the host, as in test_preflight.py).

The layout is uvicorn, with TLS and a self-signed certificate as the lab
runs it: its run goes through every role but daphne and gunicorn, whose
tasks are uvicorn's (the same unit steps, the same check-mode guards). On a
fresh host the package steps report the packages apt would install, and the
steps that need what a package or the new code brings (redis.conf, the
units, the venv, manage.py) are skipped, each saying so in its role. The
preview of a deployed host (0 changed) is a Molecule test:
molecule/shared/tests/test_preview.py.

The run goes through Mitogen's strategy, as the seeded scenarios do: half the
CPU of Ansible's own (about 21 s instead of 43 s). What check mode does is the
modules' and the roles' guards, the same under either strategy; the preflight
tests and the plain scenario run site.yml through Ansible's own.
"""

from __future__ import annotations

from wslab.playbook_output import changed_tasks, recaps

PREVIEW_VARS = {
    "wslab_layout": "uvicorn",
    "nginx_tls": True,
    "nginx_tls_self_signed": True,
    "nginx_tls_certificate": "/etc/ssl/wslab/lab.crt",
    "nginx_tls_certificate_key": "/etc/ssl/private/wslab-lab.key",
}
# What a check-mode run may leave on the host: Ansible's own scratch space
# and apt's package cache, which apt rebuilds when it plans an installation.
HARMLESS = ("/root/.ansible", "/var/cache/apt", "/var/log/apt")


def _harmless(path: str) -> bool:
    """A harmless path, or a directory above one (docker diff lists it as changed)."""
    return path.startswith(HARMLESS) or any(place.startswith(path + "/") for place in HARMLESS)


def test_a_preview_of_a_fresh_host_fails_nowhere_and_changes_nothing(deployer, target):
    run = deployer.playbook("site.yml", group_vars=PREVIEW_VARS, options=("--check", "--diff"), mitogen=True)

    assert run.returncode == 0, run.report()
    (recap,) = recaps(run.output)
    assert (recap["unreachable"], recap["failed"]) == ("0", "0"), run.report()
    changed = changed_tasks(run.output)
    # What the first run would do, as the preview shows it.
    for task in (
        "wslab : Install the missing packages",
        "django_app : Upload the code bundle",
        "app_server : Install the unit of uvicorn",
        "redis : Write the lab's Redis settings",
        "nginx : Install the site",
    ):
        assert task in changed, f"{task!r} not among the changes {changed}\n{run.report()}"
    assert "+nginx_upstreams" not in run.output
    assert "upstream uvicorn {" in run.output, "the site's diff is not shown"
    left = [change for change in target.changes() if not _harmless(change[4:])]
    assert left == [], f"the preview changed the host: {left}\n{run.report()}"
