"""The nginx role's site template, rendered without Ansible: plain HTTP only by
default, and with nginx_tls a TLS listener beside it in the same server, so
https:// and wss:// reach the very locations http:// and ws:// do."""

from __future__ import annotations

import re

import jinja2
import jinja2.nativetypes
import pytest
import yaml

from wslab.layout import PROJECT_DIR

ROLE = PROJECT_DIR / "roles" / "nginx"
SITE_TEMPLATE = "etc/nginx/sites-available/site.conf.j2"
WSLAB_DEFAULTS = yaml.safe_load((PROJECT_DIR / "roles/wslab/defaults/main.yml").read_text())
SPECS = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]



def _role_defaults() -> dict:
    """The role's defaults as Ansible would resolve them for the project's own
    facts (roles/wslab/defaults/main.yml): a derived default is a template."""
    env = jinja2.nativetypes.NativeEnvironment(undefined=jinja2.StrictUndefined)
    context = dict(WSLAB_DEFAULTS)
    for name, value in yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()).items():
        context[name] = env.from_string(value).render(context) if isinstance(value, str) and "{{" in value else value
    return {name: context[name] for name in context if name.startswith("nginx_")}


DEFAULTS = _role_defaults()
# What the layout hands the role for the daphne layout (playbooks/proxy.yml),
# merged as the role's vars/main.yml merges it with the user's own.
LAYOUT_VARS = {
    "_nginx_upstreams": [{"name": "daphne", "servers": ["127.0.0.1:8001"]}],
    "_nginx_locations": [{"path": "/", "upstream": "daphne", "websocket": True}],
    "_nginx_static_locations": [{"path": "/static/", "alias": "/opt/wslab/static/"}],
}
LAB_TLS = {
    "nginx_tls": True,
    "nginx_tls_self_signed": True,
    "nginx_tls_certificate": "/etc/ssl/wslab/lab.crt",
    "nginx_tls_certificate_key": "/etc/ssl/private/wslab-lab.key",
}


def _comment(text: str) -> str:
    """Stand-in for Ansible's `comment` filter (shell-style by default)."""
    return "#\n" + "\n".join(f"# {line}" for line in text.splitlines()) + "\n#"


def _bool(value) -> bool:
    """Stand-in for Ansible's `bool` filter."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on", "y", "t"}
    return bool(value)


def render(template: str = SITE_TEMPLATE, **overrides) -> str:
    env = jinja2.Environment(  # noqa: S701 - nginx config, not HTML
        loader=jinja2.FileSystemLoader(ROLE / "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,  # as Ansible's template module renders
        keep_trailing_newline=True,
    )
    env.filters.update(comment=_comment, bool=_bool)
    variables = {**DEFAULTS, **LAYOUT_VARS, "ansible_managed": "Ansible managed", **overrides}
    return env.get_template(template).render(variables)


def _directives(site: str, name: str) -> list[str]:
    return [m.group(1) for m in re.finditer(rf"^\s*{name} (.+);$", site, re.MULTILINE)]


def test_tls_is_off_by_default():
    site = render()
    assert _directives(site, "listen") == ["80", "[::]:80"]
    assert not re.search(r"^\s*ssl_", site, re.MULTILINE), site
    assert " ssl;" not in site


def test_tls_adds_an_ssl_listener_and_keeps_plain_http():
    site = render(**LAB_TLS)
    assert _directives(site, "listen") == ["80", "[::]:80", "443 ssl", "[::]:443 ssl"]
    assert _directives(site, "ssl_certificate") == ["/etc/ssl/wslab/lab.crt"]
    assert _directives(site, "ssl_certificate_key") == ["/etc/ssl/private/wslab-lab.key"]
    assert _directives(site, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]
    # One argument, OpenSSL's colon-separated list: a space would make nginx refuse the config.
    (ciphers,) = _directives(site, "ssl_ciphers")
    assert re.fullmatch(r"[A-Z0-9-]+(:[A-Z0-9-]+)+", ciphers), ciphers


def test_tls_and_plain_http_share_one_server_and_its_locations():
    site = render(**LAB_TLS)
    assert site.count("server {") == 1
    server = site.split("server {", 1)[1]
    for directive in ("listen 443 ssl;", "ssl_certificate ", "location / {", "location /static/ {"):
        assert server.count(directive) == 1, directive
    # Django learns the scheme from the proxy: https on the TLS listener.
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in server


def test_tls_port_and_protocols_are_settings():
    site = render(**LAB_TLS, nginx_tls_port=8443, nginx_tls_protocols="TLSv1.3")
    assert _directives(site, "listen") == ["80", "[::]:80", "8443 ssl", "[::]:8443 ssl"]
    assert _directives(site, "ssl_protocols") == ["TLSv1.3"]


@pytest.mark.parametrize("value", [False, "false", "no"])
def test_tls_off_spelled_as_a_string_stays_off(value):
    site = render(**{**LAB_TLS, "nginx_tls": value})
    assert " ssl;" not in site and "ssl_certificate" not in site


def test_tls_variables_are_typed_like_their_defaults():
    tls = sorted(name for name in DEFAULTS if name.startswith("nginx_tls"))
    assert tls == sorted(name for name in SPECS if name.startswith("nginx_tls"))
    types = {"bool": bool, "int": int, "str": str, "path": str, "list": list}
    for name in tls:
        # A fixed default is the one documented; a derived one (HSTS, from wslab_hsts_max_age) says so.
        assert SPECS[name].get("default", DEFAULTS[name]) == DEFAULTS[name], name
        assert "default" in SPECS[name] or "Default: derived" in str(SPECS[name]["description"]), name
        assert isinstance(DEFAULTS[name], types[SPECS[name]["type"]]), name


HARDENING_DROPIN = "etc/systemd/system/nginx.service.d/wslab-hardening.conf.j2"


def test_the_sandbox_drop_in_is_on_by_default_and_names_where_nginx_may_write():
    dropin = render(HARDENING_DROPIN)
    assert "\n[Service]\n" in dropin
    assert "\nReadWritePaths=/var/log/nginx /var/lib/nginx /run\n" in dropin
    assert "\nProtectSystem=strict\n" in dropin
    custom = render(HARDENING_DROPIN, nginx_read_write_paths=["/var/log/nginx", "/var/cache/nginx"])
    assert "\nReadWritePaths=/var/log/nginx /var/cache/nginx\n" in custom


@pytest.mark.parametrize("value", [False, "false", "no"])
def test_the_sandbox_drop_in_is_empty_without_hardening(value):
    dropin = render(HARDENING_DROPIN, nginx_systemd_hardening=value)
    assert "[Service]" not in dropin
    assert not [line for line in dropin.splitlines() if line and not line.startswith("#")], dropin
