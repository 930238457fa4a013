"""The Citus layout (records.citus) places every table the models create: checked on every database."""

from django.apps import apps

from records import citus


def test_every_table_of_the_models_has_a_placement_on_citus():
    tables = {model._meta.db_table for model in apps.get_models(include_auto_created=True)}
    unplaced = sorted(t for t in tables if t not in set(citus.all_tables()))
    assert unplaced == [], "add each new table to records/citus.py and docs/scaling.md"


def test_no_table_is_placed_twice():
    placed = list(citus.all_tables())
    assert len(placed) == len(set(placed))


def test_every_per_patient_model_is_sharded_on_its_profile():
    """A model with a foreign key to Profile belongs to one patient: sharded with the patient, or said why not."""
    profile = apps.get_model("records", "Profile")
    for model in apps.get_models():
        keys = [f for f in model._meta.concrete_fields if f.is_relation and f.related_model is profile]
        if model is profile or not any(f.column == "profile_id" for f in keys):
            continue
        assert citus.placement_of(model._meta.db_table) == "distributed", model._meta.db_table


def test_sharded_tables_are_colocated_with_the_profile():
    assert citus.DISTRIBUTED[0] == citus.Distributed(citus.COLOCATION_ANCHOR, "id")
    assert all(d.column == "profile_id" for d in citus.DISTRIBUTED[1:])


def test_dropped_foreign_keys_and_widened_keys_name_real_columns():
    columns = {
        model._meta.db_table: {f.column for f in model._meta.concrete_fields}
        for model in apps.get_models(include_auto_created=True)
    }
    for table, column in citus.DROPPED_FOREIGN_KEYS:
        assert column in columns[table], (table, column)
    for table, uniques in citus.WIDENED_UNIQUE.items():
        for unique in uniques:
            assert set(unique) <= columns[table], (table, unique)
