"""WSGI entry point, for gunicorn's sync workers.

A WSGI server can only ever see a WebSocket handshake as a plain HTTP GET;
Django answers it with a 404 because no HTTP view lives under /ws/.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labsite.settings")

application = get_wsgi_application()
