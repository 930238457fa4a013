"""The health summary (« profil médical », issue 18 item 3): kept by the patient, read by practitioners under the
rules of a patient-deposited synthesis, traced (T1) and exported."""

import io
import json
import zipfile
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from access_control import actions as access
from access_control.api import health_summary_for_practitioner, open_record, visible_documents
from access_control.models import AccessMode, DocumentCategory, TrailEntry
from notifications.models import Notice
from records.health_summary import (
    SUMMARY_DOCUMENT_TYPE,
    SummaryRefused,
    do_add_health_summary_entry,
    do_mask_health_summary,
    do_remove_health_summary_entry,
)
from records.models import HealthSummary, HealthSummaryEntry, Profile
from tests.portal_fixtures import signed_in, stepped_up, text, url
from tests.pro_fixtures import open_record as pro_open_record
from tests.pro_fixtures import signed_in as pro_signed_in

pytestmark = pytest.mark.django_db

Kind = HealthSummaryEntry.Kind


def add(profile, actor, kind=Kind.ALLERGY, label="Pénicilline", **fields):
    return do_add_health_summary_entry(profile, kind=kind, label=label, actor=actor, **fields)


def labels(summary) -> set[str]:
    return {entry.label for _kind, _label, entries in summary.sections for entry in entries} if summary else set()


@pytest.fixture
def alice_summary(personas):
    alice = personas.alice
    add(alice, alice.user, Kind.ALLERGY, "Pénicilline", detail="urticaire")
    add(alice, alice.user, Kind.TREATMENT, "Lévothyrox 75 µg", detail="1 cp le matin")
    add(alice, alice.user, Kind.VACCINATION, "DTP", on_date=date(2020, 3, 2))
    add(alice, alice.user, Kind.HISTORY, "Appendicectomie", on_date=date(1998, 6, 1))
    add(alice, alice.user, Kind.EMERGENCY_CONTACT, "Paul Martin", detail="conjoint", phone="06 12 34 56 78")
    return alice


# --- The actions (T1, L10) ----------------------------------------------------------------------------------------


def test_each_change_is_traced_without_its_content__T1(personas):
    alice = personas.alice
    entry = add(alice, alice.user, Kind.ALLERGY, "Arachide", detail="œdème de Quincke")
    added = TrailEntry.objects.get(profile=alice, action="summary_add_entry")
    assert added.detail == f"allergy#{entry.pk}" and added.actor_user_id == alice.user_id
    assert "Arachide" not in added.detail
    removed = do_remove_health_summary_entry(alice, entry.pk, actor=alice.user)
    assert removed.removed_at is not None
    assert (
        TrailEntry.objects.filter(profile=alice, action="summary_remove_entry", detail=f"allergy#{entry.pk}").count()
        == 1
    )
    do_mask_health_summary(alice, masked=True, actor=alice.user)
    do_mask_health_summary(alice, masked=True, actor=alice.user)  # idempotent: no second entry
    do_mask_health_summary(alice, masked=False, actor=alice.user)
    actions = list(
        TrailEntry.objects.filter(profile=alice, action__startswith="summary_")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == ["summary_add_entry", "summary_remove_entry", "summary_mask", "summary_unmask"]


def test_a_legal_representative_keeps_the_childs_summary__L10(personas):
    entry = add(personas.fanny, personas.alice.user, Kind.VACCINATION, "ROR", on_date=date(2015, 1, 10))
    assert entry.profile_id == personas.fanny.pk
    assert TrailEntry.objects.filter(profile=personas.fanny, action="summary_add_entry").exists()


@pytest.mark.parametrize("who", ["practitioner", "other_patient", "staff"])
def test_only_the_holder_or_representative_may_change_it__L10(personas, who):
    actor = {"practitioner": personas.claire, "other_patient": personas.etienne.user, "staff": personas.karim}[who]
    with pytest.raises(SummaryRefused):
        add(personas.alice, actor)
    assert not HealthSummaryEntry.objects.filter(profile=personas.alice).exists()
    assert not TrailEntry.objects.filter(profile=personas.alice, action="summary_add_entry").exists()


def test_a_closed_profile_cannot_be_changed__L5(personas):
    denise = personas.denise
    with pytest.raises(SummaryRefused) as refused:
        add(denise, denise.user)
    assert refused.value.code == "illegal_state"


def test_anothers_line_cannot_be_removed(personas):
    etienne_line = add(personas.etienne, personas.etienne.user)
    with pytest.raises(SummaryRefused):
        do_remove_health_summary_entry(personas.alice, etienne_line.pk, actor=personas.alice.user)
    etienne_line.refresh_from_db()
    assert etienne_line.removed_at is None


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"kind": "diagnosis"}, "kind_unknown"),
        ({"label": "   "}, "label_missing"),
        ({"on_date": timezone.localdate() + timedelta(days=2)}, "date_future"),
        ({"kind": Kind.EMERGENCY_CONTACT, "label": "Paul", "phone": "appelle-moi"}, "phone_invalid"),
        ({"kind": Kind.ALLERGY, "phone": "0612345678"}, "phone_unexpected"),
    ],
)
def test_bad_lines_are_refused_with_a_reason_and_nothing_saved(personas, fields, code):
    values = {"kind": Kind.ALLERGY, "label": "Pénicilline", **fields}
    with pytest.raises(SummaryRefused) as refused:
        do_add_health_summary_entry(personas.alice, actor=personas.alice.user, **values)
    assert refused.value.code == code
    assert not HealthSummaryEntry.objects.exists()


