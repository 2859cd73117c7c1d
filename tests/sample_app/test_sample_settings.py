"""How labsite.settings reads the environment, and the management commands
the deployment runs.

Each case imports the settings in a fresh interpreter with a controlled
environment: the test process's own copy of the settings was loaded once, at
pytest start-up, and reloading it in place would leak into other tests.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE_APP_DIR = Path(__file__).resolve().parents[2] / "sample_app"

# Imports the settings module and prints the values under test as JSON, or the
# ImproperlyConfigured message with exit status 3.
DUMP_SETTINGS = """
import json, sys
from django.core.exceptions import ImproperlyConfigured
try:
    from labsite import settings
except ImproperlyConfigured as exc:
    print(exc)
    sys.exit(3)
print(json.dumps({
    name: getattr(settings, name)
    for name in (
        "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS",
        "CHANNEL_LAYERS", "STATIC_URL", "STATIC_ROOT", "DATABASES",
        "WSLAB_SERVER", "SECURE_PROXY_SSL_HEADER", "USE_X_FORWARDED_HOST",
        "LOG_LEVEL", "INSTALLED_APPS",
    )
}))
"""


def clean_env(**variables):
    """PATH plus the given variables: none of this process's DJANGO_*, nor
    pytest's PYTEST_VERSION."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(SAMPLE_APP_DIR),
        "PYTHONDONTWRITEBYTECODE": "1",
        **variables,
    }


def run_python(args, env, cwd=SAMPLE_APP_DIR):
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def load_settings(**variables):
    result = run_python(["-c", DUMP_SETTINGS], clean_env(**variables))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def settings_error(**variables):
    result = run_python(["-c", DUMP_SETTINGS], clean_env(**variables))
    assert result.returncode == 3, result.stdout + result.stderr
    return result.stdout


def test_secret_key_is_required_without_debug():
    message = settings_error()

    assert "DJANGO_SECRET_KEY" in message
    assert "django_app_secret_key" in message


def test_blank_secret_key_counts_as_missing():
    message = settings_error(DJANGO_SECRET_KEY="  ")

    assert "DJANGO_SECRET_KEY" in message


def test_debug_off_still_requires_a_key():
    assert "DJANGO_SECRET_KEY" in settings_error(DJANGO_DEBUG="0")


def test_a_pytest_run_is_no_exception_to_the_secret_key_rule():
    # The test run gets its key from labsite.test_settings, not from a
    # loophole in the real settings.
    assert "DJANGO_SECRET_KEY" in settings_error(PYTEST_VERSION="9.0.0")


def test_secret_key_from_environment():
    loaded = load_settings(DJANGO_SECRET_KEY="s3cret-from-env-file")

    assert loaded["SECRET_KEY"] == "s3cret-from-env-file"
    assert loaded["DEBUG"] is False


def test_debug_without_key_uses_an_insecure_development_key():
    loaded = load_settings(DJANGO_DEBUG="1")

    assert loaded["DEBUG"] is True
    assert loaded["SECRET_KEY"].startswith("django-insecure-")


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "On", " on "])
def test_debug_true_values(value):
    assert load_settings(DJANGO_DEBUG=value, DJANGO_SECRET_KEY="k")["DEBUG"] is True


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "debug"])
def test_debug_other_values_are_off(value):
    assert load_settings(DJANGO_DEBUG=value, DJANGO_SECRET_KEY="k")["DEBUG"] is False


