"""The ``unaccent`` extension, for the accent-folded document search (records.search). A no-op off PostgreSQL."""

from django.contrib.postgres.operations import UnaccentExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0006_user_session_epoch"),
    ]

    operations = [UnaccentExtension()]
