from django.urls import path, re_path

from echo import consumers

websocket_urlpatterns = [
    path("ws/echo/", consumers.EchoConsumer.as_asgi()),
    # The room name becomes part of a channel-layer group name, which allows
    # only ASCII letters, digits, "-", "_" and "." and fewer than 100 characters.
    re_path(
        r"^ws/broadcast/(?P<room>[A-Za-z0-9_-]{1,64})/$",
        consumers.BroadcastConsumer.as_asgi(),
    ),
]
