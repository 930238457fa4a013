"""Dropping the ``varchar_pattern_ops`` twins PostgreSQL gets for unique or indexed text columns.

Django gives every ``CharField`` with ``unique=True`` or ``db_index=True`` a second index on PostgreSQL,
``<table>_<column>_<hash>_like``, so that ``LIKE 'prefix%'`` can use an index. Carnet never searches these
columns by prefix (NIRs, storage keys, hashes, dedupe keys and letter references are looked up whole), and on
the national tables the twin doubles the index's size and write cost: one more B-tree entry per trail entry,
document, notice and profile. ``drop_like_indexes`` returns the migration operation that drops them (and
re-creates them on the way back); on SQLite it does nothing.

It uses the schema editor's own naming and SQL for the twin (``_create_index_name``, ``_delete_index_sql``,
``_create_like_index_sql``), so the names match what Django would drop if such a field is altered later.
"""

from django.db import migrations


def drop_like_indexes(app_label: str, *fields: tuple[str, str]) -> migrations.RunPython:
    """The operation dropping the ``_like`` index of each ``(model_name, field_name)`` of ``app_label``."""

    def each(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for model_name, field_name in fields:
            model = apps.get_model(app_label, model_name)
            field = model._meta.get_field(field_name)
            name = schema_editor._create_index_name(model._meta.db_table, [field.column], suffix="_like")
            yield schema_editor, model, field, name

    def forwards(apps, schema_editor):
        for editor, model, _field, name in each(apps, schema_editor):
            editor.execute(editor._delete_index_sql(model, name))

    def backwards(apps, schema_editor):
        for editor, model, field, _name in each(apps, schema_editor):
            editor.execute(editor._create_like_index_sql(model, field))

    return migrations.RunPython(forwards, backwards)
