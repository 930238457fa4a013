"""One story per access rule (A1-A13), told with the personas (docs/personas.md) through the one door."""

import io
from datetime import date, timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access_control import api
from access_control.actions import (
    IllegalAction,
    do_authorise_occupational_physician,
    do_block_practitioner,
    do_declare_treating_doctor,
    do_delete_own_document,
    do_deposit_document,
    do_grant_treating_rights,
    do_mask_category,
    do_mask_document,
    do_release_hold,
    do_revoke_occupational_physician,
    do_revoke_treating_rights,
    do_set_access_rule,
    do_set_high_profile,
    do_unblock_practitioner,
    do_unmask_category,
    do_unmask_document,
)
from access_control.models import AccessRule, DocumentCategory, Review, TrailEntry, TreatingRightsGrant
from access_control.rules import GENERIC_REFUSAL
from access_control.trail import NATIONAL_CHAIN
from notifications.models import Notice
from practitioners.models import Profession
from records.models import Document, DocumentType
from records.personas import minimal_pdf

JUSTIFICATION = "Patiente inconsciente aux urgences, antécédents inconnus."


@pytest.fixture(autouse=True)
def _fresh_lookup_counters():
    cache.clear()  # A11 counters live in the cache, shared by the tests of one process


def _pdf(title="Compte rendu"):
    return io.BytesIO(minimal_pdf(title, ["Texte du compte rendu."]))


def _codes(documents) -> list[str]:
    return sorted(d.document_type.code for d in documents)


def _deposit(profile, author, type_code, title, **options):
    return do_deposit_document(
        profile, actor=author, fileobj=_pdf(title), document_type=type_code, title=title, **options
    )


def _synthesis(p):
    return Document.objects.get(profile=p.alice, document_type__code="68599-0")


def _stored_files(settings):
    from pathlib import Path

    root = Path(settings.STORAGES["documents"]["OPTIONS"]["location"])
    return {path for path in root.rglob("*") if path.is_file()}


# --- A1: default-open, care-team attestation ----------------------------------------------------------------


def test_open_profile_is_default_open_without_asking_the_patient__A1(personas):
    p = personas
    decision = api.open_record(p.david, p.bernard)  # Bernard never logged in (L3)
    assert decision.allowed
    assert decision.trail_entry.outcome == "allowed" and decision.trail_entry.action == "open_record"
    assert _codes(api.visible_documents(p.david, p.bernard)) == ["11502-2"]


def test_normal_access_requires_the_care_team_attestation__A1(personas):
    p = personas
    decision = api.open_record(p.david, p.alice, attests_care_team=False)
    assert not decision.allowed and decision.reason == "care_team_not_attested"
    assert "équipe de soins" in decision.message
    assert not Notice.objects.filter(profile=p.alice, kind=Notice.Kind.CONSULTATION).exists()


def test_one_trail_entry_and_one_folded_consultation_notice_per_day__T1_N1_N2(personas):
    p = personas
    before = TrailEntry.objects.filter(profile=p.bernard).count()
    first = api.open_record(p.david, p.bernard, client_address="192.0.2.10")
    second = api.open_record(p.david, p.bernard)
    assert TrailEntry.objects.filter(profile=p.bernard).count() == before + 2
    assert first.trail_entry.client_address == "192.0.2.10"
    notices = Notice.objects.filter(profile=p.bernard, kind=Notice.Kind.CONSULTATION)
    assert notices.count() == 1
    notice = notices.get()
    assert notice.channel == Notice.Channel.LETTER  # N2: never activated -> postal letter
    assert set(notice.trail_entries.values_list("pk", flat=True)) == {first.trail_entry.pk, second.trail_entry.pk}


# --- A2: the matrix -------------------------------------------------------------------------------------------


def test_pharmacist_sees_only_her_matrix__A2(personas):
    p = personas
    assert api.open_record(p.emma, p.alice).allowed
    assert _codes(api.visible_documents(p.emma, p.alice)) == ["11502-2", "57833-6", "87273-9"]


def test_physiotherapist_sees_only_his_matrix__A2(personas):
    p = personas
    assert _codes(api.visible_documents(p.francois, p.alice)) == ["DOCPAT04", "PRESC-KINE"]


