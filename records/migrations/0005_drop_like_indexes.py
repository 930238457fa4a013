"""Drop the prefix-search twins of the NIR and storage-key indexes (see config/like_indexes.py)."""

from django.db import migrations

from plumbing.like_indexes import drop_like_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0004_supervisors_see_api_tokens"),
    ]

    operations = [drop_like_indexes("records", ("Profile", "nir"), ("Document", "storage_key"))]
