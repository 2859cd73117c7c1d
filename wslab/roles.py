"""Read the roles' defaults as Ansible resolves them: a derived default is a
template over the project facts (roles/wslab/defaults/main.yml) and the
layout, rendered here with Jinja's native types as ansible-core renders it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import jinja2.nativetypes
import yaml

from wslab.topology import PROJECT_DIR, load_layout

ROLES_DIR = PROJECT_DIR / "roles"


def _yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def raw_defaults(role: str) -> dict[str, Any]:
    """A role's defaults/main.yml as written (templates unrendered)."""
    return _yaml(ROLES_DIR / role / "defaults" / "main.yml")


class _Undefined(jinja2.StrictUndefined):
    """Strict, but chainable as Ansible's: `a.b.c | default(x)` with `a.b` undefined is x."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    __getitem__ = __getattr__


def role_defaults(role: str, layout: str | None = None, **facts: Any) -> dict[str, Any]:
    """A role's variables as a play sees them: `facts` (what an inventory
    sets, project facts and role variables alike) over the role's defaults,
    each derived default rendered from them and, where given, the layout."""
    env = jinja2.nativetypes.NativeEnvironment(undefined=_Undefined)
    context: dict[str, Any] = dict(facts)
    if layout is not None:
        context["wslab_topology"] = load_layout(layout)
    own = {
        name: value
        for name, value in {**raw_defaults("wslab"), **raw_defaults(role), **_yaml(ROLES_DIR / role / "vars" / "main.yml")}.items()
        if name not in facts
    }

    def render(value: Any) -> Any:
        if isinstance(value, str) and "{{" in value:
            return env.from_string(value).render(context)
        if isinstance(value, list):
            return [render(item) for item in value]
        return value

    # A default may read another (nginx_limit_nofile reads nginx_worker_connections):
    # render each once what it reads is rendered; one that never can (a fact
    # or filter only Ansible knows, such as role_path) is left out.
    pending = dict(own)
    for _ in range(len(pending) + 1):
        for name in list(pending):
            try:
                context[name] = render(pending[name])
            except jinja2.TemplateError:  # undefined, or a filter only Ansible has
                continue
            del pending[name]
        if not pending:
            break
    return {name: context[name] for name in {**raw_defaults(role), **facts} if name.startswith(f"{role}_") and name in context}


def _ternary(value: Any, true: Any, false: Any) -> Any:
    """Ansible's `ternary` filter."""
    return true if value else false


def _comment(text: str) -> str:
    """Ansible's `comment` filter (shell-style, its defaults)."""
    return "#\n" + "\n".join(f"# {line}" for line in text.splitlines()) + "\n#"


def app_server_unit(server: str, layout: str | None = None, **facts: Any) -> str:
    """The systemd unit roles/app_server writes for a server role (gunicorn,
    daphne, uvicorn), from the inputs the role's tasks/main.yml passes it and
    the role's variables as role_defaults() gives them."""
    env = jinja2.nativetypes.NativeEnvironment(undefined=_Undefined)
    env.filters["ternary"] = _ternary
    context: dict[str, Any] = {**facts, **role_defaults(server, layout=layout, **facts)}
    if layout is not None:
        context["wslab_topology"] = load_layout(layout)
    # The role's private helpers (vars/main.yml), rendered in order.
    for name, value in _yaml(ROLES_DIR / server / "vars" / "main.yml").items():
        context[name] = env.from_string(value).render(context) if isinstance(value, str) and "{{" in value else value
    inputs = yaml.safe_load((ROLES_DIR / server / "tasks" / "main.yml").read_text())[0]["vars"]
    skeleton = {**raw_defaults("app_server")}
    for name, value in inputs.items():
        skeleton[name] = env.from_string(value).render(context) if isinstance(value, str) and "{{" in value else value
    for name, value in _yaml(ROLES_DIR / "app_server" / "vars" / "main.yml").items():
        if name.startswith("_app_server_unit") or name == "_app_server_previewing_unit":
            continue  # what a run registered: not part of the file
        skeleton[name] = env.from_string(value).render(skeleton) if isinstance(value, str) and "{{" in value else value
    text = jinja2.Environment(  # noqa: S701 - a systemd unit, not HTML
        loader=jinja2.FileSystemLoader(ROLES_DIR / "app_server" / "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    text.filters["comment"] = _comment
    return text.get_template("etc/systemd/system/app-server.service.j2").render(
        {**skeleton, "ansible_managed": "Ansible managed"}
    )