def test_doctor_sees_every_type_but_the_residence_proof__A2(personas):
    p = personas
    proof = _deposit(p.alice, p.claire, "ATTEST-RESID", "Attestation de résidence")
    seen = api.visible_documents(p.david, p.alice)
    assert proof not in seen and _synthesis(p) not in seen
    assert _codes(seen) == ["11488-4", "11488-4", "11502-2", "57833-6", "87273-9", "DOCPAT04", "PRESC-KINE"]
    # The matrix comes before the author's exception (precedence): Claire does not read it either.
    assert proof not in api.visible_documents(p.claire, p.alice)
    doctors = AccessRule.objects.filter(profession__code="10", may_read=True)
    assert not doctors.filter(document_type__code="ATTEST-RESID").exists()
    assert doctors.count() == DocumentType.objects.count() - 1


def test_matrix_change_by_staff_is_traced_and_applies_at_once__A2_T1(personas):
    p = personas
    consultation = DocumentType.objects.get(code="11488-4")
    pharmacist = Profession.objects.get(code="21")
    do_set_access_rule(pharmacist, consultation, True, actor=p.karim)
    assert _codes(api.visible_documents(p.emma, p.alice)).count("11488-4") == 2
    entry = TrailEntry.objects.filter(profile_id=NATIONAL_CHAIN, action="access_rule").latest("seq")
    assert entry.actor_name and entry.detail == "21x11488-4=read"
    with pytest.raises(IllegalAction):
        do_set_access_rule(pharmacist, consultation, False, actor=p.alice.user)


# --- A3: forbidden actors -------------------------------------------------------------------------------------


def test_insurer_physician_never_has_access__A3(personas):
    p = personas
    for profile in (p.alice, p.bernard, p.gerard):
        assert api.find_profile(p.julien, nir=profile.nir, birth_date=profile.birth_date) is None
        for mode, justification in (("normal", ""), ("bris_de_glace", JUSTIFICATION)):
            decision = api.open_record(p.julien, profile, mode=mode, justification=justification)
            assert not decision.allowed and decision.reason == "insurer_physician"
            assert decision.message == str(GENERIC_REFUSAL)
            assert not api.visible_documents(p.julien, profile, mode=mode).exists()
    with pytest.raises(IllegalAction):
        do_declare_treating_doctor(p.alice, p.julien, actor=p.alice.user)


def test_occupational_physician_only_with_the_patients_authorisation__A3(personas):
    p = personas
    assert api.find_profile(p.gilles, nir=p.alice.nir, birth_date=p.alice.birth_date) is None
    assert api.open_record(p.gilles, p.alice).reason == "occupational_unauthorised"

    do_authorise_occupational_physician(p.alice, p.gilles, actor=p.alice.user)
    assert api.find_profile(p.gilles, nir=p.alice.nir, birth_date=p.alice.birth_date) == p.alice
    assert api.open_record(p.gilles, p.alice).allowed
    assert api.visible_documents(p.gilles, p.alice).exists()

    do_revoke_occupational_physician(p.alice, p.gilles, actor=p.alice.user)
    assert not api.open_record(p.gilles, p.alice).allowed
    assert not api.visible_documents(p.gilles, p.alice).exists()
    with pytest.raises(IllegalAction):
        do_authorise_occupational_physician(p.alice, p.david, actor=p.alice.user)  # not an occupational physician


# --- A4, A6: masks, treating doctor ---------------------------------------------------------------------------


def test_treating_doctor_sees_the_masked_synthesis__A4_A6(personas):
    p = personas
    synthesis = _synthesis(p)
    assert synthesis.is_masked
    assert synthesis in api.visible_documents(p.claire, p.alice)
    assert synthesis not in api.visible_documents(p.david, p.alice)
    assert api.may_see_trail(p.claire, p.alice) and not api.may_see_trail(p.david, p.alice)


def test_masked_document_is_seen_by_its_author_only_among_other_practitioners__A4(personas):
    p = personas
    note = Document.objects.get(profile=p.alice, author_practitioner=p.david)
    do_mask_document(note, actor=p.alice.user)
    assert note in api.visible_documents(p.david, p.alice)
    assert note not in api.visible_documents(p.ines, p.alice)
    do_unmask_document(note, actor=p.alice.user)
    assert api.visible_documents(p.ines, p.alice).filter(pk=note.pk).exists()


