"""A patient's hot paths are served by one shard on Citus (``make test-citus`` only: collected when CARNET_CITUS=1).

Each test runs one hot path through the real code, captures every statement it sends
(``records.citus_router.captured_statements``), and explains each statement on a per-patient table: Citus must plan
it as one task (a router plan). Statements on reference and coordinator tables only (the practitioner, the access
matrix) are not per-patient and are left out.
"""

import io
from datetime import date, timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from access_control import actions as access
from access_control import api
from access_control.models import TrailEntry
from access_control.queries import trail_for_patient
from access_control.rules import Action, Reason
from notifications.delivery import claim
from notifications.models import Notice
from notifications.outbox import queue_notice
from records import actions as lifecycle
from records.citus_router import captured_statements, statements_off_one_shard
from records.lifecycle_jobs import open_due_profiles, purge_due_profiles
from records.models import Document, NirIndex, Profile
from records.nir_index import profiles_with_nir
from records.personas import minimal_pdf
from tests.api_fixtures import client_for, open_handle
from tests.lifecycle_fixtures import deposit_document, enrol, enrol_active, make_doctor
from tests.pro_fixtures import open_record, signed_in

pytestmark = pytest.mark.django_db


def _routed(run):
    """Run the path; every statement it sent to a per-patient table is routed to one shard (and there was one)."""
    with captured_statements() as captured:
        result = run()
    assert any(statement.touches_shards for statement in captured.statements)
    assert statements_off_one_shard(captured) == []
    return result


def test_the_nir_index_routes_a_nir_to_one_shard__I1(personas):
    alice = personas.alice
    assert _routed(lambda: list(profiles_with_nir(alice.nir))) == [alice]


def test_finding_a_patient_is_routed_to_one_shard_per_statement__A11_I1(personas):
    """``find_profile`` as a whole: the NIR index's shard, then the profile's with the facts of the decision."""
    alice, david = personas.alice, personas.david
    assert _routed(lambda: api.find_profile(david, nir=alice.nir, birth_date=alice.birth_date)) == alice


def test_a_refused_look_up_is_routed_to_one_shard_per_statement__A11(personas):
    """The same reads, then the refusal traced on the profile's chain (one shard too)."""
    alice, david = personas.alice, personas.david
    assert _routed(lambda: api.find_profile(david, nir=alice.nir, birth_date=date(1901, 1, 1))) is None
    assert TrailEntry.objects.filter(profile=alice, action=Action.LOOKUP, reason=Reason.IDENTITY_MISMATCH).exists()


def test_opening_a_record_and_queueing_its_notice_is_one_shard_per_statement(personas):
    decision = _routed(lambda: api.open_record(personas.david, personas.alice))
    assert decision.allowed
    assert Notice.objects.filter(profile=personas.alice, practitioner=personas.david).exists()


def test_listing_a_record_is_routed_to_one_shard(personas):
    api.open_record(personas.david, personas.alice)
    listed = _routed(lambda: list(api.visible_documents(personas.david, personas.alice)))
    assert listed


def test_opening_a_document_of_the_opened_record_is_routed_to_one_shard(personas):
    api.open_record(personas.david, personas.alice)
    document = api.visible_documents(personas.david, personas.alice).first()
    opened = _routed(lambda: api.open_document(personas.david, document.pk, profile_id=personas.alice.pk))
    assert opened == document


@pytest.fixture
def door_openings(monkeypatch):
    """Each ``open_document`` call of the portal's viewer and of the API: its keywords and what it sent, captured."""
    import practitioners.api
    import practitioners.views

    calls = []
    real = api.open_document

    def spy(*args, **kwargs):
        with captured_statements() as captured:
            document = real(*args, **kwargs)
        calls.append((kwargs.get("profile_id"), captured, document))
        return document

    monkeypatch.setattr(practitioners.views, "open_document", spy)
    monkeypatch.setattr(practitioners.api, "open_document", spy)
    return calls


def test_the_portal_opens_a_document_on_the_records_shard__T1(personas, door_openings):
    david = signed_in(Client(), personas.david)
    token = open_record(david, personas.alice)
    document = api.visible_documents(personas.david, personas.alice).first()
    assert david.get(reverse("practitioners:document", args=[token, document.pk])).status_code == 200
    ((profile_id, captured, opened),) = door_openings
    assert profile_id == personas.alice.pk and opened == document
    assert any(statement.touches_shards for statement in captured.statements)
    assert statements_off_one_shard(captured) == []


def test_the_api_opens_a_document_on_the_records_shard__T1(personas, door_openings):
    david = client_for(personas.david)
    handle = open_handle(david, personas.alice)
    document = api.visible_documents(personas.david, personas.alice).first()
    response = david.get(reverse("api-pro-content", args=[handle, document.pk]))
    assert response.status_code == 200
    ((profile_id, captured, opened),) = door_openings
    assert profile_id == personas.alice.pk and opened == document
    assert any(statement.touches_shards for statement in captured.statements)
    assert statements_off_one_shard(captured) == []


def test_another_records_document_is_an_unknown_id_on_one_shard__A5(personas, door_openings):
    """A document of another record is looked for on the opened record's shard, where it is not: an unknown id."""
    david = client_for(personas.david)
    handle = open_handle(david, personas.alice)
    bernards = Document.objects.filter(profile=personas.bernard).first()
    assert david.get(reverse("api-pro-content", args=[handle, bernards.pk])).status_code == 404
    ((profile_id, captured, opened),) = door_openings
    assert profile_id == personas.alice.pk and opened is None
    assert statements_off_one_shard(captured) == []


