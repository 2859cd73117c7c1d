"""The sample app's real ASGI application, plus its static files, for the browser test.

In the deployment nginx serves /static/ and the app server never sees those
requests; with DEBUG off Django serves none itself, so under a bare Daphne the
page would load without app.js. This wraps the unchanged
``labsite.asgi.application`` in Django's own ASGIStaticFilesHandler, the
wrapper Daphne's ``runserver`` uses: requests under STATIC_URL are answered
from the apps' static folders (through the staticfiles finders, so no
collectstatic run is needed), and everything else, WebSockets included, goes
to the application as deployed.

Run by the test as ``daphne browser_asgi:application`` with this folder on
PYTHONPATH.
"""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from labsite.asgi import application as site_application

application = ASGIStaticFilesHandler(site_application)