def test_masking_holds_in_emergency_access__A4_A7(personas):
    p = personas
    decision = api.open_record(p.david, p.alice, mode="bris_de_glace", justification=JUSTIFICATION)
    assert decision.allowed
    assert _synthesis(p) not in api.visible_documents(p.david, p.alice, mode="bris_de_glace")
    assert api.open_document(p.david, _synthesis(p).pk, mode="bris_de_glace") is None


def test_rights_granted_like_the_treating_doctors_lift_masks_within_the_matrix_only__A4_A2(personas):
    p = personas
    prescription = _deposit(p.alice, p.claire, "57833-6", "Ordonnance")
    do_mask_document(prescription, actor=p.alice.user)
    genetics = _deposit(p.alice, p.claire, "51969-4", "Génétique moléculaire")
    do_mask_category(p.alice, DocumentCategory.objects.get(code="genetique"), actor=p.alice.user)
    masked = {_synthesis(p), prescription, genetics}
    assert not masked & set(api.visible_documents(p.david, p.alice))

    do_grant_treating_rights(p.alice, p.david, actor=p.alice.user)
    do_grant_treating_rights(p.alice, p.emma, actor=p.alice.user)
    assert masked <= set(api.visible_documents(p.david, p.alice))  # masks (A4) and category masks (A12)
    assert api.visible_documents(p.emma, p.alice).filter(pk=prescription.pk).exists()
    assert _codes(api.visible_documents(p.emma, p.alice)) == ["11502-2", "57833-6", "57833-6", "87273-9"]  # A2
    assert not api.may_see_trail(p.david, p.alice)  # the trail stays the declared treating doctor's (A6, T3)
    with pytest.raises(IllegalAction, match="retirez-les"):
        do_block_practitioner(p.alice, p.david, actor=p.alice.user)

    do_revoke_treating_rights(p.alice, p.david, actor=p.alice.user)
    assert not masked & set(api.visible_documents(p.david, p.alice))
    traced = TrailEntry.objects.filter(profile=p.alice, detail=f"rpps:{p.david.rpps}").values_list("action", flat=True)
    assert list(traced.order_by("seq")) == ["grant_treating_rights", "revoke_treating_rights"]


def test_treating_doctors_rights_are_not_for_forbidden_blocked_or_inactive_practitioners__A4_A3_A5(personas):
    p = personas
    for practitioner, message in ((p.julien, "médecin conseil"), (p.gilles, "médecin conseil"), (p.hugo, "bloqué")):
        with pytest.raises(IllegalAction, match=message):
            do_grant_treating_rights(p.alice, practitioner, actor=p.alice.user)
    with pytest.raises(IllegalAction, match="activé"):
        do_grant_treating_rights(p.denise, p.david, actor=p.denise.user)  # L4
    with pytest.raises(IllegalAction):
        do_grant_treating_rights(p.alice, p.david, actor=p.karim)  # staff do not grant for a patient
    assert not TreatingRightsGrant.objects.exists()


def test_masking_and_blocking_need_an_activated_patient__L4(personas):
    p = personas
    denise_user = p.denise.user
    with pytest.raises(IllegalAction, match="activé"):
        do_block_practitioner(p.denise, p.hugo, actor=denise_user)
    with pytest.raises(IllegalAction):
        do_block_practitioner(p.bernard, p.hugo, actor=p.karim)  # staff do not block for a patient


# --- A5: blocking -----------------------------------------------------------------------------------------------


