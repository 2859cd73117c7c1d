"""Read the roles' defaults as Ansible resolves them: a derived default is a
template over the project facts (roles/wslab/defaults/main.yml) and the
layout, rendered here with Jinja's native types as ansible-core renders it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import jinja2.nativetypes
import yaml

from wslab.layout import PROJECT_DIR, load_layout

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


def _ternary(value: Any, true: Any, false: Any) -> Any:
    """Ansible's `ternary` filter."""
    return true if value else false


def _comment(text: str) -> str:
    """Ansible's `comment` filter (shell-style, its defaults)."""
    return "#\n" + "\n".join(f"# {line}" for line in text.splitlines()) + "\n#"


def _environment() -> jinja2.nativetypes.NativeEnvironment:
    """Jinja as ansible-core renders a variable: native types, chainable undefined."""
    env = jinja2.nativetypes.NativeEnvironment(undefined=_Undefined)
    env.filters["ternary"] = _ternary
    # Ansible's own, for what the roles assemble (django_app's env file).
    ansible_filters = _ansible_filters()
    env.filters.update(
        combine=ansible_filters["combine"], bool=ansible_filters["bool"], regex_replace=ansible_filters["regex_replace"]
    )
    return env


def _ansible_filters() -> dict[str, Any]:
    from ansible.plugins.filter.core import FilterModule

    return FilterModule().filters()


def _refuse_undefined(value: Any) -> None:
    """Raises if a rendered value holds an undefined part (a list that names a
    variable not rendered yet), as Ansible would when it uses the value."""
    if isinstance(value, jinja2.Undefined):
        raise jinja2.UndefinedError(f"undefined part: {value._undefined_name}")
    if isinstance(value, (list, tuple)):
        for item in value:
            _refuse_undefined(item)
    elif isinstance(value, dict):
        for item in value.values():
            _refuse_undefined(item)


def _render_into(context: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Renders each of values into context, as Ansible resolves variables
    lazily: one may read another (nginx_limit_nofile reads
    nginx_worker_connections), so each is rendered once what it reads is; one
    that never can (a fact or filter only Ansible knows, such as role_path) is
    left out. Returns context."""
    env = _environment()

    def render(value: Any) -> Any:
        if isinstance(value, str) and "{{" in value:
            value = env.from_string(value).render(context)
            _refuse_undefined(value)
            return value
        if isinstance(value, list):
            return [render(item) for item in value]
        return value

    pending = dict(values)
    for _ in range(len(pending) + 1):
        for name in list(pending):
            try:
                context[name] = render(pending[name])
            except jinja2.TemplateError:  # undefined, or a filter only Ansible has
                continue
            del pending[name]
        if not pending:
            break
    return context


def _role_context(role: str, layout: str | None, facts: dict[str, Any]) -> dict[str, Any]:
    """Every variable a role's tasks see: `facts` over the project facts, the
    role's defaults and its vars/main.yml, rendered; and the layout."""
    context: dict[str, Any] = dict(facts)
    if layout is not None:
        context["wslab_layout_definition"] = load_layout(layout)
    own = {**raw_defaults("wslab"), **raw_defaults(role), **_yaml(ROLES_DIR / role / "vars" / "main.yml")}
    return _render_into(context, {name: value for name, value in own.items() if name not in facts})


def role_defaults(role: str, layout: str | None = None, **facts: Any) -> dict[str, Any]:
    """A role's variables as a play sees them: `facts` (what an inventory
    sets, project facts and role variables alike) over the role's defaults,
    each derived default rendered from them and, where given, the layout."""
    context = _role_context(role, layout, facts)
    return {name: context[name] for name in {**raw_defaults(role), **facts} if name.startswith(f"{role}_") and name in context}


def _with_app_server_inputs(server: str, layout: str | None, facts: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The server role's variables with what its tasks/main.yml passes
    roles/app_server rendered into them, and the names of those inputs."""
    inputs = _app_server_include(server, "unit")["vars"]
    return _render_into(_role_context(server, layout, facts), inputs), set(inputs)


def _app_server_include(server: str, tasks_from: str) -> dict[str, Any]:
    """The task of a server role that includes roles/app_server's TASKS_FROM
    (unit and service in tasks/main.yml, preflight in tasks/preflight.yml)."""
    tasks_file = "preflight.yml" if tasks_from == "preflight" else "main.yml"
    tasks = yaml.safe_load((ROLES_DIR / server / "tasks" / tasks_file).read_text())
    for task in tasks:
        include = task.get("ansible.builtin.include_role") or {}
        if (include.get("name"), include.get("tasks_from")) == ("app_server", tasks_from):
            return task
    raise LookupError(f"roles/{server}/tasks/{tasks_file} includes no app_server tasks_from {tasks_from}")


def app_server_inputs(server: str, layout: str | None = None, tasks_from: str = "unit", **facts: Any) -> dict[str, Any]:
    """What a server role (gunicorn, daphne, uvicorn) passes roles/app_server
    for TASKS_FROM, rendered from the role's variables."""
    context, inputs = _with_app_server_inputs(server, layout, facts)
    if tasks_from == "preflight":
        inputs = _app_server_include(server, tasks_from)["vars"]
        context = _render_into(context, inputs)
    return {name: context[name] for name in inputs}


def app_server_unit(
    server: str, layout: str | None = None, kind: str = "service", instance: int | None = None, **facts: Any
) -> str:
    """The systemd unit roles/app_server writes for a server role (gunicorn,
    daphne, uvicorn), from the inputs the role's tasks/main.yml passes it,
    rendered from the role's variables: its .service (the template unit, for
    a server with instances), or (kind) for a unix bind the .socket and the
    tmpfiles.d entry of the socket's directory, or INSTANCE's .socket."""
    skeleton, inputs = _with_app_server_inputs(server, layout, facts)
    # The skeleton's own defaults and helpers, but not what a run registers.
    registered = {
        "_app_server_unit_changed", "_app_server_previewing_unit", "_app_server_stale_instances",
        "_app_server_plain_unit_found", "_app_server_plain_socket_found", "_app_server_removed_units",
    }
    own = {**raw_defaults("app_server"), **_yaml(ROLES_DIR / "app_server" / "vars" / "main.yml")}
    skeleton = _render_into(skeleton, {name: value for name, value in own.items() if name not in registered | inputs})
    text = jinja2.Environment(  # noqa: S701 - a systemd unit, not HTML
        loader=jinja2.FileSystemLoader(ROLES_DIR / "app_server" / "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    text.filters["comment"] = _comment
    template = {"service": "etc/systemd/system/app-server.service.j2",
                "socket": "etc/systemd/system/app-server.socket.j2",
                "tmpfiles": "etc/tmpfiles.d/app-server.conf.j2"}[kind]
    # What the socket unit's task gives its template (tasks/unit.yml).
    service = skeleton["app_server_service_name"]
    if instance is None:
        socket = {"_app_server_listen": skeleton["_app_server_socket"], "_app_server_socket_service": service}
    else:
        bind = skeleton["app_server_instance_binds"][instance - 1]
        socket = {"_app_server_number": instance, "_app_server_listen": bind.removeprefix("unix:"),
                  "_app_server_socket_service": f"{service}@{instance}"}
    return text.get_template(template).render(
        {**skeleton, **socket, "ansible_managed": "Ansible managed"}
    )
