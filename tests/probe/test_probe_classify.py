"""The probe's pure parts: URL resolution, classification, exit codes."""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Any

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import (
    InvalidHandshake,
    InvalidMessage,
    InvalidUpgrade,
)

from wslab.probe import (
    HandshakeFailure,
    _header,
    _headers_dict,
    ProbeResult,
    Verdict,
    build_parser,
    classify,
    exit_code,
    handshake_failure,
    resolve_targets,
    runbook_anchor,
)
from wslab.layout import PROJECT_DIR


def record(**fields: Any) -> ProbeResult:
    base: dict[str, Any] = {
        "url": "http://127.0.0.1:8080/",
        "ws_url": "ws://127.0.0.1:8080/ws/echo/",
        "http_url": "http://127.0.0.1:8080/",
        "origin_sent": "http://127.0.0.1:8080",
    }
    base.update(fields)
    return ProbeResult(**base)


# --- resolve_targets -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ws_path", "http_url", "ws_url", "origin"),
    [
        (
            "http://127.0.0.1:8080/",
            "/ws/echo/",
            "http://127.0.0.1:8080/",
            "ws://127.0.0.1:8080/ws/echo/",
            "http://127.0.0.1:8080",
        ),
        (
            "https://127.0.0.1:8443/some/page",
            "/ws/echo/",
            "https://127.0.0.1:8443/some/page",
            "wss://127.0.0.1:8443/ws/echo/",
            "https://127.0.0.1:8443",
        ),
        # The scheme's default port is not part of a serialised origin.
        (
            "http://LocalHost:80/",
            "/x/",
            "http://LocalHost:80/",
            "ws://LocalHost:80/x/",
            "http://localhost",
        ),
        (
            "https://127.0.0.1/",
            "/ws/echo/",
            "https://127.0.0.1/",
            "wss://127.0.0.1/ws/echo/",
            "https://127.0.0.1",
        ),
        (
            "http://[::1]:8080/",
            "/ws/echo/",
            "http://[::1]:8080/",
            "ws://[::1]:8080/ws/echo/",
            "http://[::1]:8080",
        ),
        # A WebSocket URL: handshake there, HTTP GET to "/" on the same host.
        (
            "ws://127.0.0.1:9000/ws/broadcast/lobby/",
            "/ignored/",
            "http://127.0.0.1:9000/",
            "ws://127.0.0.1:9000/ws/broadcast/lobby/",
            "http://127.0.0.1:9000",
        ),
        (
            "wss://127.0.0.1/ws/echo/",
            "/ws/echo/",
            "https://127.0.0.1/",
            "wss://127.0.0.1/ws/echo/",
            "https://127.0.0.1",
        ),
        # Credentials never reach the origin or the HTTP GET.
        (
            "ws://user:pw@127.0.0.1:9000/ws/",
            "/ws/echo/",
            "http://127.0.0.1:9000/",
            "ws://user:pw@127.0.0.1:9000/ws/",
            "http://127.0.0.1:9000",
        ),
    ],
)
def test_resolve_targets(
    url: str, ws_path: str, http_url: str, ws_url: str, origin: str
) -> None:
    targets = resolve_targets(url, ws_path)
    assert (targets.http_url, targets.ws_url, targets.site_origin) == (
        http_url,
        ws_url,
        origin,
    )


@pytest.mark.parametrize(
    ("url", "ws_path"),
    [
        ("ftp://127.0.0.1/", "/ws/echo/"),
        ("127.0.0.1:8080", "/ws/echo/"),
        ("http:///nohost", "/ws/echo/"),
        ("http://127.0.0.1:99999/", "/ws/echo/"),
        ("http://127.0.0.1/", "ws/echo/"),
    ],
)
def test_resolve_targets_rejects(url: str, ws_path: str) -> None:
    with pytest.raises(ValueError):
        resolve_targets(url, ws_path)


# --- classify ---------------------------------------------------------------


def test_open() -> None:
    verdict, line = classify(
        record(
            opened=True,
            handshake_status=101,
            echo_ok=True,
            rtt_ms=1.84,
            hold_requested_s=10,
            held_s=10.02,
        )
    )
    assert verdict == Verdict.OPEN
    assert line == (
        "OPEN: 101 Switching Protocols, echo 1.8 ms, held 10.0 s"
        " (see docs/runbook.md#verdict-open)"
    )


def test_open_without_hold_does_not_mention_it() -> None:
    verdict, line = classify(
        record(opened=True, handshake_status=101, echo_ok=True, rtt_ms=0.42)
    )
    assert verdict == Verdict.OPEN
    assert line == (
        "OPEN: 101 Switching Protocols, echo 0.4 ms (see docs/runbook.md#verdict-open)"
    )