def test_blocked_practitioner_sees_same_as_unknown__A5(personas):
    p = personas
    assert api.find_profile(p.hugo, nir=p.alice.nir, birth_date=p.alice.birth_date) is None
    assert api.find_profile(p.hugo, nir="2991299999999" + "00", birth_date=date(1999, 12, 1)) is None
    refusals = {
        api.open_record(p.hugo, p.alice).message,
        api.open_record(p.hugo, p.alice, mode="bris_de_glace", justification=JUSTIFICATION).message,
        api.open_record(p.hugo, p.denise).message,  # closed: "no such profile" too
        api.open_record(p.hugo, p.camille).message,  # opposed
    }
    # The block comes before the emergency opt-out: a blocked practitioner is not told about the opt-out.
    do_block_practitioner(p.etienne, p.hugo, actor=p.etienne.user)
    blocked_in_emergency = api.open_record(p.hugo, p.etienne, mode="bris_de_glace", justification=JUSTIFICATION)
    assert blocked_in_emergency.reason == "blocked"
    refusals.add(blocked_in_emergency.message)
    assert refusals == {str(GENERIC_REFUSAL)}
    assert not api.visible_documents(p.hugo, p.alice).exists()
    assert not api.visible_documents(p.hugo, p.alice, mode="bris_de_glace").exists()
    lab = Document.objects.get(profile=p.alice, document_type__code="11502-2")
    assert api.open_document(p.hugo, lab.pk) is None
    reasons = set(
        TrailEntry.objects.filter(profile=p.alice, actor_practitioner=p.hugo, outcome="denied").values_list(
            "reason", flat=True
        )
    )
    assert reasons == {"blocked"}  # kept for the trail; the patient sees the attempts


def test_blocked_practitioner_may_still_deposit__A5_A10(personas):
    p = personas
    document = _deposit(p.alice, p.hugo, "11488-4", "Certificat de passage")
    assert document.author_practitioner == p.hugo
    assert document in api.documents_visible_to_patient(p.alice.user, p.alice)
    assert not api.visible_documents(p.hugo, p.alice).exists()
    assert TrailEntry.objects.filter(profile=p.alice, action="deposit_document", document_id=document.pk).exists()


def test_unblocking_restores_access__A5(personas):
    p = personas
    do_unblock_practitioner(p.alice, p.hugo, actor=p.alice.user)
    assert api.open_record(p.hugo, p.alice).allowed
    assert api.visible_documents(p.hugo, p.alice).exists()


def test_treating_doctor_cannot_be_blocked_and_a_blocked_doctor_cannot_be_declared__A5_A6(personas):
    p = personas
    with pytest.raises(IllegalAction, match="médecin traitant"):
        do_block_practitioner(p.alice, p.claire, actor=p.alice.user)
    with pytest.raises(IllegalAction, match="débloquez"):
        do_declare_treating_doctor(p.alice, p.hugo, actor=p.alice.user)
    p.alice.refresh_from_db()
    assert p.alice.treating_doctor == p.claire


# --- A7: emergency access ----------------------------------------------------------------------------------------


def test_bris_de_glace_requires_a_written_justification__A7(personas):
    p = personas
    refused = api.open_record(p.david, p.alice, mode="bris_de_glace", justification="   ")
    assert not refused.allowed and refused.reason == "justification_missing"
    assert "justification" in refused.message
    allowed = api.open_record(p.david, p.alice, mode="bris_de_glace", justification=JUSTIFICATION)
    assert allowed.allowed and allowed.trail_entry.justification == JUSTIFICATION
    assert allowed.trail_entry.mode == "bris_de_glace"


def test_emergency_access_notifies_patient_and_treating_doctor_at_once_and_is_reviewed__A7_N3(personas):
    p = personas
    for _i in range(2):
        decision = api.open_record(p.david, p.alice, mode="bris_de_glace", justification=JUSTIFICATION)
        assert decision.allowed
    notices = Notice.objects.filter(profile=p.alice, kind=Notice.Kind.EMERGENCY)
    assert notices.filter(recipient_practitioner=None).count() == 2  # never folded
    assert notices.filter(recipient_practitioner=p.claire).count() == 2
    assert notices.filter(recipient_practitioner=None).first().channel == Notice.Channel.EMAIL
    assert Review.objects.filter(profile=p.alice, kind=Review.Kind.EMERGENCY, practitioner=p.david).count() == 2


# One emergency opening writes the notices the rules require and nothing twice: the patient's (N2 channel) and the
# treating doctor's (N3, A6), each in one statement, each linked to the opening's entry and handed to the broker once.
EMERGENCY_NOTICE_STATEMENTS = {"postgresql": 2, "sqlite": 4}  # PostgreSQL: one upsert each; SQLite: get + insert


