"""HTTP routes. WebSocket routes live in echo.routing.

There is deliberately nothing under /ws/: a WebSocket handshake that reaches
Django as plain HTTP (a WSGI server, or a proxy that dropped the Upgrade
header) gets a 404, whose X-Wslab-* headers tell the lab which case it was.
"""

from django.urls import path

from echo import views

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
]
