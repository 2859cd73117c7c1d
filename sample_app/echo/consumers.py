import json
import logging
import os
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

logger = logging.getLogger(__name__)


def welcome():
    """Who holds this socket: the layout, the app server and its process."""
    return {
        "type": "welcome",
        "layout": settings.WSLAB_LAYOUT,
        "server": settings.WSLAB_SERVER,
        "pid": os.getpid(),
    }


class EchoConsumer(AsyncWebsocketConsumer):
    """Send every frame back unchanged: text as text, binary as binary.

    A client that connects with ``?welcome=1`` first gets one JSON text frame
    saying which layout, app server and process hold its socket (the echo
    page shows it: in the split layouts it is not the server that served the
    page). Without it the socket is a pure echo from the first frame on.
    """

    async def connect(self):
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        if query.get("welcome") == ["1"]:
            await self.send(text_data=json.dumps(welcome()))

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is not None:
            await self.send(text_data=text_data)
        else:
            await self.send(bytes_data=bytes_data)


class BroadcastConsumer(AsyncWebsocketConsumer):
    """Relay each text frame to every socket in the same room.

    Rooms are channel-layer groups. With the in-memory layer a room only spans
    the sockets of one process; with Redis it spans every worker, which the
    from_pid/to_pid fields of each message make visible.
    """

    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.group_name = f"broadcast.{self.room}"
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self.send_json({**welcome(), "room": self.room})

    async def disconnect(self, code):
        # connect() may have failed before joining; nothing to leave then.
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            logger.debug("Ignoring a binary frame in room %s", self.room)
            return
        await self.channel_layer.group_send(
            self.group_name,
            {
                # Dispatched to broadcast_message() on every member.
                "type": "broadcast.message",
                "message": text_data,
                "from_pid": os.getpid(),
            },
        )

    async def broadcast_message(self, event):
        await self.send_json(
            {
                "type": "broadcast",
                "room": self.room,
                "message": event["message"],
                "from_pid": event["from_pid"],
                "to_pid": os.getpid(),
            }
        )

    async def send_json(self, content):
        await self.send(text_data=json.dumps(content))
