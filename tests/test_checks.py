"""System checks refuse an unsafe production start; `check --deploy` is clean with production-like settings."""

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error

from records.checks import check_production_settings

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = secrets.token_urlsafe(64)
GOOD_MASTER_KEY = "k1:" + base64.b64encode(os.urandom(32)).decode()


def _ids(errors: list[Error]) -> set[str]:
    return {error.id for error in errors}


def test_production_without_master_key_is_refused(settings):
    settings.DEBUG = False
    settings.CARNET_MASTER_KEY = None
    assert "carnet.E001" in _ids(check_production_settings(None))


def test_production_on_sqlite_is_refused(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setitem(settings.DATABASES["default"], "ENGINE", "django.db.backends.sqlite3")
    assert "carnet.E002" in _ids(check_production_settings(None))


@pytest.mark.parametrize("key", ["django-insecure-abc" * 4, "short", "a" * 60])
def test_production_with_weak_secret_key_is_refused(settings, key):
    settings.DEBUG = False
    settings.SECRET_KEY = key
    assert "carnet.E003" in _ids(check_production_settings(None))


def test_unparseable_master_key_is_refused_even_in_debug(settings):
    settings.DEBUG = True
    settings.CARNET_MASTER_KEY = "k1:not-base64!"
    assert _ids(check_production_settings(None)) == {"carnet.E004"}


def test_debug_development_defaults_pass(settings):
    settings.DEBUG = True
    settings.CARNET_MASTER_KEY = None
    assert check_production_settings(None) == []


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    prefixes = ("CARNET_", "DJANGO_", "DATABASE_", "REDIS_", "SECURE_", "SESSION_", "CSRF_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SECRET_KEY=GOOD_SECRET,
        CARNET_MASTER_KEY=GOOD_MASTER_KEY,
        DATABASE_URL="postgres://carnet@db.invalid:5432/carnet",
        ALLOWED_HOSTS="carnet.example",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_start_refused_with_defaults():
    result = _manage("check", DATABASE_URL="sqlite:////tmp/carnet-check.sqlite3")
    assert result.returncode != 0
    for check_id in ("carnet.E001", "carnet.E002", "carnet.E003"):
        assert check_id in result.stderr


def test_bad_environment_value_stops_the_process():
    result = _manage("check", CARNET_DEBUG="perhaps")
    assert result.returncode != 0
    assert "CARNET_DEBUG='perhaps' is not a boolean" in result.stderr


@pytest.mark.django_db
def test_no_reviewer_with_an_email_is_reported__A13():
    from django.contrib.auth.models import Permission

    from access_control.checks import check_review_alert_recipients
    from records.models import User

    assert check_review_alert_recipients(None) == []  # only with a database (migrate, check --database)
    User.objects.filter(is_superuser=True).update(is_superuser=False)
    warnings = check_review_alert_recipients(None, databases=["default"])
    assert [w.id for w in warnings] == ["carnet.W020"]
    reviewer = User.objects.create_user(
        username="superviseur", email="revue@carnet.example", kind=User.Kind.STAFF, is_staff=True
    )
    reviewer.user_permissions.add(Permission.objects.get(codename="change_review"))
    assert check_review_alert_recipients(None, databases=["default"]) == []
