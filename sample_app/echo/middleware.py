"""Response headers that say which interface and app server answered."""

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.utils.decorators import sync_and_async_middleware


def request_interface(request):
    """Return "asgi" or "wsgi" according to the handler that built the request.

    Taken from the request object rather than from configuration: the same
    settings serve both entry points, and the lab wants to know which one
    really handled this request.
    """
    return "asgi" if isinstance(request, ASGIRequest) else "wsgi"


def _add_headers(request, response):
    response["X-Wslab-Interface"] = request_interface(request)
    response["X-Wslab-Server"] = settings.WSLAB_SERVER
    return response


@sync_and_async_middleware
def WslabHeadersMiddleware(get_response):
    """Add X-Wslab-Interface and X-Wslab-Server to every HTTP response.

    Installed first in MIDDLEWARE, so error responses built further in (the
    404 for a /ws/ handshake that arrived as plain HTTP, in particular) carry
    the headers too. Async-capable so that under ASGI it does not force the
    request through a thread.
    """
    if iscoroutinefunction(get_response):

        async def middleware(request):
            return _add_headers(request, await get_response(request))

    else:

        def middleware(request):
            return _add_headers(request, get_response(request))

    return middleware