def test_depositing_is_routed_to_one_shard(personas):
    document = _routed(
        lambda: access.do_deposit_document(
            personas.alice,
            actor=personas.david,
            fileobj=io.BytesIO(minimal_pdf("Compte rendu", ["Routage"])),
            document_type="11502-2",
            title="Compte rendu routé",
        )
    )
    assert document.profile_id == personas.alice.pk


def test_masking_is_routed_to_one_shard__A4(personas):
    document = Document.objects.filter(profile=personas.alice, masked_at__isnull=True).first()
    masked = _routed(lambda: access.do_mask_document(document, actor=personas.alice_user))
    assert masked.masked_at is not None


def test_blocking_is_routed_to_one_shard__A5(personas):
    block = _routed(lambda: access.do_block_practitioner(personas.alice, personas.emma, actor=personas.alice_user))
    assert block.profile_id == personas.alice.pk


def test_a_patients_trail_page_is_routed_to_one_shard__T3(personas):
    entries = _routed(lambda: list(trail_for_patient(personas.alice)[:50]))
    assert entries and all(entry.profile_id == personas.alice.pk for entry in entries)


def test_queueing_a_notice_is_routed_to_one_shard__N5(personas):
    def queue():
        with transaction.atomic():
            return queue_notice(personas.alice, Notice.Kind.CONSULTATION, practitioner=personas.emma)

    assert _routed(queue).profile_id == personas.alice.pk


def test_claiming_a_notice_for_delivery_with_its_profile_id_is_routed_to_one_shard__N5(personas):
    api.open_record(personas.david, personas.alice)
    notice = Notice.objects.filter(profile=personas.alice, status=Notice.Status.PENDING).latest("pk")
    assert _routed(lambda: claim(notice.pk, notice.profile_id)) is not None
    notice.refresh_from_db()
    assert notice.status == Notice.Status.SENDING


# --- Batches: the lifecycle sweeps read across shards, then take each profile on its shard -------------------


def _off_one_shard(run):
    """Run the path; the SQL of the statements it sent to per-patient tables that Citus does not route to one shard."""
    with captured_statements() as captured:
        result = run()
    return result, [statement.sql for statement, _tasks in statements_off_one_shard(captured)]


def test_the_opening_sweep_reads_due_ids_across_shards_and_opens_each_profile_on_its_shard__L3(db):
    profiles = [enrol()[0] for _ in range(4)]
    later = timezone.now() + timedelta(days=settings.CARNET_OPPOSITION_DAYS)

    opened, off = _off_one_shard(lambda: open_due_profiles(later))

    assert opened == 4
    assert set(Profile.objects.filter(pk__in=[p.pk for p in profiles]).values_list("state", flat=True)) == {"open"}
    # Only the walk over the due ids (no row lock) reads every shard; each lock, update and trail entry is routed.
    assert off and all(
        sql.startswith("SELECT") and "FOR UPDATE" not in sql and '"notice_sent_at" <=' in sql for sql in off
    )


def test_the_purge_deletes_a_profiles_rows_on_its_shard__L5_L10_T4(db, django_capture_on_commit_callbacks):
    alice, alice_user = enrol_active()
    deposit_document(alice, make_doctor())
    minor, _code = enrol(first_names="Fanny", birth_date=date(2015, 6, 1), legal_representative=alice)
    lifecycle.do_close_profile(alice, actor=alice_user, reason=Profile.ClosureReason.PATIENT)
    lifecycle.do_request_early_deletion(alice, actor=alice_user)
    later = timezone.now() + timedelta(days=settings.CARNET_EARLY_DELETION_DAYS)

    with django_capture_on_commit_callbacks(execute=True):
        purged, off = _off_one_shard(lambda: purge_due_profiles(later))

    assert purged == 1
    assert not Profile.objects.filter(pk=alice.pk).exists()
    assert not NirIndex.objects.filter(nir=alice.nir).exists()
    assert not TrailEntry.objects.filter(profile_id=alice.pk).exists()
    assert not Notice.objects.filter(profile_id=alice.pk).exists()
    assert not Document.objects.filter(profile_id=alice.pk).exists()
    assert Profile.objects.get(pk=minor.pk).legal_representative_id is None
    # Across shards only: the walk over the due ids, the look-up of the minors (on any shard; each is then locked
    # by its id), and Django's checks of the tables naming the deleted account. Every statement that deletes the
    # profile's rows names the profile and is routed to its shard.
    across = ('"archive_until" <=', '"legal_representative_id" =', '"user_id" IN', '"reviewed_by_id" IN')
    assert off and all(any(mark in sql for mark in across) for sql in off), off
    assert not [sql for sql in off if sql.startswith("DELETE") and '"user_id" IN' not in sql]


def test_a_fhir_listing_again_reads_the_consultation_facts_and_the_page_on_one_shard(personas):
    """Issue 19: the profile with its opening and decision (one statement), then the compiled page with its total."""
    from access_control.handles import consultation_profile
    from fhir_server.views import _compiled_page

    api.open_record(personas.david, personas.alice)
    profile = _routed(lambda: consultation_profile(personas.david.pk, personas.alice.pk))
    assert profile is not None and profile._opened and profile._openable
    rows = _routed(lambda: _compiled_page(personas.david.pk, personas.alice.pk, "normal")(0, 50))
    assert [row["id"] for row in rows] == list(
        api.visible_documents(personas.david, personas.alice).values_list("pk", flat=True)
    )
