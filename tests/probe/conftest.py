"""Throwaway servers on 127.0.0.1 ephemeral ports for the probe's tests.

Each fixture is a factory: a test starts the server shapes it needs and the
fixture stops every one of them afterwards, each stop bounded in time.
"""

from __future__ import annotations

import asyncio
import datetime
import http.server
import ipaddress
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

HOST = "127.0.0.1"
STOP_TIMEOUT = 15.0

Handler = Callable[[ServerConnection], Awaitable[None]]


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def site_headers(interface: str = "asgi", server: str = "websockets") -> dict[str, str]:
    return {"X-Wslab-Interface": interface, "X-Wslab-Server": server}


def answer_plain_http(
    connection: ServerConnection, request: Request
) -> Response | None:
    """Serve a plain GET the way the sample app does: 200 with X-Wslab-*.

    Without this, the probe's HTTP GET would get websockets' own 426.
    """
    if "Upgrade" in request.headers:
        return None
    response = connection.respond(200, "site\n")
    for name, value in site_headers().items():
        response.headers[name] = value
    return response


@pytest.fixture
async def ws_server() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """Start websockets servers: ``port = await ws_server(handler, **serve_kwargs)``."""
    servers: list[Server] = []

    async def start(handler: Handler = echo, **kwargs: Any) -> int:
        kwargs.setdefault("process_request", answer_plain_http)
        server = await serve(handler, HOST, 0, **kwargs)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        await asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT)


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """Start bare TCP servers: ``port = await raw_server(on_connect)``."""
    servers: list[asyncio.Server] = []

    async def start(
        on_connect: Callable[
            [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]
        ],
    ) -> int:
        server = await asyncio.start_server(on_connect, HOST, 0)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()
        # wait_closed() also waits for open connections; a handler that is
        # still stalling must not hold the test run up.
        try:
            await asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT)
        except TimeoutError:
            pass


def _status_handler(
    status: int, headers: dict[str, str], body: bytes, version: str
) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        # websockets only accepts an HTTP/1.1 status line; the stdlib
        # default is HTTP/1.0.
        protocol_version = version

        def do_GET(self) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def http_server() -> Iterator[Callable[..., int]]:
    """Start stdlib HTTP servers answering every GET with one fixed response.

    ``port = http_server(404, {"X-Wslab-Interface": "wsgi"}, b"Not Found")``
    """
    running: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(
        status: int,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        version: str = "HTTP/1.1",
    ) -> int:
        handler = _status_handler(status, headers or {}, body, version)
        server = http.server.ThreadingHTTPServer((HOST, 0), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return server.server_address[1]

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(STOP_TIMEOUT)


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago, with nothing listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, like the lab's own."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file = directory / "cert.pem"
    key_file = directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    return context
