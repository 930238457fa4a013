"""Drop the prefix-search twins of the notice, letter and batch-file keys (see config/like_indexes.py)."""

from django.db import migrations

from plumbing.like_indexes import drop_like_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0005_printbatch_handed"),
    ]

    operations = [
        drop_like_indexes(
            "notifications",
            ("Notice", "dedupe_key"),
            ("Letter", "reference"),
            ("Letter", "storage_key"),
            ("BatchFile", "storage_key"),
        )
    ]
