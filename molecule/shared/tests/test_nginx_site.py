"""A site that gives nothing away: nginx names no version, sends HSTS over
https:// only, turns away oversized requests before they reach the app, and
gixy (the nginx configuration analyser, gixy-ng) finds nothing in the
configuration nginx actually loaded (`nginx -T`)."""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from wslab import findings

TIMEOUT_S = 30.0
GIXY = Path(sys.executable).parent / "gixy"
_SIZE = re.compile(r"(\d+)([kKmMgG]?)")
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def _bytes(size: str) -> int:
    """An nginx size (1m, 8k, 512) in bytes."""
    number, unit = _SIZE.fullmatch(size).groups()
    return int(number) * _UNITS[unit.lower()]


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if parts.scheme == "https":
        # The lab's certificate is self-signed; test_tls.py checks it is the one on the host.
        context = ssl._create_unverified_context()  # noqa: S323
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=TIMEOUT_S, context=context)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)


def _head(url: str) -> http.client.HTTPResponse:
    connection = _connection(url)
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_nginx_names_no_version(site_url):
    server = _head(site_url).getheader("Server")
    assert server == "nginx", server


def test_hsts_is_sent_over_https_only(site_url, tls_url, role_vars):
    max_age = role_vars("nginx")["nginx_tls_hsts_max_age"]
    assert _head(tls_url).getheader("Strict-Transport-Security") == f"max-age={max_age}"
    assert _head(site_url).getheader("Strict-Transport-Security") is None


def test_a_body_over_the_limit_gets_413_before_it_is_sent(site_url, role_vars):
    limit = _bytes(role_vars("nginx")["nginx_client_max_body_size"])
    connection = _connection(site_url)
    connection.putrequest("POST", "/")
    connection.putheader("Content-Length", str(limit + 1))
    connection.endheaders()  # nginx answers on the length alone
    response = connection.getresponse()
    assert response.status == 413
    assert "X-Wslab-Interface" not in response.headers  # nginx's answer, not the app's
    connection.close()


def test_a_header_over_the_buffers_gets_400(site_url, role_vars):
    buffer = _bytes(role_vars("nginx")["nginx_large_client_header_buffers"].split()[1])
    connection = _connection(site_url)
    connection.request("GET", "/healthz", headers={"X-Wslab-Padding": "a" * buffer})
    response = connection.getresponse()
    assert response.status == 400
    assert b"Request Header Or Cookie Too Large" in response.read()
    connection.close()


def test_gixy_finds_nothing_in_the_loaded_configuration(host, layout_name, tmp_path):
    dump = tmp_path / "nginx-T.conf"
    dump.write_text(host.check_output("nginx -T 2>/dev/null"))
    run = subprocess.run([str(GIXY), "-l", "--format", "json", str(dump)],
                         capture_output=True, text=True, timeout=120, check=False)
    issues = json.loads(run.stdout or "[]")
    findings.record("hardening", layout_name, "gixy_issues", len(issues))
    assert issues == [], json.dumps(issues, indent=2)
    assert run.returncode == 0, run.stderr
