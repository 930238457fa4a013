"""T2: entries that concern no profile form the national chain, key 0, instead of ``profile_id IS NULL``.

Citus cannot store a row whose distribution column is NULL, so the key of that chain becomes 0 (no profile has
that id) and the column NOT NULL on every database (docs/adr/0008-national-trail-chain.md). The entry hash
serialises key 0 as null, as before, so moving the old entries keeps every chain verifiable. The append-only
triggers are lifted for that one UPDATE only; SQLite rebuilds the table for the new NOT NULL and loses its
triggers with the old table, so they are installed again (the caveat of migration 0003).
"""

import importlib

from django.db import migrations, models

append_only = importlib.import_module("access_control.migrations.0003_trail_append_only")

MOVE = "UPDATE access_control_trailentry SET profile_id = 0 WHERE profile_id IS NULL"


def move_to_national_chain(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM access_control_trailentry WHERE profile_id IS NULL LIMIT 1")
        if cursor.fetchone() is None:
            return
    if vendor == "postgresql":
        statements = [
            "ALTER TABLE access_control_trailentry DISABLE TRIGGER trailentry_append_only",
            MOVE,
            "ALTER TABLE access_control_trailentry ENABLE TRIGGER trailentry_append_only",
        ]
    elif vendor == "sqlite":
        statements = ["DROP TRIGGER IF EXISTS trailentry_no_update", MOVE]  # re-installed below
    else:
        raise NotImplementedError(f"No national trail chain for the {vendor} database.")
    for sql in statements:
        schema_editor.execute(sql, params=None)


def reinstall_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in append_only.SQLITE_REMOVE[:2]:  # the triggers only; the purge marker table stays
            schema_editor.execute(sql, params=None)
        append_only.install(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("access_control", "0011_trailentry_client_app"),
        ("records", "0001_initial"),
    ]

    operations = [
        # Backwards only the schema goes back (entries stay in chain 0); SQLite's rebuild needs its triggers again.
        migrations.RunPython(move_to_national_chain, reinstall_sqlite_triggers),
        migrations.AlterField(
            model_name="trailentry",
            name="profile",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=models.deletion.DO_NOTHING,
                related_name="trail_entries",
                to="records.profile",
            ),
        ),
        migrations.RunPython(reinstall_sqlite_triggers, reinstall_sqlite_triggers),
    ]
