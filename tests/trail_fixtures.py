"""Test support for the append-only trail (T2): the test-database flush is a purge, plus small builders.

Transactional tests (``django_db(transaction=True)``) end with Django's flush, which TRUNCATEs (PostgreSQL) or
DELETEs (SQLite) every table; the trail's triggers refuse that outside ``purge_allowed()``. The session
fixture below runs the flush inside ``purge_allowed()``, the one door the retention purge uses too.
"""

import itertools
from datetime import date

import pytest
from django.utils import timezone

_counter = itertools.count(1)


@pytest.fixture(autouse=True, scope="session")
def _test_flush_is_a_trail_purge():
    from django.db import transaction
    from django.db.backends.base.operations import BaseDatabaseOperations

    from access_control.trail import purge_allowed

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with transaction.atomic(using=self.connection.alias), purge_allowed(self.connection.alias):
            original(self, sql_list)

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
    yield
    BaseDatabaseOperations.execute_sql_flush = original


def make_profile(**fields):
    from records.models import Profile

    n = next(_counter)
    values = {
        "nir": f"1{n:012d}"[:13] + "00",
        "birth_name": "Essai",
        "first_names": "Patient",
        "birth_date": date(1980, 1, 1),
        "sex": Profile.Sex.FEMALE,
        "state": Profile.State.OPEN,
        "address_street": "1 rue de la Paix",
        "postal_code": "75002",
        "city": "PARIS",
        **fields,
    }
    return Profile.objects.create(**values)


def make_practitioner(profession_code="10", **fields):
    from practitioners.models import Practitioner, Profession

    profession, _ = Profession.objects.get_or_create(
        code=profession_code, defaults={"label_fr": "Médecin", "label_en": "Doctor", "is_doctor": True}
    )
    n = next(_counter)
    values = {"rpps": f"{n:011d}", "title": "Dr", "last_name": f"Praticien{n}", "first_name": "Test", **fields}
    return Practitioner.objects.create(profession=profession, **values)


def make_document(profile, author, *, deposited_at=None, type_code="11502-2", **fields):
    from records.models import Document, DocumentType

    n = next(_counter)
    values = {
        "title": "Document",
        "care_date": date(2026, 1, 1),
        "author_kind": Document.AuthorKind.PRACTITIONER,
        "author_practitioner": author,
        "deposited_at": deposited_at or timezone.now(),
        "size": 100,
        "content_type": "application/pdf",
        "sha256": "0" * 64,
        "storage_key": f"test/{n}",
        "wrapped_key": b"",
        "master_key_id": "test1",
        **fields,
    }
    return Document.objects.create(profile=profile, document_type=DocumentType.objects.get(code=type_code), **values)
