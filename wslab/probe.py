"""The lab's WebSocket probe: one real connection, one verdict.

    python -m wslab.probe URL [--ws-path PATH] [--origin ORIGIN|none]
                              [--hold SECONDS] [--timeout SECONDS]
                              [--message TEXT] [--insecure] [--json]
                              [--expect open|rejected]

Given a site URL (http:// or https://), the probe

1. GETs that URL and records the status and the X-Wslab-Interface /
   X-Wslab-Server headers the sample app adds to every HTTP response;
2. opens a WebSocket to the same host at --ws-path (ws:// for http, wss:// for
   https), sending the site's own origin as Origin unless told otherwise;
3. if the socket opens, does an echo round trip, optionally holds the socket
   idle for --hold seconds while watching for an early close, echoes again to
   prove the socket survived, and closes it normally (1000);
4. prints one human line that ends by naming the section of docs/runbook.md
   to read, or with --json one JSON object.

A ws:// or wss:// URL is accepted as well: the handshake goes to that URL and
the HTTP GET to "/" on the same host over http(s).

The outcome is classified into a verdict (see ``Verdict``) by ``classify``, a
pure function of the recorded facts, so the failure classes can be tested
without sockets. ``probe`` (async) and ``run_probe`` (sync) are the entry
points for other tools and the test suites.

Exit codes: 0 when the outcome is the expected one (by default: the socket
opened and echoed), 1 when it is not, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import errno
import http.client
import json
import math
import socket
import ssl
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.datastructures import Headers
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidHeader,
    InvalidMessage,
    InvalidStatus,
    NegotiationError,
)
from websockets.typing import Origin

DEFAULT_WS_PATH = "/ws/echo/"
DEFAULT_TIMEOUT = 5.0

# Upper bound for --hold: long enough for any proxy idle timeout worth
# testing, short enough that a typo cannot leave a probe running for days.
MAX_HOLD = 86_400.0

INTERFACE_HEADER = "X-Wslab-Interface"
SERVER_HEADER = "X-Wslab-Server"

BODY_EXCERPT_CHARS = 200

# Close code reported when the connection ended without a close frame
# (RFC 6455, 7.1.5); never sent on the wire.
ABNORMAL_CLOSURE = 1006

# An echo endpoint should stay silent while the probe holds the socket; these
# bound how many unexpected messages the hold will read before it stops reading.
MAX_UNSOLICITED_MESSAGES = 1_000

USER_AGENT = f"wslab-probe (websockets {websockets.__version__})"


class Verdict(enum.StrEnum):
    """What the probe saw, as a short machine word."""

    OPEN = "open"
    # The handshake came back as a plain HTTP response from Django under WSGI.
    WSGI_BACKEND = "wsgi-backend"
    # A plain HTTP response from Django under ASGI: an ASGI server could have
    # upgraded, so something in front of it dropped Upgrade/Connection.
    UPGRADE_NOT_FORWARDED = "upgrade-not-forwarded"
    # 403 without X-Wslab headers: the ASGI server's WebSocket path refused
    # the handshake, which for the sample app means the Origin check.
    ORIGIN_REJECTED = "origin-rejected"
    # 502/504 without X-Wslab headers: the proxy found no application server.
    SERVER_DOWN = "server-down"
    # Any other non-101 answer.
    HTTP_STATUS = "http-status"
    # Opened, then closed by the far side before the probe was done with it.
    CLOSED_IDLE = "closed-idle"
    # Opened, but the echo did not come back (or came back different).
    ECHO_MISMATCH = "echo-mismatch"
    # Nothing answered over HTTP: refused, DNS, TLS or timeout.
    UNREACHABLE = "unreachable"
    # The connection was accepted and then closed or reset during the
    # handshake, before any HTTP response. Under load this is one way a full
    # server turns connections away; see TOO_MANY_CONNECTIONS.
    DROPPED_HANDSHAKE = "dropped-handshake"
    # Something answered, but not with a WebSocket handshake websockets could
    # accept (malformed HTTP, a 101 with wrong Upgrade headers, ...).
    INVALID_HANDSHAKE = "invalid-handshake"
    # nginx itself answered 500 (no app stamp): what it does when it runs out
    # of worker_connections while connecting to the upstream (its error log
    # says "worker_connections are not enough"). A lone 503, or a dropped
    # handshake, is not evidence enough on its own: the capacity tests see
    # those too as load rises, and say so.
    TOO_MANY_CONNECTIONS = "too-many-connections"


# The operator's runbook has one section per verdict: its cause, how to
# confirm it, the fix. Every human line ends by naming it.
RUNBOOK = "docs/runbook.md"


def runbook_anchor(verdict: Verdict) -> str:
    """The anchor of VERDICT's section in the runbook (docs/runbook.md)."""
    return f"verdict-{Verdict(verdict).value}"


