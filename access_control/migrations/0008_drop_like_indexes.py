"""Drop the prefix-search twin of the trail's hash index (see config/like_indexes.py)."""

from django.db import migrations

from plumbing.like_indexes import drop_like_indexes


class Migration(migrations.Migration):
    dependencies = [
        ("access_control", "0007_treating_rights_grant"),
    ]

    operations = [drop_like_indexes("access_control", ("TrailEntry", "hash"))]
