"""The seeded base image carries exactly the Debian packages the roles install
(no more: a role that forgot a package would pass on it; no fewer: a scenario
would download it again), and the app's venv where the roles put it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[1]


def _apt_packages_in_roles() -> set[str]:
    names: set[str] = set()

    def walk(tasks) -> None:
        for task in tasks or []:
            for key in ("block", "rescue", "always"):
                walk(task.get(key))
            # The roles name their packages to the shared step roles/wslab/tasks/packages.yml.
            include = task.get("ansible.builtin.include_role") or {}
            if include.get("tasks_from") == "packages":
                name = task["vars"]["wslab_packages"]
                if isinstance(name, str) and "{{" in name:
                    # A list built in Jinja: every package it can name.
                    names.update(re.findall(r"'([a-z0-9][a-z0-9.+-]*)'", name))
                else:
                    names.update([name] if isinstance(name, str) else name)

    for path in (PROJECT_DIR / "roles").glob("*/tasks/*.yml"):
        walk(yaml.safe_load(path.read_text()))
    return names


def test_seeded_image_carries_the_packages_the_roles_install():
    script = (PROJECT_DIR / "scripts" / "base-image.sh").read_text()
    seeded = set(re.search(r'^SEED_PACKAGES="([^"]*)"', script, re.MULTILINE).group(1).split())
    roles = _apt_packages_in_roles()
    assert roles, "found no role naming its packages to roles/wslab/tasks/packages.yml"
    assert seeded == roles


def test_seeded_venv_is_where_the_roles_make_it():
    script = (PROJECT_DIR / "scripts" / "base-image.sh").read_text()
    venv = re.search(r"^SEED_VENV=(\S+)$", script, re.MULTILINE).group(1)
    defaults = yaml.safe_load((PROJECT_DIR / "roles" / "wslab" / "defaults" / "main.yml").read_text())
    assert venv == defaults["wslab_app_root"] + "/venv"


def test_seeded_pins_are_where_the_role_compares_them():
    """The seeded venv's pins lie where roles/django_app looks before it runs
    pip, so a seeded run finds the venv current, as on a host deployed before."""
    script = (PROJECT_DIR / "scripts" / "base-image.sh").read_text()
    pins = re.search(r"^SEED_PINS=\$SEED_VENV/(\S+)$", script, re.MULTILINE).group(1)
    role_vars = yaml.safe_load((PROJECT_DIR / "roles" / "django_app" / "vars" / "main.yml").read_text())
    assert role_vars["_django_app_venv_pins"] == "{{ django_app_venv }}/" + pins