def test_one_emergency_opening_queues_one_notice_to_the_treating_doctor__A7_N3(
    personas, django_capture_on_commit_callbacks, monkeypatch
):
    from notifications import outbox

    p = personas
    before = Notice.objects.count()
    handed_over: list[int] = []
    monkeypatch.setattr(outbox, "enqueue_delivery", lambda notice_id, profile_id=None: handed_over.append(notice_id))
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        decision = api.open_record(p.david, p.alice, mode="bris_de_glace", justification=JUSTIFICATION)
    assert decision.allowed
    notices = Notice.objects.filter(trail_entries=decision.trail_entry)
    assert sorted((n.kind, n.recipient_practitioner_id or 0) for n in notices) == [
        (Notice.Kind.EMERGENCY, 0),
        (Notice.Kind.EMERGENCY, p.claire.pk),
    ]
    assert Notice.objects.count() == before + 2  # nothing else: no consultation notice beside them (N1 is not N3)
    assert sorted(handed_over) == sorted(n.pk for n in notices)  # each handed to the broker once, after commit (N5)
    notice_writes = [q for q in queries.captured_queries if 'INTO "notifications_notice"' in q["sql"]
                     or q["sql"].startswith('SELECT') and 'FROM "notifications_notice"' in q["sql"]]  # fmt: skip
    assert len(notice_writes) == EMERGENCY_NOTICE_STATEMENTS[connection.vendor]


def test_emergency_opening_by_the_treating_doctor_notifies_the_patient_only__A7_N3(personas):
    p = personas
    before = Notice.objects.count()
    decision = api.open_record(p.claire, p.alice, mode="bris_de_glace", justification=JUSTIFICATION)
    assert decision.allowed and Notice.objects.count() == before + 1
    notices = Notice.objects.filter(trail_entries=decision.trail_entry)
    assert list(notices.values_list("kind", "recipient_practitioner")) == [(Notice.Kind.EMERGENCY, None)]


def test_samu_regulator_uses_centre_15__A7(personas):
    p = personas
    decision = api.open_record(p.ines, p.alice, mode="centre_15")
    assert decision.allowed and decision.trail_entry.mode == "centre_15"
    assert _synthesis(p) not in api.visible_documents(p.ines, p.alice, mode="centre_15")
    assert api.visible_documents(p.ines, p.alice, mode="centre_15").count() == 7
    assert Review.objects.filter(trail_entry=decision.trail_entry, kind=Review.Kind.EMERGENCY).exists()
    other = api.open_record(p.david, p.alice, mode="centre_15")
    assert not other.allowed and other.reason == "not_samu_regulator"
    assert not api.visible_documents(p.david, p.alice, mode="centre_15").exists()


def test_etienne_refuses_emergency_access__A7(personas):
    p = personas
    for practitioner, mode in ((p.ines, "centre_15"), (p.david, "bris_de_glace")):
        decision = api.open_record(practitioner, p.etienne, mode=mode, justification=JUSTIFICATION)
        assert not decision.allowed and decision.reason == "emergency_opt_out"
        assert "refusé l'accès en urgence" in decision.message
        assert not api.visible_documents(practitioner, p.etienne, mode=mode).exists()
    assert not Notice.objects.filter(profile=p.etienne, kind=Notice.Kind.EMERGENCY).exists()
    assert not Review.objects.filter(profile=p.etienne).exists()
    assert api.open_record(p.ines, p.etienne).allowed  # normal access stays open (A1)


# --- A8: holds ---------------------------------------------------------------------------------------------------


def test_holds_hide_from_the_patient_but_not_from_practitioners__A8(personas, settings):
    p = personas
    p.alice.new_document_notices = True
    p.alice.save(update_fields=["new_document_notices"])
    held = _deposit(p.alice, p.claire, "60568-3", "Compte rendu d'anatomopathologie", hold=True)
    assert held.held_until is not None
    assert held not in api.documents_visible_to_patient(p.alice.user, p.alice)
    assert held in api.visible_documents(p.claire, p.alice) and held in api.visible_documents(p.david, p.alice)
    assert not Notice.objects.filter(profile=p.alice, kind=Notice.Kind.NEW_DOCUMENT).exists()

    with time_machine.travel(timezone.now() + timedelta(days=settings.CARNET_HOLD_RELEASE_DAYS, minutes=1)):
        assert held in api.documents_visible_to_patient(p.alice.user, p.alice)  # past its date

    with pytest.raises(IllegalAction):
        do_release_hold(held, actor=p.emma)
    do_release_hold(held, actor=p.claire)
    assert held in api.documents_visible_to_patient(p.alice.user, p.alice)
    assert Notice.objects.filter(profile=p.alice, kind=Notice.Kind.NEW_DOCUMENT).count() == 1