def runbook_section(verdict: Verdict) -> str:
    """Where to read about VERDICT: docs/runbook.md#verdict-<verdict>."""
    return f"{RUNBOOK}#{runbook_anchor(verdict)}"


class HandshakeFailure(enum.StrEnum):
    """Why a handshake got no usable HTTP response."""

    REFUSED = "connection-refused"
    DNS = "dns"
    TLS = "tls"
    TIMEOUT = "timeout"
    NETWORK = "network"
    DROPPED = "dropped"
    INVALID = "invalid-response"


class ClosePhase(enum.StrEnum):
    """What the probe was doing when the far side closed the socket."""

    ECHO = "echo"
    HOLD = "hold"
    SECOND_ECHO = "second-echo"


class _SiteOrigin(enum.Enum):
    SITE = "site"


# Default for ``origin``: send the site's own origin, as a browser on the
# site's page would. ``None`` sends no Origin header at all.
SITE_ORIGIN = _SiteOrigin.SITE

OriginArg = str | None | _SiteOrigin


@dataclasses.dataclass
class ProbeResult:
    """Everything one probe observed; ``to_dict`` is the --json record."""

    url: str
    ws_url: str
    http_url: str
    origin_sent: str | None = None

    # The plain HTTP GET of the site.
    http_status: int | None = None
    http_interface: str | None = None
    http_server: str | None = None
    http_error: str | None = None

    # The WebSocket handshake. handshake_status is 101 when upgraded, the
    # status of a refused handshake otherwise, None without any response.
    handshake_status: int | None = None
    handshake_reason: str | None = None
    handshake_interface: str | None = None
    handshake_server: str | None = None
    handshake_headers: dict[str, str] = dataclasses.field(default_factory=dict)
    handshake_body_excerpt: str | None = None
    handshake_failure: str | None = None
    handshake_ms: float | None = None

    # The open socket.
    opened: bool = False
    echo_ok: bool | None = None
    rtt_ms: float | None = None
    rtt_after_hold_ms: float | None = None
    hold_requested_s: float = 0.0
    held_s: float = 0.0
    unsolicited_messages: int = 0
    closed_early: bool = False
    close_phase: str | None = None
    close_code: int | None = None
    close_reason: str | None = None

    timeout_s: float = DEFAULT_TIMEOUT
    error: str | None = None
    verdict: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Targets:
    """Where the probe's two requests go, and the origin the site has."""

    http_url: str
    ws_url: str
    site_origin: str


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_WS_SCHEME = {"http": "ws", "https": "wss"}
_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def resolve_targets(url: str, ws_path: str = DEFAULT_WS_PATH) -> Targets:
    """Derive the HTTP URL, WebSocket URL and site origin from ``url``.

    Raises ValueError for anything but an absolute http(s)/ws(s) URL or a
    ws_path that is not an absolute path.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} in {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    if not ws_path.startswith("/"):
        raise ValueError(f"--ws-path must start with '/': {ws_path!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in {url!r}: {exc}") from None

    # Credentials belong in neither the Origin nor the HTTP GET's netloc.
    hostport = parts.netloc.rpartition("@")[2]

    if scheme in _WS_SCHEME:
        http_scheme = scheme
        http_url = url
        ws_url = f"{_WS_SCHEME[scheme]}://{parts.netloc}{ws_path}"
    else:
        http_scheme = _HTTP_SCHEME[scheme]
        http_url = f"{http_scheme}://{hostport}/"
        ws_url = url

    # Browsers serialise an origin without the scheme's default port.
    host = hostport.rsplit(":", 1)[0] if port is not None else hostport
    if port is not None and port != _DEFAULT_PORTS[http_scheme]:
        host = f"{host}:{port}"
    return Targets(
        http_url=http_url,
        ws_url=ws_url,
        site_origin=f"{http_scheme}://{host.lower()}",
    )


def _tls_context(insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if insecure:
        # The lab terminates TLS with a self-signed certificate.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _excerpt(body: bytes | bytearray | str) -> str:
    text = body if isinstance(body, str) else bytes(body).decode("utf-8", "replace")
    return " ".join(text.split())[:BODY_EXCERPT_CHARS]


def _header(headers: Headers, name: str) -> str | None:
    values = headers.get_all(name)
    return ", ".join(values) if values else None


def _headers_dict(headers: Headers) -> dict[str, str]:
    """Response headers as a JSON-friendly dict, repeated ones comma-joined.

    Names keep the spelling of their first occurrence; look them up with
    ``_lookup``, since servers differ in case.
    """
    merged: dict[str, str] = {}
    spelling: dict[str, str] = {}
    for name, value in headers.raw_items():
        key = spelling.setdefault(name.lower(), name)
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _lookup(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


# --------------------------------------------------------------------------
# Classification: pure functions of the record.
# --------------------------------------------------------------------------


def _served_by(server: str | None, interface: str) -> str:
    return f"{server} over {interface.upper()}" if server else interface.upper()


def _close_text(result: ProbeResult) -> str:
    code = result.close_code
    reason = f" {result.close_reason!r}" if result.close_reason else ""
    text = f"code {code}{reason}"
    if code == ABNORMAL_CLOSURE:
        text += (
            ": dropped without a close frame, typical of a proxy read timeout"
            " such as nginx's proxy_read_timeout"
        )
    return text


def _host_port(ws_url: str) -> str:
    parts = urlsplit(ws_url)
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _origin_host(origin: str) -> str:
    return urlsplit(origin).hostname or origin


def _close_phase_text(result: ProbeResult) -> str:
    hold = result.hold_requested_s
    if result.close_phase == ClosePhase.ECHO:
        return "before the first echo came back"
    if result.close_phase == ClosePhase.SECOND_ECHO:
        return f"after the {hold:.1f} s hold, before the second echo came back"
    return f"during the {hold:.1f} s idle hold"


def _classify_opened(result: ProbeResult) -> tuple[Verdict, str]:
    if result.closed_early:
        when = _close_phase_text(result)
        return Verdict.CLOSED_IDLE, (
            f"CLOSED: 101 Switching Protocols, then the server or a proxy closed the"
            f" socket after {result.held_s:.1f} s, {when} ({_close_text(result)})"
        )
    if not result.echo_ok:
        return Verdict.ECHO_MISMATCH, (
            f"ECHO FAILED: 101 Switching Protocols, but {result.error or 'the echo did not match'}"
        )
    line = "OPEN: 101 Switching Protocols"
    if result.rtt_ms is not None:
        line += f", echo {result.rtt_ms:.1f} ms"
    if result.hold_requested_s > 0:
        line += f", held {result.held_s:.1f} s"
    return Verdict.OPEN, line


def _classify_status(result: ProbeResult) -> tuple[Verdict, str]:
    status = result.handshake_status
    interface = (result.handshake_interface or "").strip().lower()
    if interface == "wsgi":
        return Verdict.WSGI_BACKEND, (
            f"REJECTED: HTTP {status} from upstream (served by"
            f" {_served_by(result.handshake_server, 'wsgi')}): the server did not treat"
            " the request as a WebSocket; WSGI has no way to hold the connection"
        )
    if interface == "asgi":
        return Verdict.UPGRADE_NOT_FORWARDED, (
            f"REJECTED: HTTP {status} from an ASGI server"
            f" ({result.handshake_server or 'unnamed'}) that could have upgraded: the"
            " Upgrade/Connection headers did not reach it — check the proxy's"
            " proxy_http_version 1.1 and Upgrade/Connection headers"
        )
    if status == 403:
        if result.origin_sent is None:
            return Verdict.ORIGIN_REJECTED, (
                "REJECTED: HTTP 403 on a handshake sent without an Origin header: the"
                " app's origin check refuses handshakes whose Origin is not in"
                " ALLOWED_HOSTS, and a missing one never is"
            )
        return Verdict.ORIGIN_REJECTED, (
            f"REJECTED: HTTP 403 for Origin {result.origin_sent}: the app's origin"
            f" check refused it — {_origin_host(result.origin_sent)} is not in"
            " ALLOWED_HOSTS"
        )
    server_header = _lookup(result.handshake_headers, "Server") or ""
    if status == 500 and server_header.lower().startswith("nginx"):
        return Verdict.TOO_MANY_CONNECTIONS, (
            f"REJECTED: HTTP 500 from the proxy itself ({server_header}), not from the app:"
            " nginx answers so when it runs out of worker_connections while connecting"
            " upstream; its error log says 'worker_connections are not enough'. Raise the"
            " connection limits (worker_connections, worker_rlimit_nofile, LimitNOFILE)"
        )
    if status in (502, 504):
        server = _lookup(result.handshake_headers, "Server")
        proxy = f"the proxy ({server})" if server else "the proxy"
        why = "did not answer in time" if status == 504 else "refused or failed"
        return Verdict.SERVER_DOWN, (
            f"REJECTED: HTTP {status} from {proxy}: the proxy could not reach the"
            f" application server (it {why}; is it running where the proxy points?)"
        )
    reason = f" {result.handshake_reason}" if result.handshake_reason else ""
    location = _lookup(result.handshake_headers, "Location")
    redirect = f" redirecting to {location}" if location else ""
    body = result.handshake_body_excerpt
    return Verdict.HTTP_STATUS, (
        f"REJECTED: HTTP {status}{reason}{redirect} on the WebSocket handshake:"
        f" {repr(body) if body else 'empty body'}"
    )


def _classify_no_response(result: ProbeResult) -> tuple[Verdict, str]:
    failure = result.handshake_failure
    error = result.error or "no details"
    if failure == HandshakeFailure.DROPPED:
        return Verdict.DROPPED_HANDSHAKE, (
            f"DROPPED: {_host_port(result.ws_url)} accepted the connection but closed"
            f" it during the WebSocket handshake, before any HTTP response ({error})"
        )
    if failure == HandshakeFailure.INVALID:
        status = (
            f"HTTP {result.handshake_status}"
            if result.handshake_status
            else "something"
        )
        return Verdict.INVALID_HANDSHAKE, (
            f"INVALID HANDSHAKE: the server answered {status}, but not with a valid"
            f" WebSocket handshake ({error})"
        )
    target = _host_port(result.ws_url)
    if failure == HandshakeFailure.REFUSED:
        detail = f"connection refused by {target}: nothing is listening there"
    elif failure == HandshakeFailure.DNS:
        detail = f"could not resolve {urlsplit(result.ws_url).hostname} ({error})"
    elif failure == HandshakeFailure.TLS:
        detail = f"TLS handshake with {target} failed ({error})"
        if "CERTIFICATE_VERIFY_FAILED" in error:
            detail += "; --insecure accepts the lab's self-signed certificate"
    elif failure == HandshakeFailure.TIMEOUT:
        detail = (
            f"no handshake response from {target} within {result.timeout_s:.1f} s"
            f" ({error})"
        )
    else:
        detail = f"network error talking to {target} ({error})"
    return Verdict.UNREACHABLE, f"UNREACHABLE: {detail}"


def classify(result: ProbeResult) -> tuple[Verdict, str]:
    """Return the verdict and the human line for what ``result`` records.

    Pure: reads only the record, so every failure class can be tested without
    a socket. The line ends with the runbook section to read.
    """
    if result.opened:
        verdict, line = _classify_opened(result)
    elif result.handshake_status not in (None, 101):
        verdict, line = _classify_status(result)
    else:
        verdict, line = _classify_no_response(result)
    return verdict, f"{line} (see {runbook_section(verdict)})"


def exit_code(verdict: str, opened: bool, expect: str | None) -> int:
    """The process exit status for a verdict under ``--expect``.

    "rejected" means the handshake did not open, but was answered: a probe
    that reached nothing proves nothing about rejection.
    """
    if expect == "rejected":
        return 0 if not opened and verdict != Verdict.UNREACHABLE else 1
    return 0 if verdict == Verdict.OPEN else 1


# --------------------------------------------------------------------------
# The network side.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _HttpOutcome:
    status: int | None = None
    interface: str | None = None
    server: str | None = None
    error: str | None = None


def _http_get(url: str, timeout: float, context: ssl.SSLContext) -> _HttpOutcome:
    """GET ``url`` once, without redirects or proxies; only the head is read.

    http.client rather than urllib: urllib follows redirects and honours
    *_proxy environment variables, and either would report on some other
    server than the one named on the command line.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS[parts.scheme]
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": USER_AGENT})
        response = conn.getresponse()
        return _HttpOutcome(
            status=response.status,
            interface=response.getheader(INTERFACE_HEADER),
            server=response.getheader(SERVER_HEADER),
        )
    except (OSError, http.client.HTTPException) as exc:
        return _HttpOutcome(error=_describe(exc))
    finally:
        conn.close()


