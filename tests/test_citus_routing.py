"""A patient's hot paths are served by one shard on Citus (``make test-citus`` only: collected when CARNET_CITUS=1).

Each test runs one hot path through the real code, captures every statement it sends
(``records.citus_router.captured_statements``), and explains each statement on a per-patient table: Citus must plan
it as one task (a router plan). Statements on reference and coordinator tables only (the practitioner, the access
matrix) are not per-patient and are left out.
"""

import io

import pytest
from django.db import transaction

from access_control import actions as access
from access_control import api
from access_control.queries import trail_for_patient
from notifications.delivery import claim
from notifications.models import Notice
from notifications.outbox import queue_notice
from records.citus_router import captured_statements, statements_off_one_shard
from records.models import Document
from records.nir_index import profiles_with_nir
from records.personas import minimal_pdf

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