# --- A9: minor's secret ------------------------------------------------------------------------------------------


def test_minors_secret_is_hidden_from_the_representative__A9(personas):
    p = personas
    secret = Document.objects.get(profile=p.fanny, hidden_from_representatives=True)
    seen = api.documents_visible_to_patient(p.alice.user, p.fanny)
    assert secret not in seen and _codes(seen) == ["11369-6"]
    assert secret in api.visible_documents(p.claire, p.fanny)  # A9 concerns the representatives only
    with pytest.raises(IllegalAction):
        do_mask_document(secret, actor=p.alice.user)  # the representative cannot act on what they cannot see
    with pytest.raises(IllegalAction, match="mineur"):
        _deposit(p.alice, p.claire, "11488-4", "Consultation", minors_secret=True)  # Alice is an adult


def test_profiles_managed_by_the_representative__L10(personas):
    p = personas
    assert list(api.profiles_managed_by(p.alice.user)) == [p.alice, p.fanny]
    assert not api.documents_visible_to_patient(p.etienne.user, p.alice).exists()


# --- A10: deposit --------------------------------------------------------------------------------------------------


def test_deposit_refused_to_opposed_and_closed_profiles__A10(personas, settings):
    p = personas
    before = Document.objects.count()
    files = _stored_files(settings)
    for profile in (p.camille, p.denise):
        with pytest.raises(IllegalAction, match="pas ouvert"):
            _deposit(profile, p.claire, "11488-4", "Consultation")
    assert Document.objects.count() == before
    assert _stored_files(settings) == files


def test_a_failed_deposit_leaves_no_body_behind__A10_D(personas, settings, monkeypatch):
    p = personas
    files = _stored_files(settings)

    def broken(**kwargs):
        raise RuntimeError("trail unavailable")

    monkeypatch.setattr("access_control.actions.record_entry", broken)
    with pytest.raises(RuntimeError):
        _deposit(p.bernard, p.claire, "11488-4", "Consultation")
    assert _stored_files(settings) == files
    assert not Document.objects.filter(title="Consultation", profile=p.bernard).exists()