class _connect_without_redirects(connect):
    """connect() that reports a redirect instead of following it.

    A 3xx on the WebSocket path is itself a finding (Django's APPEND_SLASH, an
    http-to-https redirect in the proxy), and following it could send the
    probe to a host nobody asked it to test.
    """

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


def _is_refused(exc: OSError) -> bool:
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return True
    # When a name resolves to several addresses (localhost: ::1 and
    # 127.0.0.1) and every attempt fails, asyncio raises a bare OSError whose
    # message lists the individual errors.
    return f"[Errno {errno.ECONNREFUSED}]" in str(exc)


def handshake_failure(exc: BaseException) -> HandshakeFailure:
    """Name the way a handshake that produced no usable response failed."""
    if isinstance(exc, InvalidMessage):
        # websockets wraps "connection closed before a full response" as an
        # InvalidMessage caused by EOFError; other causes are HTTP it could
        # not parse (an HTTP/1.0 status line among them).
        if isinstance(exc.__cause__, EOFError):
            return HandshakeFailure.DROPPED
        return HandshakeFailure.INVALID
    if isinstance(exc, InvalidHandshake):
        return HandshakeFailure.INVALID
    # The OSError subclasses below overlap, hence the order.
    if isinstance(exc, ssl.SSLError):
        return HandshakeFailure.TLS
    if isinstance(exc, socket.gaierror):
        return HandshakeFailure.DNS
    if isinstance(exc, TimeoutError):
        return HandshakeFailure.TIMEOUT
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return HandshakeFailure.DROPPED
    if isinstance(exc, OSError) and _is_refused(exc):
        return HandshakeFailure.REFUSED
    return HandshakeFailure.NETWORK