def test_masking_needs_an_activated_profile__A4_L4(personas):
    fanny = personas.fanny
    Profile.objects.filter(pk=fanny.pk).update(state=Profile.State.OPEN, activated_at=None)  # not activated yet
    add(fanny, personas.alice.user)  # her representative may fill it in (L10)...
    with pytest.raises(ValidationError):  # ...but not mask it (L4)
        do_mask_health_summary(fanny, masked=True, actor=personas.alice.user)
    assert not TrailEntry.objects.filter(profile=fanny, action="summary_mask").exists()


# --- The door: the rules of a patient-deposited synthesis (A2, A4, A5, A7, A12) -----------------------------------


def test_a_doctor_reads_it_after_opening_the_record_traced_once__A1_T1(personas, alice_summary):
    david = personas.david
    assert health_summary_for_practitioner(david, alice_summary) is None  # the record is not opened
    assert open_record(david, alice_summary).allowed
    notices = Notice.objects.filter(profile=alice_summary).count()
    summary = health_summary_for_practitioner(david, alice_summary)
    assert labels(summary) == {"Pénicilline", "Lévothyrox 75 µg", "DTP", "Appendicectomie", "Paul Martin"}
    assert [label for _kind, label, _entries in summary.sections][0] == "Allergies et intolérances"
    health_summary_for_practitioner(david, alice_summary)  # the same opening: no second entry
    reads = TrailEntry.objects.filter(profile=alice_summary, action="open_health_summary", actor_practitioner=david)
    assert reads.count() == 1 and reads.get().outcome == "allowed"
    assert Notice.objects.filter(profile=alice_summary).count() == notices  # no notice beyond the opening's (N1)


def test_a_profession_denied_the_synthesis_type_does_not_see_it__A2(personas, alice_summary):
    emma = personas.emma  # pharmacist: the matrix does not give her DOCPAT01
    assert open_record(emma, alice_summary).allowed
    assert health_summary_for_practitioner(emma, alice_summary) is None
    # Exactly as for a document of that type.
    document = access.do_deposit_document(
        alice_summary, actor=alice_summary.user, fileobj=io.BytesIO(b"Mes allergies\n"),
        document_type=SUMMARY_DOCUMENT_TYPE, title="Ma synthèse",
    )  # fmt: skip
    assert not visible_documents(emma, alice_summary).filter(pk=document.pk).exists()
    assert visible_documents(personas.david, alice_summary).filter(pk=document.pk).exists()
    assert not TrailEntry.objects.filter(action="open_health_summary", actor_practitioner=emma).exists()


def test_a_blocked_practitioner_sees_nothing__A5(personas, alice_summary):
    hugo = personas.hugo
    assert not open_record(hugo, alice_summary).allowed
    assert health_summary_for_practitioner(hugo, alice_summary) is None
    david = personas.david
    assert open_record(david, alice_summary).allowed
    access.do_block_practitioner(alice_summary, david, actor=alice_summary.user)
    assert health_summary_for_practitioner(david, alice_summary) is None  # at once


def test_a_masked_summary_is_seen_only_by_the_treating_doctor_and_grantees__A4_A6(personas, alice_summary):
    do_mask_health_summary(alice_summary, masked=True, actor=alice_summary.user)
    for practitioner in (personas.david, personas.ines):
        assert open_record(
            practitioner,
            alice_summary,
            mode=AccessMode.CENTRE_15 if practitioner == personas.ines else AccessMode.NORMAL,
        ).allowed
    assert health_summary_for_practitioner(personas.david, alice_summary) is None
    assert (
        health_summary_for_practitioner(personas.ines, alice_summary, mode=AccessMode.CENTRE_15) is None
    )  # A4 holds in emergency
    assert open_record(personas.claire, alice_summary).allowed
    assert "Pénicilline" in labels(health_summary_for_practitioner(personas.claire, alice_summary))
    access.do_grant_treating_rights(alice_summary, personas.david, actor=alice_summary.user)
    assert "Pénicilline" in labels(health_summary_for_practitioner(personas.david, alice_summary))


