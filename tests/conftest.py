"""Shared test configuration: real PostgreSQL when DATABASE_URL is set (CI), fast hashing, no network."""

import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def _test_settings(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "documents")},
        },
    }
    settings.CARNET_MASTER_KEY = "test1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
    settings.SECURE_SSL_REDIRECT = False
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # Each test starts in the default language, whatever a previous test (or request) activated.
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


pytest_plugins = ["tests.browser", "tests.oidc_fixtures"]


from tests.trail_fixtures import _test_flush_is_a_trail_purge  # noqa: E402, F401  (T2: flush as a purge)


@pytest.fixture
def personas(db, monkeypatch):
    """The cast of docs/personas.md, built through the actions (records.personas)."""
    from records.lifecycle import ProvisionalCodeHasher
    from records.personas import build_personas

    monkeypatch.setattr(ProvisionalCodeHasher, "iterations", 1_000)  # fast hashing, like the password hasher
    return build_personas()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, request, tmp_path_factory):
    """On SQLite, a session that runs worker tests keeps its test database in a file a worker can open."""
    from django.conf import settings

    default = settings.DATABASES["default"]
    if default["ENGINE"].endswith("sqlite3") and any(
        item.get_closest_marker("worker") for item in request.session.items
    ):
        default.setdefault("TEST", {})["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")


from tests.citus_fixtures import CITUS  # noqa: E402

if CITUS:  # make test-citus: the test database on every node of the cluster, then laid out by patient
    from tests.citus_fixtures import django_db_keepdb, django_db_setup  # noqa: F401
else:  # the cluster's own tests need the cluster (not a skip: they are not collected elsewhere)
    collect_ignore = ["test_citus_cluster.py", "test_citus_routing.py"]