def test_wsgi_backend() -> None:
    verdict, line = classify(
        record(
            handshake_status=404,
            handshake_interface="wsgi",
            handshake_server="gunicorn",
        )
    )
    assert verdict == Verdict.WSGI_BACKEND
    assert line.startswith(
        "REJECTED: HTTP 404 from upstream (served by gunicorn over WSGI)"
    )
    assert "WSGI has no way to hold the connection" in line


def test_wsgi_backend_any_status() -> None:
    # Whatever Django answered, X-Wslab-Interface says the request took the
    # plain HTTP path.
    verdict, _ = classify(record(handshake_status=403, handshake_interface="WSGI"))
    assert verdict == Verdict.WSGI_BACKEND


def test_upgrade_not_forwarded() -> None:
    verdict, line = classify(
        record(
            handshake_status=404, handshake_interface="asgi", handshake_server="daphne"
        )
    )
    assert verdict == Verdict.UPGRADE_NOT_FORWARDED
    assert line.startswith(
        "REJECTED: HTTP 404 from an ASGI server (daphne) that could have upgraded"
    )
    assert "proxy_http_version 1.1" in line


def test_origin_rejected() -> None:
    verdict, line = classify(
        record(handshake_status=403, origin_sent="http://evil.example:8080")
    )
    assert verdict == Verdict.ORIGIN_REJECTED
    assert "Origin http://evil.example:8080" in line
    assert "evil.example is not in ALLOWED_HOSTS" in line


def test_origin_rejected_without_origin() -> None:
    verdict, line = classify(record(handshake_status=403, origin_sent=None))
    assert verdict == Verdict.ORIGIN_REJECTED
    assert "without an Origin header" in line


@pytest.mark.parametrize("status", [502, 504])
def test_server_down(status: int) -> None:
    verdict, line = classify(
        record(handshake_status=status, handshake_headers={"Server": "nginx/1.22.1"})
    )
    assert verdict == Verdict.SERVER_DOWN
    assert f"HTTP {status} from the proxy (nginx/1.22.1)" in line
    assert "the proxy could not reach the application server" in line


def test_500_from_nginx_itself_is_too_many_connections() -> None:
    verdict, line = classify(
        record(handshake_status=500, handshake_headers={"Server": "nginx/1.22.1"})
    )
    assert verdict == Verdict.TOO_MANY_CONNECTIONS
    assert "worker_connections are not enough" in line


def test_500_from_the_app_is_only_an_http_status() -> None:
    verdict, _ = classify(
        record(
            handshake_status=500,
            handshake_interface="asgi",
            handshake_headers={"Server": "nginx/1.22.1", "X-Wslab-Interface": "asgi"},
        )
    )
    assert verdict != Verdict.TOO_MANY_CONNECTIONS


def test_503_is_only_an_http_status() -> None:
    # A lone 503 is not evidence of a full server; see TOO_MANY_CONNECTIONS.
    verdict, line = classify(
        record(
            handshake_status=503,
            handshake_reason="Service Unavailable",
            handshake_body_excerpt="busy",
        )
    )
    assert verdict == Verdict.HTTP_STATUS
    assert (
        line
        == "REJECTED: HTTP 503 Service Unavailable on the WebSocket handshake: 'busy'"
        " (see docs/runbook.md#verdict-http-status)"
    )


def test_http_status_redirect() -> None:
    verdict, line = classify(
        record(
            handshake_status=301,
            handshake_reason="Moved Permanently",
            handshake_headers={"Location": "https://127.0.0.1/ws/echo/"},
        )
    )
    assert verdict == Verdict.HTTP_STATUS
    assert (
        "HTTP 301 Moved Permanently redirecting to https://127.0.0.1/ws/echo/" in line
    )
    assert line.endswith("empty body (see docs/runbook.md#verdict-http-status)")


@pytest.mark.parametrize(
    ("phase", "code", "reason", "expect"),
    [
        (
            "hold",
            1006,
            "",
            "during the 10.0 s idle hold (code 1006: dropped without a close frame",
        ),
        (
            "hold",
            1012,
            "service restart",
            "during the 10.0 s idle hold (code 1012 'service restart')",
        ),
        ("echo", 1011, "", "before the first echo came back (code 1011)"),
        (
            "second-echo",
            1001,
            "",
            "after the 10.0 s hold, before the second echo came back (code 1001)",
        ),
    ],
)
def test_closed_idle(phase: str, code: int, reason: str, expect: str) -> None:
    verdict, line = classify(
        record(
            opened=True,
            handshake_status=101,
            echo_ok=phase == "hold",
            rtt_ms=1.0,
            hold_requested_s=10.0,
            held_s=4.04,
            closed_early=True,
            close_phase=phase,
            close_code=code,
            close_reason=reason,
        )
    )
    assert verdict == Verdict.CLOSED_IDLE
    assert line.startswith(
        "CLOSED: 101 Switching Protocols, then the server or a proxy closed the socket after 4.0 s"
    )
    assert expect in line