def test_defaults():
    loaded = load_settings(DJANGO_SECRET_KEY="k")

    assert loaded["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert loaded["CSRF_TRUSTED_ORIGINS"] == []
    assert loaded["CHANNEL_LAYERS"] == {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }
    assert loaded["STATIC_URL"] == "/static/"
    assert loaded["STATIC_ROOT"] == str(SAMPLE_APP_DIR / "staticfiles")
    assert loaded["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["DATABASES"]["default"]["NAME"] == str(SAMPLE_APP_DIR / "db.sqlite3")
    assert loaded["WSLAB_SERVER"] == "unknown"
    assert loaded["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert loaded["USE_X_FORWARDED_HOST"] is False
    assert loaded["LOG_LEVEL"] == "INFO"
    assert loaded["INSTALLED_APPS"] == [
        "django.contrib.contenttypes",
        "django.contrib.staticfiles",
        "echo",
    ]


def test_values_from_environment(tmp_path):
    loaded = load_settings(
        DJANGO_SECRET_KEY="k",
        DJANGO_ALLOWED_HOSTS=" lab.example , 192.0.2.10,,",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://lab.example,https://alt.example",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        DJANGO_DATABASE_PATH=str(tmp_path / "lab.sqlite3"),
        DJANGO_LOG_LEVEL="warning",
        WSLAB_SERVER="daphne",
    )

    assert loaded["ALLOWED_HOSTS"] == ["lab.example", "192.0.2.10"]
    assert loaded["CSRF_TRUSTED_ORIGINS"] == ["https://lab.example", "https://alt.example"]
    assert loaded["STATIC_ROOT"] == str(tmp_path / "static")
    assert loaded["DATABASES"]["default"]["NAME"] == str(tmp_path / "lab.sqlite3")
    assert loaded["LOG_LEVEL"] == "WARNING"
    assert loaded["WSLAB_SERVER"] == "daphne"


def test_blank_allowed_hosts_falls_back_to_the_default():
    # An env file line "DJANGO_ALLOWED_HOSTS=" must not lock every host out.
    loaded = load_settings(DJANGO_SECRET_KEY="k", DJANGO_ALLOWED_HOSTS="")

    assert loaded["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]


def test_redis_url_selects_the_redis_channel_layer():
    loaded = load_settings(DJANGO_SECRET_KEY="k", REDIS_URL="redis://127.0.0.1:6379/2")

    assert loaded["CHANNEL_LAYERS"] == {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379/2"]},
        }
    }


def test_redis_channel_layer_can_be_built():
    # Constructing the layer does not connect, so no Redis server is needed;
    # this catches a wrong BACKEND path or CONFIG shape.
    script = (
        "import django; django.setup();"
        "from channels.layers import get_channel_layer;"
        "print(type(get_channel_layer()).__name__)"
    )
    result = run_python(
        ["-c", script],
        clean_env(
            DJANGO_SETTINGS_MODULE="labsite.settings",
            DJANGO_SECRET_KEY="k",
            REDIS_URL="redis://127.0.0.1:6379/2",
        ),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "RedisChannelLayer"


def test_migrate_collectstatic_and_check(tmp_path):
    env = clean_env(
        DJANGO_SECRET_KEY="k",
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
        DJANGO_DATABASE_PATH=str(tmp_path / "db.sqlite3"),
    )
    for command in (
        # Warnings (no HSTS, no SSL redirect: the lab also runs plain HTTP)
        # are expected; only errors fail the command.
        ["check", "--deploy"],
        ["migrate", "--noinput"],
        ["collectstatic", "--noinput"],
    ):
        result = run_python(["manage.py", *command], env)
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"

    assert (tmp_path / "db.sqlite3").is_file()
    assert (tmp_path / "static" / "echo" / "app.js").is_file()
    assert (tmp_path / "static" / "echo" / "app.css").is_file()


# A strong secret key, so that check --deploy judges only the TLS settings.
_DEPLOY_KEY = "deploy-check-only-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGH"
_HTTPS_ONLY = {"DJANGO_HTTPS_ONLY": "1"}
_OWNERS_CHOICES = {"DJANGO_HSTS_INCLUDE_SUBDOMAINS": "1", "DJANGO_HSTS_PRELOAD": "1"}


@pytest.mark.parametrize(
    ("settings", "warnings"),
    [
        # The lab: http:// and https:// side by side, on purpose.
        ({}, {"security.W004", "security.W008", "security.W016"}),
        # https:// only: what remains are the two owners' decisions.
        (_HTTPS_ONLY, {"security.W005", "security.W021"}),
        # ...and once they are made, nothing.
        (_HTTPS_ONLY | _OWNERS_CHOICES, set()),
    ],
    ids=["lab", "https-only", "https-only-subdomains-preload"],
)
def test_check_deploy_warns_of_exactly_what_the_tls_settings_leave_open(settings, warnings):
    env = clean_env(DJANGO_SECRET_KEY=_DEPLOY_KEY, **settings)
    result = run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    found = set(re.findall(r"\((security\.[WE]\d+)\)", result.stdout + result.stderr))
    assert found == warnings, result.stdout + result.stderr
    assert (result.returncode == 0) == (not warnings)


def test_https_only_makes_cookies_secure_and_declares_hsts():
    script = (
        "import django; django.setup(); from django.conf import settings as s;"
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"
    )
    env = clean_env(DJANGO_SETTINGS_MODULE="labsite.settings", DJANGO_SECRET_KEY="k",
                    DJANGO_HSTS_SECONDS="600", **_HTTPS_ONLY)
    result = run_python(["-c", script], env)
    assert result.stdout.split() == ["True", "True", "True", "600"], result.stderr
    result = run_python(["-c", script], clean_env(DJANGO_SETTINGS_MODULE="labsite.settings", DJANGO_SECRET_KEY="k"))
    assert result.stdout.split() == ["False", "False", "False", "0"], result.stderr
