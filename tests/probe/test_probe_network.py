"""The probe against real servers on 127.0.0.1: one test per thing it can see."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from wslab.probe import ProbeResult, Verdict, probe, run_probe

# Upper bounds on time here only tell "it did not hang", and hold however busy
# the machine is: the events they bound take well under a second on an idle one.
LOAD_PROOF_S = 10.0
# Longest any single probe here may take; every probe's own timeouts and holds
# are shorter, so hitting this means the probe hung.
PROBE_BOUND = 30.0

WsServer = Callable[..., Awaitable[int]]
RawServer = Callable[..., Awaitable[int]]
HttpServer = Callable[..., int]


async def bounded_probe(url: str, **kwargs: Any) -> ProbeResult:
    return await asyncio.wait_for(probe(url, **kwargs), PROBE_BOUND)


def site(port: int, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{port}/"


# --- an echo server ---------------------------------------------------------


async def test_open(ws_server: WsServer) -> None:
    port = await ws_server()
    result = await bounded_probe(site(port))

    assert result.verdict == Verdict.OPEN
    assert result.opened and result.echo_ok
    assert result.handshake_status == 101
    assert result.rtt_ms is not None and 0 < result.rtt_ms < 5000
    assert result.closed_early is False
    assert result.close_code == 1000
    # The plain GET went to the same server.
    assert result.http_status == 200
    assert (result.http_interface, result.http_server) == ("asgi", "websockets")
    assert result.message.startswith("OPEN: 101 Switching Protocols, echo ")


async def test_open_survives_hold(ws_server: WsServer) -> None:
    port = await ws_server()
    result = await bounded_probe(site(port), hold=1.5)

    assert result.verdict == Verdict.OPEN
    assert result.echo_ok
    assert result.rtt_after_hold_ms is not None
    # At least the hold; the upper bound only says it did not hang (load-proof).
    assert 1.5 <= result.held_s < 1.5 + LOAD_PROOF_S
    assert result.hold_requested_s == 1.5
    assert result.message.endswith(f"held {result.held_s:.1f} s (see docs/runbook.md#verdict-open)")


async def test_custom_message_is_echoed(ws_server: WsServer) -> None:
    seen: list[str | bytes] = []

    async def recording_echo(ws: ServerConnection) -> None:
        async for message in ws:
            seen.append(message)
            await ws.send(message)

    port = await ws_server(recording_echo)
    result = await bounded_probe(site(port), message="héllo wslab")
    assert result.verdict == Verdict.OPEN
    assert seen == ["héllo wslab"]


async def test_websocket_url(ws_server: WsServer) -> None:
    port = await ws_server()
    result = await bounded_probe(f"ws://127.0.0.1:{port}/any/path/")

    assert result.verdict == Verdict.OPEN
    assert result.ws_url == f"ws://127.0.0.1:{port}/any/path/"
    assert result.http_url == f"http://127.0.0.1:{port}/"
    assert result.http_status == 200


def test_run_probe_without_a_loop(http_server: HttpServer) -> None:
    port = http_server(404, {"X-Wslab-Interface": "wsgi"})
    result = run_probe(site(port), timeout=2)
    assert result.verdict == Verdict.WSGI_BACKEND


# --- Origin -----------------------------------------------------------------


async def test_origin_header(ws_server: WsServer) -> None:
    origins: list[str | None] = []

    def record_origin(
        connection: ServerConnection, request: Request
    ) -> Response | None:
        if "Upgrade" in request.headers:
            origins.append(request.headers.get("Origin"))
            return None
        return connection.respond(200, "site\n")

    port = await ws_server(process_request=record_origin)
    await bounded_probe(site(port))
    await bounded_probe(site(port), origin=None)
    result = await bounded_probe(site(port), origin="https://example.test")

    assert origins == [f"http://127.0.0.1:{port}", None, "https://example.test"]
    assert result.origin_sent == "https://example.test"


async def test_origin_rejected_by_server(ws_server: WsServer) -> None:
    # websockets' own Origin check answers 403 like Channels' does.
    port = await ws_server(origins=["http://allowed.test"])
    result = await bounded_probe(site(port))

    assert result.verdict == Verdict.ORIGIN_REJECTED
    assert result.handshake_status == 403
    assert result.opened is False
    assert f"Origin http://127.0.0.1:{port}" in result.message


# --- the far side closes the open socket ------------------------------------


async def echo_then(ws: ServerConnection, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            async for message in ws:
                await ws.send(message)
    except TimeoutError:
        pass


async def test_closed_during_hold(ws_server: WsServer) -> None:
    async def restart_after_half_a_second(ws: ServerConnection) -> None:
        await echo_then(ws, 0.5)
        await ws.close(1012, "service restart")

    port = await ws_server(restart_after_half_a_second)
    # A hold far beyond the server's 0.5 s: however busy the machine, the
    # close lands inside it.
    result = await bounded_probe(site(port), hold=LOAD_PROOF_S)

    assert result.verdict == Verdict.CLOSED_IDLE
    assert result.closed_early
    assert result.close_phase == "hold"
    assert (result.close_code, result.close_reason) == (1012, "service restart")
    assert 0.3 <= result.held_s < LOAD_PROOF_S
    assert result.echo_ok  # the first echo did come back
    assert "code 1012 'service restart'" in result.message


async def test_dropped_without_close_frame(ws_server: WsServer) -> None:
    async def drop_after_half_a_second(ws: ServerConnection) -> None:
        await echo_then(ws, 0.5)
        ws.transport.abort()

    port = await ws_server(drop_after_half_a_second)
    result = await bounded_probe(site(port), hold=LOAD_PROOF_S)

    assert result.verdict == Verdict.CLOSED_IDLE
    assert result.close_code == 1006
    assert 0.3 <= result.held_s < LOAD_PROOF_S
    assert "dropped without a close frame" in result.message


async def test_closed_before_first_echo(ws_server: WsServer) -> None:
    async def close_at_once(ws: ServerConnection) -> None:
        await ws.close(1011, "nope")

    port = await ws_server(close_at_once)
    result = await bounded_probe(site(port), hold=2)

    assert result.verdict == Verdict.CLOSED_IDLE
    assert result.close_phase == "echo"
    assert result.echo_ok is False
    assert result.close_code == 1011


# --- echo problems ----------------------------------------------------------


async def test_echo_mismatch(ws_server: WsServer) -> None:
    async def reverse(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message[::-1])

    port = await ws_server(reverse)
    result = await bounded_probe(site(port), message="abc")

    assert result.verdict == Verdict.ECHO_MISMATCH
    assert result.echo_ok is False
    assert "sent 'abc', got back 'cba'" in result.message
    # The probe still closed the socket properly.
    assert result.close_code == 1000


async def test_echo_timeout(ws_server: WsServer) -> None:
    async def silent(ws: ServerConnection) -> None:
        await ws.wait_closed()

    port = await ws_server(silent)
    started = time.monotonic()
    result = await bounded_probe(site(port), timeout=0.5)

    assert result.verdict == Verdict.ECHO_MISMATCH
    assert "no echo within 0.5 s" in result.message
    assert time.monotonic() - started < LOAD_PROOF_S


# --- plain HTTP answers to the handshake ------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "verdict"),
    [
        (
            404,
            {"X-Wslab-Interface": "wsgi", "X-Wslab-Server": "gunicorn"},
            Verdict.WSGI_BACKEND,
        ),
        (
            404,
            {"X-Wslab-Interface": "asgi", "X-Wslab-Server": "daphne"},
            Verdict.UPGRADE_NOT_FORWARDED,
        ),
        (502, {"Server": "nginx"}, Verdict.SERVER_DOWN),
        (504, {}, Verdict.SERVER_DOWN),
        (403, {}, Verdict.ORIGIN_REJECTED),
        (500, {}, Verdict.HTTP_STATUS),
    ],
)
async def test_plain_http_status(
    http_server: HttpServer, status: int, headers: dict[str, str], verdict: Verdict
) -> None:
    port = http_server(status, headers, b"<html>\n  <b>nope</b>\n</html>")
    result = await bounded_probe(site(port), timeout=2)

    assert result.verdict == verdict
    assert result.opened is False
    assert result.handshake_status == status
    assert result.http_status == status
    assert result.handshake_interface == headers.get("X-Wslab-Interface")
    assert result.handshake_server == headers.get("X-Wslab-Server")
    assert result.http_interface == headers.get("X-Wslab-Interface")
    assert result.handshake_body_excerpt == "<html> <b>nope</b> </html>"


async def test_wsgi_backend_message(http_server: HttpServer) -> None:
    port = http_server(404, {"X-Wslab-Interface": "wsgi", "X-Wslab-Server": "gunicorn"})
    result = await bounded_probe(site(port), timeout=2)
    assert result.message == (
        "REJECTED: HTTP 404 from upstream (served by gunicorn over WSGI): the server did"
        " not treat the request as a WebSocket; WSGI has no way to hold the connection"
        " (see docs/runbook.md#verdict-wsgi-backend)"
    )


async def test_redirect_is_reported_not_followed(http_server: HttpServer) -> None:
    port = http_server(301, {"Location": "http://127.0.0.1:1/elsewhere/"})
    result = await bounded_probe(site(port), timeout=2)

    assert result.verdict == Verdict.HTTP_STATUS
    assert result.handshake_status == 301
    assert "redirecting to http://127.0.0.1:1/elsewhere/" in result.message


async def test_http_10_answer_is_an_invalid_handshake(http_server: HttpServer) -> None:
    # websockets refuses to parse anything but an HTTP/1.1 status line.
    port = http_server(404, {"X-Wslab-Interface": "wsgi"}, version="HTTP/1.0")
    result = await bounded_probe(site(port), timeout=2)

    assert result.verdict == Verdict.INVALID_HANDSHAKE
    assert result.handshake_status is None
    assert result.http_status == 404  # http.client is less strict
    assert "HTTP/1.0" in (result.error or "")


# --- no HTTP answer at all --------------------------------------------------


async def test_closed_port(closed_port: int) -> None:
    result = await bounded_probe(site(closed_port), timeout=2)

    assert result.verdict == Verdict.UNREACHABLE
    assert result.handshake_failure == "connection-refused"
    assert result.handshake_status is None
    assert result.http_status is None
    assert "ConnectionRefusedError" in (result.http_error or "")
    assert result.message.startswith(
        f"UNREACHABLE: connection refused by 127.0.0.1:{closed_port}"
    )


async def test_closed_port_by_name(closed_port: int) -> None:
    # Where "localhost" resolves to both ::1 and 127.0.0.1 and both refuse,
    # asyncio raises one combined OSError rather than ConnectionRefusedError.
    result = await bounded_probe(f"http://localhost:{closed_port}/", timeout=2)

    assert result.verdict == Verdict.UNREACHABLE
    assert result.handshake_failure == "connection-refused"


async def test_silent_server_times_out(raw_server: RawServer) -> None:
    async def say_nothing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await asyncio.wait_for(reader.read(), 5)
        except TimeoutError:
            pass
        writer.close()

    port = await raw_server(say_nothing)
    started = time.monotonic()
    result = await bounded_probe(site(port), timeout=0.5)

    assert result.verdict == Verdict.UNREACHABLE
    assert result.handshake_failure == "timeout"
    assert "within 0.5 s" in result.message
    assert time.monotonic() - started < LOAD_PROOF_S


async def read_request(reader: asyncio.StreamReader) -> None:
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)


async def test_closed_during_handshake(raw_server: RawServer) -> None:
    async def hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.close()

    port = await raw_server(hang_up)
    result = await bounded_probe(site(port), timeout=2)

    assert result.verdict == Verdict.DROPPED_HANDSHAKE
    assert result.handshake_failure == "dropped"
    assert result.handshake_status is None


async def test_reset_during_handshake(raw_server: RawServer) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        # Linger 0: close() sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    port = await raw_server(reset)
    result = await bounded_probe(site(port), timeout=2)

    assert result.verdict == Verdict.DROPPED_HANDSHAKE


# --- TLS --------------------------------------------------------------------


async def test_tls_self_signed(ws_server: WsServer, server_tls: ssl.SSLContext) -> None:
    port = await ws_server(ssl=server_tls)

    strict = await bounded_probe(site(port, "https"), timeout=2)
    assert strict.verdict == Verdict.UNREACHABLE
    assert strict.handshake_failure == "tls"
    assert "CERTIFICATE_VERIFY_FAILED" in (strict.http_error or "")
    assert "--insecure" in strict.message

    lax = await bounded_probe(site(port, "https"), timeout=2, insecure=True)
    assert lax.verdict == Verdict.OPEN
    assert lax.ws_url == f"wss://127.0.0.1:{port}/ws/echo/"
    assert lax.origin_sent == f"https://127.0.0.1:{port}"
    assert lax.http_status == 200


# --- arguments --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"hold": -1.0}, {"hold": float("nan")}, {"timeout": 0.0}, {"ws_path": "ws/echo/"}],
)
async def test_bad_arguments_raise(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await bounded_probe("http://127.0.0.1:1/", **kwargs)