def test_echo_mismatch() -> None:
    verdict, line = classify(
        record(
            opened=True,
            handshake_status=101,
            echo_ok=False,
            error="sent 'a', got back 'b'",
        )
    )
    assert verdict == Verdict.ECHO_MISMATCH
    assert line == (
        "ECHO FAILED: 101 Switching Protocols, but sent 'a', got back 'b'"
        " (see docs/runbook.md#verdict-echo-mismatch)"
    )


@pytest.mark.parametrize(
    ("failure", "error", "expect"),
    [
        (
            HandshakeFailure.REFUSED,
            "ConnectionRefusedError: ...",
            "connection refused by 127.0.0.1:8080",
        ),
        (
            HandshakeFailure.DNS,
            "gaierror: Name or service not known",
            "could not resolve 127.0.0.1",
        ),
        (
            HandshakeFailure.TLS,
            "SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate",
            "--insecure",
        ),
        (
            HandshakeFailure.TIMEOUT,
            "TimeoutError: timed out",
            "no handshake response from 127.0.0.1:8080 within 5.0 s",
        ),
        (HandshakeFailure.NETWORK, "OSError: no route", "network error"),
    ],
)
def test_unreachable(failure: HandshakeFailure, error: str, expect: str) -> None:
    verdict, line = classify(record(handshake_failure=failure.value, error=error))
    assert verdict == Verdict.UNREACHABLE
    assert line.startswith("UNREACHABLE: ")
    assert expect in line


def test_unreachable_ipv6_target() -> None:
    _, line = classify(
        record(
            ws_url="ws://[::1]:8080/ws/echo/",
            handshake_failure=HandshakeFailure.REFUSED.value,
        )
    )
    assert "refused by [::1]:8080" in line


def test_dropped_handshake() -> None:
    verdict, line = classify(
        record(handshake_failure=HandshakeFailure.DROPPED.value, error="EOF")
    )
    assert verdict == Verdict.DROPPED_HANDSHAKE
    assert line.startswith(
        "DROPPED: 127.0.0.1:8080 accepted the connection but closed it"
    )


def test_invalid_handshake() -> None:
    verdict, line = classify(
        record(
            handshake_status=101,
            handshake_failure=HandshakeFailure.INVALID.value,
            error="bad Upgrade",
        )
    )
    assert verdict == Verdict.INVALID_HANDSHAKE
    assert (
        "answered HTTP 101, but not with a valid WebSocket handshake (bad Upgrade)"
        in line
    )


def test_too_many_connections_is_reserved() -> None:
    # Spelled here for the capacity tests; a single probe never reports it.
    assert Verdict.TOO_MANY_CONNECTIONS == "too-many-connections"


# --- handshake_failure ------------------------------------------------------


def _invalid_message(cause: Exception) -> InvalidMessage:
    exc = InvalidMessage("did not receive a valid HTTP response")
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
            HandshakeFailure.REFUSED,
        ),
        # asyncio's combined error when every address of a name refused.
        (
            OSError(
                "Multiple exceptions: [Errno 111] Connect call failed ('::1', 1), [Errno 111] ..."
            ),
            HandshakeFailure.REFUSED,
        ),
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            HandshakeFailure.DNS,
        ),
        (
            ssl.SSLCertVerificationError("certificate verify failed"),
            HandshakeFailure.TLS,
        ),
        (TimeoutError("timed out during opening handshake"), HandshakeFailure.TIMEOUT),
        (ConnectionResetError(errno.ECONNRESET, "reset"), HandshakeFailure.DROPPED),
        (_invalid_message(EOFError("connection closed")), HandshakeFailure.DROPPED),
        (
            _invalid_message(ValueError("unsupported protocol")),
            HandshakeFailure.INVALID,
        ),
        (InvalidUpgrade("Upgrade", "h2c"), HandshakeFailure.INVALID),
        (InvalidHandshake("odd"), HandshakeFailure.INVALID),
        (OSError(errno.EHOSTUNREACH, "No route to host"), HandshakeFailure.NETWORK),
    ],
)
def test_handshake_failure(exc: BaseException, failure: HandshakeFailure) -> None:
    assert handshake_failure(exc) == failure


# --- exit codes and usage ---------------------------------------------------

