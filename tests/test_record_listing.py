"""The door's compiled listing of a whole record (issue 19): ``RecordListing`` and ``visible_document_ids``.

The SQL is the ORM's, compiled once per connection and access mode; each call only puts the ids in its slots.
So the listing must give the rows of its plain queryset (``reference``) for every practitioner and mode, in one
query, and refuse a mode that does not exist before anything is compiled for it. ``plumbing.sql.RowValues``,
which prepares the parameters of the hand-written INSERTs, must give what ``get_db_prep_save`` gives.
"""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils.functional import lazy

from access_control import api
from access_control.models import AccessMode, TrailEntry
from notifications.models import Notice
from plumbing.sql import RowValues

pytestmark = pytest.mark.django_db

MODES = [AccessMode.NORMAL, AccessMode.BRIS_DE_GLACE, AccessMode.CENTRE_15]


@pytest.mark.parametrize("mode", MODES)
def test_the_compiled_ids_are_the_doors_listing_in_every_mode__A2_A4_A6_A7_A12(personas, mode):
    """The treating doctor sees masked documents (A4, A6), another doctor does not, in emergency either (A7); the
    SAMU's mode is for regulators only (A7)."""
    seen = {}
    for who in ("claire", "david", "emma", "hugo", "ines", "julien"):
        practitioner = getattr(personas, who)
        reference = list(api.visible_documents(practitioner, personas.alice, mode=mode).values_list("pk", flat=True))
        seen[who] = api.visible_document_ids(practitioner, personas.alice, mode=mode)
        assert seen[who] == reference
    regulators = {who for who in seen if getattr(personas, who).is_samu_regulator}
    if mode == AccessMode.CENTRE_15:
        assert regulators and all(not ids for who, ids in seen.items() if who not in regulators)
        assert any(seen[who] for who in regulators)
    else:
        assert seen["claire"] and set(seen["david"]) < set(seen["claire"])


def test_the_rows_are_the_reference_whole_or_by_page(personas, django_assert_num_queries):
    listing = api.RecordListing("pk", "title", "deposited_at", total="total")
    args = (personas.claire.pk, personas.alice.pk, AccessMode.NORMAL)
    reference = list(listing.reference(AccessMode.NORMAL, personas.claire.pk, personas.alice.pk))
    assert len(reference) >= 4 and {row["total"] for row in reference} == {len(reference)}
    listing.rows(*args)  # compiled on first use
    with django_assert_num_queries(1):
        assert listing.rows(*args) == reference
    assert listing.rows(*args, limit=2, offset=1) == reference[1:3]
    assert listing.rows(*args, limit=10, offset=len(reference)) == []
    with pytest.raises(ValueError, match="offset needs a limit"):
        listing.rows(*args, offset=1)


def test_an_unknown_mode_is_refused_before_anything_is_compiled(personas):
    listing = api.RecordListing("pk")
    with pytest.raises(ValueError, match="Unknown access mode"):
        listing.rows(personas.claire.pk, personas.alice.pk, "everything")
    with pytest.raises(ValueError, match="Unknown access mode"):
        api.visible_document_ids(personas.claire, personas.alice, mode="everything")
    assert all("everything" not in compiled for compiled in listing._compiled._compiled.values())


def _same(prepared: list, expected: list) -> None:
    assert len(prepared) == len(expected)
    for got, want in zip(prepared, expected, strict=True):
        assert type(got) is type(want)
        assert got == want or repr(got) == repr(want)


class Text(str):
    """A ``str`` subclass: not skipped, whatever its value."""


@pytest.mark.parametrize(
    "value",
    [
        "consultation",
        "",
        None,
        Text("x"),
        lazy(lambda: "différé", str)(),
        7,
        2**40,
        datetime(2026, 12, 5, 8, 30, tzinfo=UTC),
        b"\x00sealed",
        "2001:db8::1",
        "192.0.2.1",
    ],
)
def test_row_values_prepare_as_the_fields_do(value):
    """Each field of the trail and the notice, given the same value: what ``get_db_prep_save`` gives, same type."""
    for model in (TrailEntry, Notice):
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        usable = []
        for field in fields:
            try:
                usable.append((field, field.get_db_prep_save(value, connection)))
            except (TypeError, ValueError, AttributeError, ValidationError):
                continue  # a value this field refuses: not a row anyone saves
        prepared = RowValues([field for field, _ in usable])([value] * len(usable), connection)
        _same(prepared, [expected for _, expected in usable])
