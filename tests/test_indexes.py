"""The national tables keep their unique indexes but not Django's prefix-search twins (config/like_indexes.py)."""

import pytest
from django.db import IntegrityError, connection, transaction

from tests.trail_fixtures import make_profile

pytestmark = pytest.mark.django_db

NATIONAL_KEYS = {
    "records_profile": "nir",
    "records_document": "storage_key",
    "access_control_trailentry": "hash",
    "notifications_notice": "dedupe_key",
    "notifications_letter": "storage_key",
}


def _indexes(table: str) -> dict[str, dict]:
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


def test_national_keys_are_unique_without_a_prefix_search_twin():
    if connection.vendor != "postgresql":
        pytest.skip("The _like twins exist on PostgreSQL only")
    for table, column in NATIONAL_KEYS.items():
        indexes = [(name, info) for name, info in _indexes(table).items() if info["columns"] == [column]]
        assert [name for name, info in indexes if info["unique"]], f"{table}.{column} lost its unique index"
        assert not [name for name, _info in indexes if name.endswith("_like")], f"{table}.{column} has a _like twin"


def test_a_duplicate_nir_is_still_refused_by_the_database():
    profile = make_profile()
    with pytest.raises(IntegrityError), transaction.atomic():
        make_profile(nir=profile.nir)