def _record_handshake_error(result: ProbeResult, exc: Exception) -> None:
    """Fill the handshake fields of ``result`` from a failed connect()."""
    if isinstance(exc, InvalidStatus):
        # The one failure with a full HTTP response: status, headers, body.
        response = exc.response
        result.handshake_status = response.status_code
        result.handshake_reason = response.reason_phrase
        result.handshake_interface = _header(response.headers, INTERFACE_HEADER)
        result.handshake_server = _header(response.headers, SERVER_HEADER)
        result.handshake_headers = _headers_dict(response.headers)
        result.handshake_body_excerpt = _excerpt(response.body)
        return
    result.handshake_failure = handshake_failure(exc).value
    result.error = _describe(exc)
    if exc.__cause__ is not None:
        result.error += f" ({_describe(exc.__cause__)})"
    if isinstance(exc, (InvalidHeader, NegotiationError)):
        # websockets checks these only after the status turned out to be 101.
        result.handshake_status = 101


async def _echo(
    ws: ClientConnection, text: str, timeout: float
) -> tuple[float | None, str | None]:
    """Send ``text`` and wait for it back: (rtt in ms, None) or (None, error).

    ConnectionClosed propagates: the caller records the close.
    """
    started = time.perf_counter()
    await ws.send(text)
    try:
        reply = await asyncio.wait_for(ws.recv(), timeout)
    except TimeoutError:
        return None, f"no echo within {timeout:.1f} s"
    rtt_ms = (time.perf_counter() - started) * 1000
    if isinstance(reply, str):
        if reply == text:
            return rtt_ms, None
        return None, f"sent {_excerpt(text)!r}, got back {_excerpt(reply)!r}"
    return None, f"sent text {_excerpt(text)!r}, got back {len(reply)} bytes of binary"


