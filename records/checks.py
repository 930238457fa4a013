"""System checks that refuse an unsafe production start (DEBUG off).

carnet.E001  no master key for the document store
carnet.E002  SQLite as the production database
carnet.E003  the development secret key, or a short one
carnet.E004  a master key that cannot be parsed
"""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=False)
def check_production_settings(app_configs, **kwargs):
    errors = []
    if settings.CARNET_MASTER_KEY:
        from records.crypto import MasterKeyError, parse_master_keys

        try:
            parse_master_keys(settings.CARNET_MASTER_KEY)
        except MasterKeyError as exc:
            errors.append(Error(f"CARNET_MASTER_KEY is invalid: {exc}", id="carnet.E004"))
    if settings.DEBUG:
        return errors
    if not settings.CARNET_MASTER_KEY:
        errors.append(
            Error(
                "CARNET_MASTER_KEY is not set: documents cannot be encrypted.",
                hint="Generate one with `python manage.py generate_master_key` and keep it outside the database.",
                id="carnet.E001",
            )
        )
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        errors.append(
            Error(
                "SQLite is not a production database.",
                hint="Set DATABASE_URL to a PostgreSQL database.",
                id="carnet.E002",
            )
        )
    key = settings.SECRET_KEY
    if key == settings.INSECURE_SECRET_KEY or key.startswith("django-insecure") or len(set(key)) < 5 or len(key) < 50:
        errors.append(
            Error(
                "DJANGO_SECRET_KEY is missing, the development key, or too weak.",
                hint="Set DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) to 50+ random characters.",
                id="carnet.E003",
            )
        )
    return errors
