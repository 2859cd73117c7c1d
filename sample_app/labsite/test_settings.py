"""Settings for the project's test run (pytest.ini names this module).

The real settings refuse to start without a secret key when DEBUG is off;
the tests run with DEBUG off, as deployed, and a throwaway key.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "django-insecure-wslab-test-key-not-a-secret")

from labsite.settings import *  # noqa: E402,F403