NOT_OPENED = [
    v
    for v in Verdict
    if v not in (Verdict.OPEN, Verdict.CLOSED_IDLE, Verdict.ECHO_MISMATCH)
]


@pytest.mark.parametrize("verdict", list(Verdict))
def test_exit_code_default_and_expect_open(verdict: Verdict) -> None:
    opened = verdict not in NOT_OPENED
    expected = 0 if verdict == Verdict.OPEN else 1
    assert exit_code(verdict, opened, None) == expected
    assert exit_code(verdict, opened, "open") == expected


@pytest.mark.parametrize("verdict", list(Verdict))
def test_exit_code_expect_rejected(verdict: Verdict) -> None:
    opened = verdict not in NOT_OPENED
    # Refused with an answer passes; opened sockets and unanswered probes fail.
    expected = 0 if not opened and verdict != Verdict.UNREACHABLE else 1
    assert exit_code(verdict, opened, "rejected") == expected


def test_exit_code_examples() -> None:
    assert exit_code("wsgi-backend", False, "rejected") == 0
    assert exit_code("unreachable", False, "rejected") == 1
    assert exit_code("closed-idle", True, "rejected") == 1
    assert exit_code("open", True, "rejected") == 1


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["http://127.0.0.1/", "--hold", "-1"],
        ["http://127.0.0.1/", "--hold", "nan"],
        ["http://127.0.0.1/", "--timeout", "0"],
        ["http://127.0.0.1/", "--expect", "maybe"],
    ],
)
def test_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        build_parser().parse_args(argv)
    assert excinfo.value.code == 2


def test_record_serialises_to_plain_json_types() -> None:
    import json

    result = record(handshake_failure=HandshakeFailure.REFUSED.value, error="x")
    verdict, result.message = classify(result)
    result.verdict = verdict.value
    data = json.loads(json.dumps(result.to_dict()))
    assert data["verdict"] == "unreachable"
    assert data["handshake_failure"] == "connection-refused"
    assert type(data["verdict"]) is str


def test_headers_helper_keeps_repeated_headers() -> None:
    headers = Headers(
        [("X-Wslab-Server", "a"), ("x-wslab-server", "b"), ("server", "nginx")]
    )
    assert _header(headers, "X-Wslab-Server") == "a, b"
    assert _header(headers, "X-Wslab-Interface") is None
    assert _headers_dict(headers) == {"X-Wslab-Server": "a, b", "server": "nginx"}


def test_server_and_location_headers_match_in_any_case() -> None:
    verdict, line = classify(
        record(handshake_status=502, handshake_headers={"server": "nginx"})
    )
    assert verdict == Verdict.SERVER_DOWN
    assert "(nginx)" in line
    _, line = classify(
        record(handshake_status=302, handshake_headers={"location": "/login/"})
    )
    assert "redirecting to /login/" in line


# --- the runbook ------------------------------------------------------------

# What the probe records for each verdict, at the least.
RECORDS = {
    Verdict.OPEN: {"opened": True, "handshake_status": 101, "echo_ok": True},
    Verdict.WSGI_BACKEND: {"handshake_status": 404, "handshake_interface": "wsgi"},
    Verdict.UPGRADE_NOT_FORWARDED: {"handshake_status": 404, "handshake_interface": "asgi"},
    Verdict.ORIGIN_REJECTED: {"handshake_status": 403},
    Verdict.SERVER_DOWN: {"handshake_status": 502},
    Verdict.HTTP_STATUS: {"handshake_status": 503},
    Verdict.CLOSED_IDLE: {"opened": True, "handshake_status": 101, "echo_ok": True, "closed_early": True,
                          "close_phase": "hold", "close_code": 1006},
    Verdict.ECHO_MISMATCH: {"opened": True, "handshake_status": 101, "echo_ok": False},
    Verdict.UNREACHABLE: {"handshake_failure": HandshakeFailure.REFUSED.value},
    Verdict.DROPPED_HANDSHAKE: {"handshake_failure": HandshakeFailure.DROPPED.value},
    Verdict.INVALID_HANDSHAKE: {"handshake_failure": HandshakeFailure.INVALID.value},
    Verdict.TOO_MANY_CONNECTIONS: {"handshake_status": 500, "handshake_headers": {"Server": "nginx"}},
}


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdicts_line_names_its_section_of_the_runbook(verdict: Verdict) -> None:
    got, line = classify(record(**RECORDS[verdict]))
    assert got == verdict
    anchor = runbook_anchor(verdict)
    assert line.endswith(f" (see docs/runbook.md#{anchor})")
    assert f'<a id="{anchor}"></a>' in (PROJECT_DIR / "docs/runbook.md").read_text()
