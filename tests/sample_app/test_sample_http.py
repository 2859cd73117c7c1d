"""HTTP behaviour of the sample app, through both the WSGI and ASGI handlers."""

import json
import os
import platform
from pathlib import Path

import django
from channels.testing import HttpCommunicator
from django.contrib.staticfiles import finders

# What a browser sends to open a WebSocket. Through WSGI, or through a proxy
# that dropped Upgrade/Connection, Django sees it as an ordinary GET.
HANDSHAKE_HEADERS = {
    "HTTP_UPGRADE": "websocket",
    "HTTP_CONNECTION": "Upgrade",
    "HTTP_SEC_WEBSOCKET_KEY": "dGhlIHNhbXBsZSBub25jZQ==",
    "HTTP_SEC_WEBSOCKET_VERSION": "13",
}


def asgi_headers(response):
    return {name.decode().lower(): value.decode() for name, value in response["headers"]}


def test_healthz_over_wsgi(client, wslab_server):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "interface": "wsgi",
        "server": "test-server",
        "pid": os.getpid(),
        "django": django.get_version(),
        "python": platform.python_version(),
    }
    assert response["X-Wslab-Interface"] == "wsgi"
    assert response["X-Wslab-Server"] == "test-server"


async def test_healthz_over_asgi(asgi_application, wslab_server):
    communicator = HttpCommunicator(
        asgi_application, "GET", "/healthz", headers=[(b"host", b"localhost")]
    )
    response = await communicator.get_response()

    assert response["status"] == 200
    body = json.loads(response["body"])
    assert body["status"] == "ok"
    assert body["interface"] == "asgi"
    assert body["server"] == "test-server"
    assert body["pid"] == os.getpid()
    headers = asgi_headers(response)
    assert headers["x-wslab-interface"] == "asgi"
    assert headers["x-wslab-server"] == "test-server"


def test_websocket_path_over_wsgi_is_a_tagged_404(client, wslab_server):
    response = client.get("/ws/echo/", **HANDSHAKE_HEADERS)

    assert response.status_code == 404
    assert response["X-Wslab-Interface"] == "wsgi"
    assert response["X-Wslab-Server"] == "test-server"


async def test_websocket_path_as_plain_http_over_asgi_is_a_tagged_404(
    asgi_application, wslab_server
):
    # A proxy that does not forward Upgrade turns the handshake into this.
    communicator = HttpCommunicator(
        asgi_application,
        "GET",
        "/ws/echo/",
        headers=[(b"host", b"localhost"), (b"sec-websocket-version", b"13")],
    )
    response = await communicator.get_response()

    assert response["status"] == 404
    headers = asgi_headers(response)
    assert headers["x-wslab-interface"] == "asgi"
    assert headers["x-wslab-server"] == "test-server"


def test_headers_on_a_disallowed_host_response(client, wslab_server):
    response = client.get("/healthz", HTTP_HOST="attacker.example")

    assert response.status_code == 400
    assert response["X-Wslab-Interface"] == "wsgi"
    assert response["X-Wslab-Server"] == "test-server"


def test_healthz_rejects_post(client):
    response = client.post("/healthz")

    assert response.status_code == 405
    assert response["X-Wslab-Interface"] == "wsgi"


def test_index_page_loads_the_script(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<script src="/static/echo/app.js"></script>' in page
    assert 'href="/static/echo/app.css"' in page


def test_index_page_names_the_layout_and_the_server(client, wslab_server, wslab_layout):
    page = client.get("/").content.decode()

    assert '<dd id="layout">test-layout</dd>' in page
    assert '<dd id="page-server">test-server</dd>' in page


def test_static_files_exist():
    script = finders.find("echo/app.js")
    stylesheet = finders.find("echo/app.css")

    assert script is not None
    assert stylesheet is not None
    source = Path(script).read_text(encoding="utf-8")
    # Same host as the page, wss when the page is https.
    assert '"/ws/echo/"' in source
    assert '"wss:"' in source