async def _hold_idle(ws: ClientConnection, seconds: float) -> int:
    """Keep the socket open ``seconds`` without sending anything.

    Reading (rather than just sleeping) is what notices a close as it happens;
    ConnectionClosed propagates. Returns how many messages arrived unasked;
    the hold ends early once that reaches MAX_UNSOLICITED_MESSAGES, as such a
    server is no echo endpoint.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    received = 0
    while received < MAX_UNSOLICITED_MESSAGES:
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        try:
            await asyncio.wait_for(ws.recv(), remaining)
        except TimeoutError:
            break
        received += 1
    return received


async def _exercise(
    ws: ClientConnection,
    result: ProbeResult,
    *,
    hold: float,
    timeout: float,
    message: str | None,
) -> None:
    """Echo, hold, echo again; record what happened on ``result``."""
    opened_at = time.monotonic()
    token = uuid.uuid4().hex
    first = message if message is not None else f"wslab-probe {token} 1"
    second = message if message is not None else f"wslab-probe {token} 2"
    phase = ClosePhase.ECHO
    try:
        result.rtt_ms, result.error = await _echo(ws, first, timeout)
        result.echo_ok = result.error is None
        if result.echo_ok and hold > 0:
            phase = ClosePhase.HOLD
            result.unsolicited_messages = await _hold_idle(ws, hold)
            result.held_s = time.monotonic() - opened_at
            if result.unsolicited_messages >= MAX_UNSOLICITED_MESSAGES:
                result.echo_ok = False
                result.error = (
                    f"the server sent {result.unsolicited_messages} messages nobody"
                    " asked for during the hold"
                )
            else:
                phase = ClosePhase.SECOND_ECHO
                result.rtt_after_hold_ms, result.error = await _echo(
                    ws, second, timeout
                )
                result.echo_ok = result.error is None
        else:
            result.held_s = time.monotonic() - opened_at
    except ConnectionClosed as exc:
        result.held_s = time.monotonic() - opened_at
        result.closed_early = True
        result.close_phase = phase.value
        if phase is not ClosePhase.HOLD:
            # The echo in flight never came back.
            result.echo_ok = False
        # recv() raises only once the TCP connection is gone, so close_code
        # is set; the exception's own record is the fallback.
        received = exc.rcvd
        result.close_code = ws.close_code or (
            received.code if received else ABNORMAL_CLOSURE
        )
        result.close_reason = ws.close_reason or (received.reason if received else "")
        return
    # Normal closure; close_code is what the server answered with.
    await ws.close()
    result.close_code = ws.close_code
    result.close_reason = ws.close_reason


async def probe(
    url: str,
    *,
    ws_path: str = DEFAULT_WS_PATH,
    origin: OriginArg = SITE_ORIGIN,
    hold: float = 0.0,
    timeout: float = DEFAULT_TIMEOUT,
    insecure: bool = False,
    message: str | None = None,
) -> ProbeResult:
    """Probe ``url`` once and return the classified record.

    Network failures are recorded, not raised. Raises ValueError for an
    unusable URL, ws_path, hold or timeout.
    """
    targets = resolve_targets(url, ws_path)
    if not (0 <= hold <= MAX_HOLD):
        raise ValueError(f"hold must be between 0 and {MAX_HOLD:g} seconds: {hold!r}")
    if not (0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive number of seconds: {timeout!r}")

    origin_sent = targets.site_origin if isinstance(origin, _SiteOrigin) else origin
    result = ProbeResult(
        url=url,
        ws_url=targets.ws_url,
        http_url=targets.http_url,
        origin_sent=origin_sent,
        hold_requested_s=hold,
        timeout_s=timeout,
    )
    context = _tls_context(insecure)

    site = await asyncio.to_thread(_http_get, targets.http_url, timeout, context)
    result.http_status = site.status
    result.http_interface = site.interface
    result.http_server = site.server
    result.http_error = site.error

    secure = urlsplit(targets.ws_url).scheme == "wss"
    started = time.perf_counter()
    try:
        ws = await _connect_without_redirects(
            targets.ws_url,
            origin=Origin(origin_sent) if origin_sent is not None else None,
            open_timeout=timeout,
            close_timeout=timeout,
            # Keepalive pings would reset the very idle timers --hold is meant
            # to expose.
            ping_interval=None,
            # Ignore *_proxy variables: the probe tests the named host.
            proxy=None,
            ssl=context if secure else None,
            user_agent_header=USER_AGENT,
        )
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        result.handshake_ms = (time.perf_counter() - started) * 1000
        _record_handshake_error(result, exc)
    else:
        result.handshake_ms = (time.perf_counter() - started) * 1000
        result.opened = True
        result.handshake_status = 101
        if ws.response is not None:
            headers = ws.response.headers
            result.handshake_reason = ws.response.reason_phrase
            result.handshake_interface = _header(headers, INTERFACE_HEADER)
            result.handshake_server = _header(headers, SERVER_HEADER)
            result.handshake_headers = _headers_dict(headers)
        try:
            await _exercise(ws, result, hold=hold, timeout=timeout, message=message)
        finally:
            # After cancellation or an unexpected error the socket is still
            # open; a closed one has a close code and needs nothing.
            if ws.close_code is None:
                ws.transport.abort()

    verdict, result.message = classify(result)
    result.verdict = verdict.value
    return result


def run_probe(
    url: str,
    *,
    ws_path: str = DEFAULT_WS_PATH,
    origin: OriginArg = SITE_ORIGIN,
    hold: float = 0.0,
    timeout: float = DEFAULT_TIMEOUT,
    insecure: bool = False,
    message: str | None = None,
) -> ProbeResult:
    """Synchronous ``probe`` for callers without an event loop of their own."""
    return asyncio.run(
        probe(
            url,
            ws_path=ws_path,
            origin=origin,
            hold=hold,
            timeout=timeout,
            insecure=insecure,
            message=message,
        )
    )


# --------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------


def _seconds(upper: float, allow_zero: bool) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        low_ok = value >= 0 if allow_zero else value > 0
        if not (low_ok and value <= upper):
            bound = ">= 0" if allow_zero else "> 0"
            raise argparse.ArgumentTypeError(
                f"must be {bound} and <= {upper:g}: {text!r}"
            )
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wslab.probe",
        description=(
            "GET a site, open a WebSocket to it, echo, optionally hold it idle,"
            " and print one verdict line (or a JSON record)."
        ),
    )
    parser.add_argument(
        "url",
        help="site URL (http:// or https://), or a ws:// / wss:// WebSocket URL",
    )
    parser.add_argument(
        "--ws-path",
        default=DEFAULT_WS_PATH,
        help=f"WebSocket path on the site (default {DEFAULT_WS_PATH}; ignored for ws(s):// URLs)",
    )
    parser.add_argument(
        "--origin",
        default=None,
        help="Origin header to send (default: the site's own origin; 'none' sends none)",
    )
    parser.add_argument(
        "--hold",
        type=_seconds(MAX_HOLD, allow_zero=True),
        default=0.0,
        metavar="SECONDS",
        help="keep the socket idle this long after the first echo (default 0)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds(3600.0, allow_zero=False),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"timeout for connecting, the handshake and each reply (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--message", metavar="TEXT", help="text to echo (default: a unique token)"
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the TLS certificate (the lab's is self-signed)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the JSON record instead of a line"
    )
    parser.add_argument(
        "--expect",
        choices=("open", "rejected"),
        help="exit 0 only if the socket opened / was refused with an HTTP answer",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    origin: OriginArg
    if args.origin is None:
        origin = SITE_ORIGIN
    elif args.origin.lower() == "none":
        origin = None
    else:
        origin = args.origin
    try:
        resolve_targets(args.url, args.ws_path)
    except ValueError as exc:
        parser.error(str(exc))

    result = run_probe(
        args.url,
        ws_path=args.ws_path,
        origin=origin,
        hold=args.hold,
        timeout=args.timeout,
        insecure=args.insecure,
        message=args.message,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(result.message)
    return exit_code(result.verdict, result.opened, args.expect)


if __name__ == "__main__":
    sys.exit(main())
