"""The door costs a constant number of queries, whatever the size of the record (docs/conventions.md, One door).

Opening a record and listing it, opening one document, and the patient's listing are pinned to exact query
counts, with 10 and with 500 documents in the record.
"""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from access_control import api
from practitioners.models import Practitioner, Profession
from records.models import Document, DocumentType, Profile, User
from records.nir_index import on_citus

TYPES = ["11502-2", "68599-0", "57833-6", "11488-4", "DOCPAT04"]

# open_record + listing, inside the test's transaction (hence the savepoints). PostgreSQL: savepoint; practitioner
# and profile with its facts, the chain's lock and its tail (one query); the trail entry and the notice (one
# statement that inserts the entry, upserts the notice and links them); release; the listing (one query, everything
# joined). SQLite: savepoint, facts, chain tail, entry, the notice (get, savepoint, insert, release, link), release,
# listing.
# Citus: the entry, the notice and its link are three statements (Citus would run the one statement's three
# data-modifying parts as three steps through the coordinator, notifications.fast_sql).
RECORD_AND_LISTING = {"postgresql": 5, "citus": 7, "sqlite": 11}
# open_document by the document's id alone: savepoint, the document's profile, the document in that record with
# whether it is visible and the record opened (one query), practitioner and facts (one query; on PostgreSQL it also
# locks the chain and reads its tail), (SQLite: the chain's tail), entry, release. With the record's id (the
# portal, the API): the same without the document's profile.
ONE_DOCUMENT = {"postgresql": 6, "citus": 6, "sqlite": 7}
PATIENT_LISTING = 1


def _record(size: int, n: int):
    user = User.objects.create(username=f"patient-{n}", kind=User.Kind.PATIENT)
    profile = Profile.objects.create(
        nir=f"2{n:012d}00",
        birth_name="Essai",
        first_names="Test",
        birth_date=date(1980, 1, 1),
        sex="F",
        state=Profile.State.ACTIVE,
        address_street="1 rue de la Paix",
        postal_code="75002",
        city="PARIS",
        user=user,
    )
    doctor = Practitioner.objects.create(
        rpps=f"8{n:010d}", last_name="Lambert", first_name="David", profession=Profession.objects.get(code="10")
    )
    author = Practitioner.objects.create(
        rpps=f"7{n:010d}", last_name="Dubois", first_name="Claire", profession=Profession.objects.get(code="10")
    )
    types = list(DocumentType.objects.filter(code__in=TYPES))
    now = timezone.now()
    Document.objects.bulk_create(
        Document(
            profile=profile,
            document_type=types[i % len(types)],
            title=f"Document {i}",
            care_date=date(2024, 1, 1),
            author_kind=Document.AuthorKind.PRACTITIONER,
            author_practitioner=author,
            deposited_at=now - timedelta(minutes=i),
            size=10,
            content_type="application/pdf",
            sha256="0" * 64,
            storage_key=f"queries/{n}/{i}",
            wrapped_key=b"",
            master_key_id="test1",
            masked_at=now if i % 5 == 0 else None,
        )
        if i % 7 == 0
        else Document(
            profile=profile,
            document_type=types[-1],
            title=f"Document {i}",
            care_date=date(2024, 1, 1),
            author_kind=Document.AuthorKind.PATIENT,
            deposited_at=now - timedelta(minutes=i),
            size=10,
            content_type="image/png",
            sha256="0" * 64,
            storage_key=f"queries/{n}/{i}",
            wrapped_key=b"",
            master_key_id="test1",
        )
        for i in range(size)
    )
    return profile, doctor, user


def _database() -> str:
    return "citus" if on_citus() else connection.vendor


@pytest.mark.django_db
@pytest.mark.parametrize("size", [10, 500])
def test_opening_and_listing_a_record_costs_the_same_whatever_its_size(size, django_assert_num_queries):
    profile, doctor, user = _record(size, size)
    with django_assert_num_queries(RECORD_AND_LISTING[_database()]):
        decision = api.open_record(doctor, profile)
        listed = [(d.document_type.label_fr, d.author_practitioner and d.author_practitioner.profession.label_fr)
                  for d in api.visible_documents(doctor, profile)]  # fmt: skip
    assert decision.allowed
    assert len(listed) == size - sum(1 for i in range(0, size, 7) if i % 5 == 0)

    some = Document.objects.filter(profile=profile).order_by("-pk").first()
    with django_assert_num_queries(ONE_DOCUMENT[_database()]):
        assert api.open_document(doctor, some.pk) is not None
    with django_assert_num_queries(ONE_DOCUMENT[_database()] - 1):
        assert api.open_document(doctor, some.pk, profile_id=profile.pk) == some

    with django_assert_num_queries(PATIENT_LISTING):
        mine = [d.document_type.label_fr for d in api.documents_visible_to_patient(user, profile)]
    assert len(mine) == size
