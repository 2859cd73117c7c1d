"""Fixtures for the sample app's tests.

pytest-django imports labsite.settings while pytest is still starting, before
any conftest.py is loaded, so nothing here can influence how the settings
module reads the environment: the tests for that run it in a subprocess (see
test_sample_settings.py). Per-test changes go through pytest-django's
``settings`` fixture instead; the app reads the values it needs at request or
connection time, so the overrides take effect.

The tests expect the settings' defaults, so run them without DJANGO_* or
WSLAB_SERVER in the environment (the Origin tests, for instance, rely on
localhost being in the default ALLOWED_HOSTS).
"""

import pytest


@pytest.fixture
def wslab_server(settings):
    """Pretend this process is run by an app server called "test-server"."""
    settings.WSLAB_SERVER = "test-server"
    return settings.WSLAB_SERVER


@pytest.fixture
def wslab_layout(settings):
    """Pretend the deployment is a layout called "test-layout"."""
    settings.WSLAB_LAYOUT = "test-layout"
    return settings.WSLAB_LAYOUT


@pytest.fixture
def channel_layer(settings):
    """A fresh in-memory channel layer, so groups never leak between tests.

    Channels drops its cached layer instances when CHANNEL_LAYERS changes.
    """
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    }
    from channels.layers import get_channel_layer

    return get_channel_layer()


@pytest.fixture
def asgi_application():
    """The project's full ASGI application, as the app servers load it."""
    from labsite.asgi import application

    return application


@pytest.fixture
def allowed_origin_headers():
    """Handshake headers a browser on http://localhost would send.

    localhost is in the default ALLOWED_HOSTS, which the Origin check uses.
    """
    return [(b"host", b"localhost"), (b"origin", b"http://localhost")]
