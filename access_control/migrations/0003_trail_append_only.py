"""T2: the trail is append-only in the database, not only in the ORM.

PostgreSQL: a row trigger refuses every UPDATE, and every DELETE unless the transaction has set
``carnet.trail_purge = 'on'`` (``access_control.trail.purge_allowed``, used by the retention purge, T4);
a statement trigger refuses TRUNCATE under the same condition.
SQLite: triggers RAISE(ABORT) on UPDATE, and on DELETE unless the marker table ``carnet_trail_purge`` holds a
row (inserted and removed again inside the purge's own transaction by ``purge_allowed``).

Caveat for later migrations on SQLite: a schema change that makes Django rebuild the trail table drops
these triggers with the old table; such a migration must re-run ``install`` below.
"""

from django.db import migrations

POSTGRESQL_INSTALL = [
    """
    CREATE OR REPLACE FUNCTION carnet_trail_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('DELETE', 'TRUNCATE')
           AND coalesce(current_setting('carnet.trail_purge', true), '') = 'on' THEN
            IF TG_OP = 'DELETE' THEN
                RETURN OLD;
            END IF;
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'access_control_trailentry is append-only (rule T2): % refused', TG_OP
            USING ERRCODE = 'restrict_violation';
    END;
    $$
    """,
    """
    CREATE TRIGGER trailentry_append_only
        BEFORE UPDATE OR DELETE ON access_control_trailentry
        FOR EACH ROW EXECUTE FUNCTION carnet_trail_refuse_change()
    """,
    """
    CREATE TRIGGER trailentry_no_truncate
        BEFORE TRUNCATE ON access_control_trailentry
        FOR EACH STATEMENT EXECUTE FUNCTION carnet_trail_refuse_change()
    """,
]

POSTGRESQL_REMOVE = [
    "DROP TRIGGER IF EXISTS trailentry_no_truncate ON access_control_trailentry",
    "DROP TRIGGER IF EXISTS trailentry_append_only ON access_control_trailentry",
    "DROP FUNCTION IF EXISTS carnet_trail_refuse_change()",
]

SQLITE_INSTALL = [
    "CREATE TABLE IF NOT EXISTS carnet_trail_purge (token integer NOT NULL)",
    """
    CREATE TRIGGER trailentry_no_update
    BEFORE UPDATE ON access_control_trailentry
    BEGIN
        SELECT RAISE(ABORT, 'access_control_trailentry is append-only (rule T2): UPDATE refused');
    END
    """,
    """
    CREATE TRIGGER trailentry_no_delete
    BEFORE DELETE ON access_control_trailentry
    WHEN NOT EXISTS (SELECT 1 FROM carnet_trail_purge)
    BEGIN
        SELECT RAISE(ABORT, 'access_control_trailentry is append-only (rule T2): DELETE refused');
    END
    """,
]

SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS trailentry_no_delete",
    "DROP TRIGGER IF EXISTS trailentry_no_update",
    "DROP TABLE IF EXISTS carnet_trail_purge",
]

STATEMENTS = {
    "postgresql": (POSTGRESQL_INSTALL, POSTGRESQL_REMOVE),
    "sqlite": (SQLITE_INSTALL, SQLITE_REMOVE),
}


def _run(schema_editor, which: int) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in STATEMENTS:
        raise NotImplementedError(f"No append-only trail triggers for the {vendor} database (rule T2).")
    for sql in STATEMENTS[vendor][which]:
        schema_editor.execute(sql, params=None)


def install(apps, schema_editor):
    _run(schema_editor, 0)


def remove(apps, schema_editor):
    _run(schema_editor, 1)


class Migration(migrations.Migration):
    dependencies = [
        ("access_control", "0002_initial"),
    ]

    operations = [migrations.RunPython(install, remove)]