def test_patient_deposits_own_types_and_deletes_only_them__A10(personas):
    p = personas
    user = p.alice.user
    with pytest.raises(IllegalAction):
        do_deposit_document(p.alice, actor=user, fileobj=_pdf(), document_type="11502-2", title="Bilan")
    with pytest.raises(ValidationError):  # records.storage.RejectedFile: a patient may not send CDA XML
        do_deposit_document(
            p.alice,
            actor=user,
            fileobj=io.BytesIO(b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"/>'),
            document_type="DOCPAT03",
            title="CR",
        )
    own = do_deposit_document(
        p.alice, actor=user, fileobj=io.BytesIO(b"Tension : 12/8 le matin.\n"), document_type="DOCPAT05", title="Relevé"
    )
    assert own.author_kind == "patient" and own.content_type == "text/plain"
    assert own in api.visible_documents(p.claire, p.alice)

    do_delete_own_document(own, actor=user)
    assert own not in api.documents_visible_to_patient(user, p.alice)
    assert own not in api.visible_documents(p.claire, p.alice)
    lab = Document.objects.get(profile=p.alice, document_type__code="11502-2")
    with pytest.raises(IllegalAction, match="masquer"):
        do_delete_own_document(lab, actor=user)


# --- A11: identity traits ------------------------------------------------------------------------------------------


def test_identity_traits_only__A11(personas, settings):
    p = personas
    nir = p.gerard.nir
    spaced = f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
    assert api.find_profile(p.david, nir=spaced, birth_date=p.gerard.birth_date) == p.gerard
    assert api.find_profile(p.david, nir=nir, birth_date=p.gerard.birth_date, birth_name="Lefèbvre") == p.gerard
    assert api.find_profile(p.david, nir=nir, birth_date=p.gerard.birth_date, birth_name="LEFEVRE") is None
    assert api.find_profile(p.david, nir=nir, birth_date=date(1961, 4, 3)) is None
    assert api.find_profile(p.david, nir="1" * 15, birth_date=p.gerard.birth_date) is None
    mismatch = TrailEntry.objects.filter(profile=p.gerard, action="lookup_profile", outcome="denied")
    assert set(mismatch.values_list("reason", flat=True)) == {"identity_mismatch"}
    assert (
        TrailEntry.objects.filter(profile_id=NATIONAL_CHAIN, action="lookup_profile", reason="not_found").count() == 1
    )


def test_failed_lookups_are_throttled__A11(personas, settings):
    p = personas
    settings.CARNET_LOOKUP_ATTEMPTS = 3
    for day in (1, 2, 3):
        assert api.find_profile(p.david, nir=p.bernard.nir, birth_date=date(1950, 1, day)) is None
    with pytest.raises(api.LookupThrottled) as raised:
        api.find_profile(p.david, nir=p.bernard.nir, birth_date=p.bernard.birth_date)
    assert "réessayez" in raised.value.messages[0]
    assert TrailEntry.objects.filter(
        profile_id=NATIONAL_CHAIN, reason="lookup_throttled", actor_practitioner=p.david
    ).exists()
    assert api.find_profile(p.claire, nir=p.bernard.nir, birth_date=p.bernard.birth_date) == p.bernard


# --- A12: category masks -------------------------------------------------------------------------------------------


def test_category_mask_applies_to_present_and_future_documents__A12(personas):
    p = personas
    genetics = DocumentCategory.objects.get(code="genetique")
    before = _deposit(p.alice, p.claire, "51969-4", "Génétique moléculaire 1")
    do_mask_category(p.alice, genetics, actor=p.alice.user)
    after = _deposit(p.alice, p.claire, "51969-4", "Génétique moléculaire 2")
    seen = api.visible_documents(p.david, p.alice)
    assert before not in seen and after not in seen
    assert {before, after} <= set(api.visible_documents(p.claire, p.alice))  # treating doctor and author
    assert {before, after} <= set(api.documents_visible_to_patient(p.alice.user, p.alice))
    do_unmask_category(p.alice, genetics, actor=p.alice.user)
    assert {before, after} <= set(api.visible_documents(p.david, p.alice))


# --- A13: high-profile protection ---------------------------------------------------------------------------------


def test_high_profile_access_is_listed_for_review__A13(personas):
    p = personas
    decision = api.open_record(p.david, p.gerard)
    assert decision.allowed
    review = Review.objects.get(profile=p.gerard)
    assert (review.kind, review.practitioner, review.trail_entry_id) == (
        Review.Kind.HIGH_PROFILE,
        p.david,
        decision.trail_entry.pk,
    )
    api.open_record(p.hugo, p.gerard, attests_care_team=False)  # refused: nothing to review
    assert Review.objects.filter(profile=p.gerard).count() == 1
    with pytest.raises(IllegalAction):
        do_set_high_profile(p.alice, True, actor=p.alice.user)


# --- open_document ---------------------------------------------------------------------------------------------------


def test_forged_and_invisible_document_ids_get_the_same_answer(personas):
    p = personas
    assert api.open_record(p.david, p.alice).allowed
    lab = Document.objects.get(profile=p.alice, document_type__code="11502-2")
    assert api.open_document(p.david, lab.pk) == lab
    bernard_lab = Document.objects.get(profile=p.bernard)
    answers = [
        api.open_document(p.david, _synthesis(p).pk),  # masked
        api.open_document(p.david, 10**12),  # forged
        api.open_document(p.david, "not-a-number"),
        api.open_document(p.david, bernard_lab.pk),  # another record, not opened
        api.open_document(p.david, lab.pk, mode="bris_de_glace"),  # not opened in that mode
    ]
    assert answers == [None] * 5
    reasons = list(
        TrailEntry.objects.filter(actor_practitioner=p.david, action="open_document").order_by("at", "seq")
        .values_list("outcome", "reason")
    )  # fmt: skip
    assert sorted(reasons) == sorted(
        [
            ("allowed", ""),
            ("denied", "document_not_visible"),
            ("denied", "document_not_found"),
            ("denied", "document_not_found"),
            ("denied", "record_not_opened"),
            ("denied", "record_not_opened"),
        ]
    )
