"""WebSocket behaviour: the echo and broadcast consumers and the Origin check."""

import json
import os

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from echo.consumers import EchoConsumer
from echo.routing import websocket_urlpatterns


def broadcast_communicator(room):
    # Routed, so the consumer gets its room from the URL as in production.
    return WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/broadcast/{room}/")


async def receive_json(communicator):
    return json.loads(await communicator.receive_from())


async def test_echo_text_round_trip():
    communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), "/ws/echo/")
    connected, _ = await communicator.connect()
    assert connected

    await communicator.send_to(text_data="hello, lab \N{SNOWMAN}")
    response = await communicator.receive_output()

    # Text comes back as a text frame, not as bytes.
    assert response == {"type": "websocket.send", "text": "hello, lab \N{SNOWMAN}"}
    await communicator.disconnect()


async def test_a_socket_that_asks_is_welcomed_before_the_echo(wslab_server, wslab_layout):
    communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), "/ws/echo/?welcome=1")
    connected, _ = await communicator.connect()
    assert connected

    assert await receive_json(communicator) == {
        "type": "welcome",
        "layout": "test-layout",
        "server": "test-server",
        "pid": os.getpid(),
    }
    await communicator.send_to(text_data="after the welcome")
    assert await communicator.receive_from() == "after the welcome"
    await communicator.disconnect()


@pytest.mark.parametrize("query", ["", "welcome=0", "welcome=yes", "welcome=1&welcome=1"])
async def test_a_socket_that_does_not_ask_gets_only_its_echo(query):
    communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), f"/ws/echo/?{query}")
    connected, _ = await communicator.connect()
    assert connected

    await communicator.send_to(text_data="first")
    # The first frame back is the echo, not a welcome.
    assert await communicator.receive_from() == "first"
    assert await communicator.receive_nothing()
    await communicator.disconnect()


async def test_echo_binary_round_trip():
    payload = bytes(range(256))
    communicator = WebsocketCommunicator(EchoConsumer.as_asgi(), "/ws/echo/")
    connected, _ = await communicator.connect()
    assert connected

    await communicator.send_to(bytes_data=payload)
    response = await communicator.receive_output()

    assert response == {"type": "websocket.send", "bytes": payload}
    await communicator.disconnect()


async def test_echo_through_the_asgi_application(asgi_application, allowed_origin_headers):
    communicator = WebsocketCommunicator(
        asgi_application, "/ws/echo/", headers=allowed_origin_headers
    )
    connected, _ = await communicator.connect()
    assert connected

    await communicator.send_to(text_data="through the stack")
    assert await communicator.receive_from() == "through the stack"
    await communicator.disconnect()


@pytest.mark.parametrize(
    "origin",
    [
        b"http://localhost:8080",
        b"https://localhost",
        b"http://127.0.0.1",
        b"http://[::1]:8000",
    ],
)
async def test_any_scheme_and_port_of_an_allowed_host_is_accepted(asgi_application, origin):
    communicator = WebsocketCommunicator(
        asgi_application, "/ws/echo/", headers=[(b"host", b"localhost"), (b"origin", origin)]
    )
    connected, _ = await communicator.connect()

    assert connected
    await communicator.disconnect()


@pytest.mark.parametrize(
    "origin",
    [b"http://attacker.example", b"http://localhost.attacker.example", b"null"],
)
async def test_foreign_origin_is_refused(asgi_application, origin):
    communicator = WebsocketCommunicator(
        asgi_application, "/ws/echo/", headers=[(b"host", b"localhost"), (b"origin", origin)]
    )
    await communicator.send_input({"type": "websocket.connect"})

    # A close before any accept, without a code: ASGI servers answer the
    # handshake with HTTP 403 and the browser reports close code 1006.
    assert await communicator.receive_output() == {"type": "websocket.close"}
    await communicator.disconnect()


async def test_missing_origin_is_refused(asgi_application):
    communicator = WebsocketCommunicator(
        asgi_application, "/ws/echo/", headers=[(b"host", b"localhost")]
    )
    await communicator.send_input({"type": "websocket.connect"})

    assert await communicator.receive_output() == {"type": "websocket.close"}
    await communicator.disconnect()


async def test_broadcast_reaches_every_member_of_the_room(channel_layer, wslab_server, wslab_layout):
    alice = broadcast_communicator("lobby")
    bob = broadcast_communicator("lobby")
    outsider = broadcast_communicator("elsewhere")
    for communicator in (alice, bob, outsider):
        connected, _ = await communicator.connect()
        assert connected

    for communicator, room in ((alice, "lobby"), (bob, "lobby"), (outsider, "elsewhere")):
        assert await receive_json(communicator) == {
            "type": "welcome",
            "room": room,
            "pid": os.getpid(),
            "server": "test-server",
            "layout": "test-layout",
        }

    await alice.send_to(text_data="hi from alice")

    expected = {
        "type": "broadcast",
        "room": "lobby",
        "message": "hi from alice",
        "from_pid": os.getpid(),
        "to_pid": os.getpid(),
    }
    # The sender gets its own message back too.
    assert await receive_json(alice) == expected
    assert await receive_json(bob) == expected
    assert await outsider.receive_nothing()

    for communicator in (alice, bob, outsider):
        await communicator.disconnect()


async def test_broadcast_member_leaves_the_group_on_disconnect(channel_layer):
    alice = broadcast_communicator("lobby")
    bob = broadcast_communicator("lobby")
    for communicator in (alice, bob):
        await communicator.connect()
        await communicator.receive_from()
    assert len(channel_layer.groups["broadcast.lobby"]) == 2

    await bob.disconnect()

    assert len(channel_layer.groups.get("broadcast.lobby", {})) == 1
    await alice.send_to(text_data="anyone?")
    assert (await receive_json(alice))["message"] == "anyone?"
    await alice.disconnect()


async def test_broadcast_ignores_binary_frames(channel_layer):
    alice = broadcast_communicator("lobby")
    await alice.connect()
    await alice.receive_from()

    await alice.send_to(bytes_data=b"\x00\x01")

    assert await alice.receive_nothing()
    await alice.disconnect()


@pytest.mark.parametrize(
    ("path", "room"),
    [
        ("/ws/broadcast/a/", "a"),
        ("/ws/broadcast/Room_1-b/", "Room_1-b"),
        ("/ws/broadcast/" + "x" * 64 + "/", "x" * 64),
    ],
)
async def test_broadcast_room_names(channel_layer, path, room):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    connected, _ = await communicator.connect()
    assert connected

    assert (await receive_json(communicator))["room"] == room
    await communicator.disconnect()


@pytest.mark.parametrize(
    "path",
    ["/ws/broadcast/" + "x" * 65 + "/", "/ws/broadcast/has.dot/", "/ws/broadcast//"],
)
async def test_broadcast_rejects_bad_room_names(channel_layer, path):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)

    await communicator.send_input({"type": "websocket.connect"})

    # Channels raises rather than refusing: daphne and uvicorn log a traceback
    # and answer the handshake with HTTP 500.
    with pytest.raises(ValueError, match="No route found"):
        await communicator.wait()