def test_a_masked_category_covering_the_type_hides_it__A12(personas, alice_summary):
    category = DocumentCategory.objects.create(
        code="syntheses-patient", label_fr="Mes synthèses", label_en="My summaries"
    )
    category.document_types.add(*category.document_types.model.objects.filter(code=SUMMARY_DOCUMENT_TYPE))
    access.do_mask_category(alice_summary, category, actor=alice_summary.user)
    assert open_record(personas.david, alice_summary).allowed
    assert health_summary_for_practitioner(personas.david, alice_summary) is None
    assert open_record(personas.claire, alice_summary).allowed
    assert health_summary_for_practitioner(personas.claire, alice_summary) is not None


def test_emergency_access_reads_it_and_an_opt_out_refuses_it__A7(personas, alice_summary):
    ines = personas.ines
    assert open_record(ines, alice_summary, mode=AccessMode.CENTRE_15).allowed
    assert "Paul Martin" in labels(health_summary_for_practitioner(ines, alice_summary, mode=AccessMode.CENTRE_15))
    assert health_summary_for_practitioner(ines, alice_summary) is None  # opened in centre_15, not normally
    entry = TrailEntry.objects.get(action="open_health_summary", actor_practitioner=ines)
    assert entry.mode == "centre_15"
    etienne = personas.etienne  # opted out of emergency access
    add(etienne, etienne.user)
    assert not open_record(ines, etienne, mode=AccessMode.CENTRE_15).allowed
    assert health_summary_for_practitioner(ines, etienne, mode=AccessMode.CENTRE_15) is None


# --- Export ---------------------------------------------------------------------------------------------------------


def test_the_export_holds_every_line_and_change(client, personas, alice_summary):
    gone = add(alice_summary, alice_summary.user, Kind.TREATMENT, "Amoxicilline", detail="fini")
    do_remove_health_summary_entry(alice_summary, gone.pk, actor=alice_summary.user)
    signed_in(client, alice_summary)
    stepped_up(client)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get(url("export")).streaming_content)))
    exported = json.loads(archive.read("index.json"))["health_summary"]
    by_label = {entry["label"]: entry for entry in exported["entries"]}
    assert set(by_label) == {"Pénicilline", "Lévothyrox 75 µg", "DTP", "Appendicectomie", "Paul Martin", "Amoxicilline"}
    assert by_label["Amoxicilline"]["removed_at"] is not None and by_label["Pénicilline"]["removed_at"] is None
    assert by_label["DTP"]["date"] == "2020-03-02" and by_label["Paul Martin"]["phone"] == "06 12 34 56 78"
    trail = archive.read("trail.csv").decode()
    assert trail.count("summary_add_entry") == 6 and "summary_remove_entry" in trail


# --- Patient pages --------------------------------------------------------------------------------------------------


def test_the_summary_page_lists_the_lines_in_a_pinned_number_of_queries(
    client, personas, alice_summary, django_assert_num_queries
):
    signed_in(client, alice_summary)
    client.get(url("health_summary"))  # warm the session
    # the portal's own queries (session, account, second factor, profiles, unread count, session save), the summary
    # and its lines: the same for 5 lines or 15
    with django_assert_num_queries(QUERIES_SUMMARY):
        page = client.get(url("health_summary"))
    for label in ("Pénicilline", "urticaire", "Lévothyrox 75 µg", "Paul Martin", "06 12 34 56 78"):
        assert label in text(page)
    for _ in range(10):
        add(alice_summary, alice_summary.user, Kind.VACCINATION, "Grippe")
    with django_assert_num_queries(QUERIES_SUMMARY):
        page = client.get(url("health_summary"))
    assert text(page).count("Grippe") >= 10


QUERIES_SUMMARY = 10


