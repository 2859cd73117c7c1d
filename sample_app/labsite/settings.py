"""Settings for the WebSocket lab's sample site.

Everything that differs between hosts comes from the environment. In the
deployment, systemd loads an env file written by the django_app role, so the
variables below are the whole configuration interface:

    DJANGO_DEBUG                 "1", "true", "yes" or "on" enables debug (default off)
    DJANGO_SECRET_KEY            required unless debug is on
    DJANGO_ALLOWED_HOSTS         comma-separated (default "localhost,127.0.0.1,[::1]")
    DJANGO_CSRF_TRUSTED_ORIGINS  comma-separated (default none)
    DJANGO_STATIC_ROOT           where collectstatic writes (default <BASE_DIR>/staticfiles)
    DJANGO_DATABASE_PATH         SQLite file (default <BASE_DIR>/db.sqlite3)
    DJANGO_LOG_LEVEL             root log level (default INFO)
    DJANGO_HTTPS_ONLY            "1", "true", "yes" or "on": the site is served over https:// only
                                 (default off: the lab serves http:// and https:// side by side)
    DJANGO_HSTS_SECONDS          with DJANGO_HTTPS_ONLY, the HSTS max-age (default 31536000)
    DJANGO_HSTS_INCLUDE_SUBDOMAINS, DJANGO_HSTS_PRELOAD
                                 with DJANGO_HTTPS_ONLY, HSTS for subdomains and the preload list (default off)
    REDIS_URL                    use a Redis channel layer at this URL (default in-memory)
    WSLAB_SERVER                 name of the app server running this process (default "unknown")
    WSLAB_LAYOUT                 name of the layout deployed (layouts/<name>.yml; default "unknown")

An empty value counts as unset, so an env file line such as
``DJANGO_ALLOWED_HOSTS=`` falls back to the default rather than to "no hosts".
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE_VALUES = {"1", "true", "yes", "on"}


def _env(name, default=""):
    """Return the variable's value, treating unset and blank alike."""
    value = os.environ.get(name, "").strip()
    return value or default


def _env_bool(name):
    return _env(name).lower() in _TRUE_VALUES


def _env_list(name, default=""):
    return [item.strip() for item in _env(name, default).split(",") if item.strip()]


DEBUG = _env_bool("DJANGO_DEBUG")

SECRET_KEY = _env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if DEBUG:
        SECRET_KEY = "django-insecure-wslab-development-key-do-not-deploy"
    else:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. It is required when DJANGO_DEBUG is off. "
            "In the deployment it comes from the app's env file, which is filled "
            "from the django_app_secret_key variable; for local development set "
            "DJANGO_DEBUG=1 or export DJANGO_SECRET_KEY."
        )

# Never "*": the WebSocket Origin check in labsite.asgi validates against this
# same list, so a wildcard here would switch that check off too.
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# Reported by /healthz and the X-Wslab-Server header, so the lab can tell which
# app server answered.
WSLAB_SERVER = _env("WSLAB_SERVER", "unknown")
# Shown on the echo page and in the echo socket's welcome, so an operator sees
# from the browser which deployment they are looking at.
WSLAB_LAYOUT = _env("WSLAB_LAYOUT", "unknown")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "echo",
]

MIDDLEWARE = [
    # First, so its headers land on every response, including the ones other
    # middleware or the URL resolver produce (404, 400 for a bad Host, ...).
    "echo.middleware.WslabHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "labsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
            ],
        },
    },
]

WSGI_APPLICATION = "labsite.wsgi.application"
ASGI_APPLICATION = "labsite.asgi.application"

if _env("REDIS_URL"):
    # Shared between processes: needed for a group message to reach sockets
    # held by other workers or other app servers.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [_env("REDIS_URL")]},
        },
    }
else:
    # Per process: groups only span the sockets of the process that holds them.
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    }

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _env("DJANGO_DATABASE_PATH", str(BASE_DIR / "db.sqlite3")),
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# nginx serves the collected files under /static/ in the deployment.
STATIC_URL = "/static/"
STATIC_ROOT = _env("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles"))

# nginx terminates TLS and says so in X-Forwarded-Proto. The Host header is
# passed through unchanged, so X-Forwarded-Host is not trusted.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = False

# A site served over https:// only (DJANGO_HTTPS_ONLY): what
# `manage.py check --deploy` asks of it. http:// requests are redirected to
# https:// (WebSocket handshakes are not, so have nginx serve plain HTTP only
# to redirect), cookies are sent over TLS only, and HSTS is announced. nginx sends its own Strict-Transport-Security header in front
# (nginx_tls_hsts_max_age) and hides the app's, so the two never differ.
HTTPS_ONLY = _env_bool("DJANGO_HTTPS_ONLY")
SECURE_SSL_REDIRECT = HTTPS_ONLY
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = int(_env("DJANGO_HSTS_SECONDS", "31536000")) if HTTPS_ONLY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY and _env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = HTTPS_ONLY and _env_bool("DJANGO_HSTS_PRELOAD")

# Everything goes to stderr, which the systemd journal captures.
LOG_LEVEL = _env("DJANGO_LOG_LEVEL", "INFO").upper()

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "format": "%(levelname)s %(name)s [pid %(process)d] %(message)s",
        },
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's default handlers for this logger (a DEBUG-only
        # console handler and mail_admins), which would otherwise print some
        # records twice or try to send mail.
        "django": {"handlers": ["stderr"], "level": LOG_LEVEL, "propagate": False},
    },
}
