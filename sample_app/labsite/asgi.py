"""ASGI entry point, for daphne, uvicorn and gunicorn's uvicorn workers.

HTTP goes to Django; WebSocket connections go to the echo app's consumers,
behind an Origin check against ALLOWED_HOSTS.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labsite.settings")

# Set up Django (settings, app registry) before importing anything that may
# import models or read settings, such as the consumers.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from echo.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A browser always sends Origin on a WebSocket handshake and does not
        # apply the same-origin policy to it, so this check is what stops
        # another site's page from opening sockets with a visitor's cookies.
        # Connections without an Origin header are refused as well.
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