def test_the_patient_adds_and_removes_lines_through_the_forms(client, personas):
    alice = personas.alice
    signed_in(client, alice)
    response = client.post(
        url("health_summary_add", Kind.EMERGENCY_CONTACT),
        {"emergency_contact-label": "Paul Martin", "emergency_contact-detail": "conjoint", "emergency_contact-phone": "+33 6 12 34 56 78"},
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"].endswith("#part-emergency_contact")
    entry = HealthSummaryEntry.objects.get(profile=alice)
    assert (entry.label, entry.phone) == ("Paul Martin", "+33 6 12 34 56 78")
    response = client.post(url("health_summary_remove", entry.pk))
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.removed_at is not None
    assert "<strong>Paul Martin</strong>" not in client.get(url("health_summary")).content.decode()


def test_a_mistake_is_explained_in_french_and_english_and_nothing_is_saved(client, personas):
    signed_in(client, personas.alice)
    post = {"emergency_contact-label": "Paul Martin", "emergency_contact-phone": "demain"}
    response = client.post(url("health_summary_add", Kind.EMERGENCY_CONTACT), post)
    assert response.status_code == 400
    assert "Indiquez un numéro de téléphone valide pour la personne à prévenir." in text(response)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    response = client.post(url("health_summary_add", Kind.EMERGENCY_CONTACT), post)
    assert "Enter a valid telephone number for the person to contact." in text(response)
    assert "Health summary" in text(client.get(url("health_summary")))
    assert not HealthSummaryEntry.objects.exists()
    assert client.post(url("health_summary_add", "diagnosis"), {}).status_code == 302  # an unknown part


def test_the_patient_masks_and_unmasks_it__A4(client, personas):
    alice = personas.alice
    signed_in(client, alice)
    client.post(url("health_summary_mask"), {"operation": "mask"})
    assert alice.health_summary.masked_at is not None
    page = client.get(url("health_summary"))
    assert "Démasquer mon profil médical" in text(page)
    client.post(url("health_summary_mask"), {"operation": "unmask"})
    alice.health_summary.refresh_from_db()
    assert alice.health_summary.masked_at is None


def test_a_representative_edits_the_childs_summary_from_her_account__L10(client, personas):
    signed_in(client, personas.alice)
    client.post(url("switch_profile"), {"profile": personas.fanny.pk})
    client.post(url("health_summary_add", Kind.ALLERGY), {"allergy-label": "Arachide"})
    assert HealthSummaryEntry.objects.get().profile_id == personas.fanny.pk
    page = text(client.get(url("health_summary")))
    assert "Arachide" in page and "Fanny" in page


# --- Practitioner record page ---------------------------------------------------------------------------------------


def test_emergency_shows_the_summary_first_and_normal_access_after_the_documents__A7(personas, alice_summary):
    ines = pro_signed_in(Client(), personas.ines)
    found = ines.post(
        reverse("practitioners:find"),
        {"nir": alice_summary.nir, "birth_date": alice_summary.birth_date.isoformat()},
    )
    token = found["Location"].rstrip("/").split("/")[-1]
    ines.post(reverse("practitioners:emergency", args=[token]), {"mode": "centre_15", "confirm": "yes"})
    html = ines.get(reverse("practitioners:record", args=[token])).content.decode()
    assert html.index("Profil médical renseigné par le patient") < html.index("Documents du dossier")
    assert html.index("Pénicilline") < html.index("Documents du dossier")
    david = pro_signed_in(Client(), personas.david)
    token = pro_open_record(david, alice_summary)
    html = david.get(reverse("practitioners:record", args=[token])).content.decode()
    assert html.index("Documents du dossier") < html.index("Profil médical renseigné par le patient")
    assert "Lévothyrox 75 µg" in html


def test_a_masked_summary_looks_like_no_summary_to_the_practitioner__A4(personas, alice_summary):
    do_mask_health_summary(alice_summary, masked=True, actor=alice_summary.user)
    david = pro_signed_in(Client(), personas.david)
    token = pro_open_record(david, alice_summary)
    masked = david.get(reverse("practitioners:record", args=[token])).content.decode()
    assert "Pénicilline" not in masked and "Aucun profil médical consultable." in masked
    token = pro_open_record(david, personas.bernard)  # no summary at all: the same words
    assert (
        "Aucun profil médical consultable." in david.get(reverse("practitioners:record", args=[token])).content.decode()
    )


@pytest.mark.parametrize(
    "phone", ["06 12 34 56 78", "06.12.34.56.78", "0612345678", "+33 6 12 34 56 78", "+1-202-555-0143"]
)
def test_telephone_numbers_people_write_are_accepted(personas, phone):
    entry = add(personas.alice, personas.alice.user, Kind.EMERGENCY_CONTACT, "Paul Martin", phone=phone)
    assert entry.phone == phone


@pytest.mark.parametrize("phone", ["", "07 00 00 00 00 00", "12 34", "06 12 34 56 7x", "+33"])
def test_telephone_numbers_that_cannot_be_called_are_refused(personas, phone):
    with pytest.raises(SummaryRefused):
        add(personas.alice, personas.alice.user, Kind.EMERGENCY_CONTACT, "Paul Martin", phone=phone)


def test_the_summary_is_purged_with_its_profile__L5_T4(personas):
    from records.lifecycle_jobs import purge_due_profiles

    etienne = personas.etienne
    add(etienne, etienne.user, Kind.ALLERGY, "Latex")
    do_mask_health_summary(etienne, masked=True, actor=etienne.user)
    Profile.objects.filter(pk=etienne.pk).update(
        state=Profile.State.CLOSED, closed_at=timezone.now(), archive_until=timezone.now() - timedelta(days=1)
    )
    assert purge_due_profiles() == 1
    assert not HealthSummaryEntry.objects.filter(profile_id=etienne.pk).exists()
    assert not HealthSummary.objects.filter(profile_id=etienne.pk).exists()
