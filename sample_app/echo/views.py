import os
import platform

import django
from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from echo.middleware import request_interface


@require_safe
def index(request):
    return render(
        request,
        "echo/index.html",
        {"server": settings.WSLAB_SERVER, "layout": settings.WSLAB_LAYOUT},
    )


@require_safe
def healthz(request):
    return JsonResponse(
        {
            "status": "ok",
            "interface": request_interface(request),
            "server": settings.WSLAB_SERVER,
            # Which worker answered: with several workers, repeated requests
            # show the load spreading across processes.
            "pid": os.getpid(),
            "django": django.get_version(),
            "python": platform.python_version(),
        }
    )
