"""The practitioner portal, page by page, with the personas: find (A11), open (A1), record (A2, A4, A12),
documents (T1), emergency access (A7), treating doctor (A6, T3), own activity (T3)."""

import io
import re
from datetime import timedelta
from html import unescape

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from access_control import actions as access
from access_control.models import Review, TrailEntry
from notifications.models import Notice
from records.personas import minimal_pdf
from tests.pro_fixtures import find, open_record, signed_in, token_of, without_csrf

pytestmark = pytest.mark.django_db

GENERIC = "Aucun dossier accessible ne correspond à ces informations."


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _unknown_nir():
    from records.identifiers import make_nir

    return make_nir("1850575114021")


def _pro(personas, name) -> Client:
    return signed_in(Client(), getattr(personas, name))


def _text(response) -> str:
    return unescape(response.content.decode())


def _entries(**filters):
    return TrailEntry.objects.filter(**filters)


# --- Sign-in required ------------------------------------------------------------------------------------


def test_every_portal_page_requires_a_signed_in_practitioner(client, personas):
    for name, args in [
        ("find", []),
        ("deposit_by_identity", []),
        ("my_patients", []),
        ("activity", []),
        ("patient", ["tok"]),
        ("record", ["tok"]),
        ("document", ["tok", 1]),
        ("document_content", ["tok", 1]),
        ("emergency", ["tok"]),
        ("deposit", ["tok"]),
        ("patient_trail", [personas.alice.pk]),
    ]:
        response = client.get(reverse(f"practitioners:{name}", args=args))
        assert response.status_code == 302 and "/pro/connexion/" in response["Location"], name
    from tests.signin_fixtures import verified_client

    patient = verified_client(Client(), personas.alice_user)  # a patient is not let in either
    assert "/pro/connexion/" in patient.get(reverse("practitioners:find"))["Location"]


# --- A11: find by identity traits only ---------------------------------------------------------------------


def test_find_by_nir_and_birth_date_leads_to_a_token_not_a_nir__A11(personas):
    david = _pro(personas, "david")
    response = find(david, personas.alice, birth_name="Martin")
    token = token_of(response)
    assert personas.alice.nir not in response["Location"]
    page = david.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "Alice Marie MARTIN" in html
    assert "Le patient sera informé de cette consultation." in html
    assert personas.alice.nir not in html  # the NIR is not repeated anywhere on the page either
    # The token lives in this session only.
    other = _pro(personas, "david")
    assert other.get(reverse("practitioners:patient", args=[token])).status_code == 404


def test_find_accepts_spaces_and_french_dates__A11(personas):
    david = _pro(personas, "david")
    nir = personas.alice.nir
    spaced = f"{nir[0]} {nir[1:3]} {nir[3:5]} {nir[5:7]} {nir[7:10]} {nir[10:13]} {nir[13:]}"
    response = david.post(reverse("practitioners:find"), {"nir": spaced, "birth_date": "12/03/1985"})
    token_of(response)


@pytest.mark.parametrize(
    ("nir", "birth_date", "message"),
    [
        ("28503751140", "1985-03-12", "Le NIR compte 15 caractères"),
        ("2850375114021XX", "1985-03-12", "Le NIR ne contient que des chiffres"),
        ("", "1985-03-12", "Ce champ est obligatoire"),
        (None, "31/02/1985", "Saisissez une date valide"),
        (None, "hier", "Saisissez une date valide"),
        (None, "2999-01-01", "La date de naissance ne peut pas être dans le futur"),
    ],
)
def test_malformed_nir_or_birth_date_is_explained_and_looks_nothing_up__A11(personas, nir, birth_date, message):
    david = _pro(personas, "david")
    before = _entries(action="lookup_profile").count()
    data = {"nir": personas.alice.nir if nir is None else nir, "birth_date": birth_date}
    response = david.post(reverse("practitioners:find"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert _entries(action="lookup_profile").count() == before


def test_wrong_key_is_refused_by_the_form__I1(personas):
    david = _pro(personas, "david")
    nir = personas.alice.nir
    wrong_key = nir[:13] + f"{(int(nir[13:]) % 97) + 1:02d}"
    response = david.post(reverse("practitioners:find"), {"nir": wrong_key, "birth_date": "1985-03-12"})
    assert response.status_code == 200
    assert "clé" in response.content.decode()


def _find_page(client, nir, birth_date, birth_name=""):
    response = client.post(
        reverse("practitioners:find"), {"nir": nir, "birth_date": birth_date, "birth_name": birth_name}
    )
    assert response.status_code == 200
    return without_csrf(response.content)


def test_a_profile_that_may_not_be_opened_looks_exactly_like_an_unknown_one__A5_A11(personas):
    """Same page, byte for byte (the CSRF token aside), for the same typed values."""
    cases = [
        ("hugo", personas.alice),  # blocked (A5)
        ("julien", personas.alice),  # insurer's physician (A3)
        ("gilles", personas.alice),  # occupational physician without authorisation (A3)
        ("david", personas.camille),  # opposed (L2)
        ("david", personas.denise),  # closed (L5)
    ]
    for name, profile in cases:
        client = _pro(personas, name)
        birth_date = profile.birth_date.isoformat()
        refused = _find_page(client, profile.nir, birth_date)
        assert GENERIC in refused.decode()
        # The very same typed values on an unknown NIR: substitute the NIR in the page to compare.
        unknown = _find_page(client, _unknown_nir(), birth_date)
        assert refused == unknown.replace(_unknown_nir().encode(), profile.nir.encode()), (name, profile)
    # A wrong birth date or birth name on a findable profile answers the same too.
    david = _pro(personas, "david")
    assert GENERIC in _find_page(david, personas.alice.nir, "1985-03-13").decode()
    assert GENERIC in _find_page(david, personas.alice.nir, "1985-03-12", "DURAND").decode()


def test_failed_look_ups_are_traced_and_throttled__A11(personas, settings):
    settings.CARNET_LOOKUP_ATTEMPTS = 3
    emma = _pro(personas, "emma")
    for _attempt in range(3):
        assert GENERIC in _find_page(emma, _unknown_nir(), "1985-03-12").decode()
    throttled = _find_page(emma, personas.alice.nir, "1985-03-12").decode()
    assert "Trop de recherches infructueuses : réessayez dans une heure." in throttled
    assert _entries(actor_practitioner=personas.emma, action="lookup_profile", outcome="denied").count() == 4


# --- A1: opening -------------------------------------------------------------------------------------------


def test_opening_needs_the_care_team_attestation__A1(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.alice))
    response = david.post(reverse("practitioners:patient", args=[token]), {})
    assert response.status_code == 200
    assert "Attestez que vous faites partie de l'équipe de soins" in _text(response)
    assert not _entries(action="open_record", actor_practitioner=personas.david).exists()
    # The record page is not reachable before the opening.
    assert david.get(reverse("practitioners:record", args=[token]))["Location"].endswith(f"/patient/{token}/")


def test_opening_is_traced_and_notified__A1_N1(personas):
    david = _pro(personas, "david")
    open_record(david, personas.alice)
    entry = _entries(action="open_record", actor_practitioner=personas.david).get()
    assert (entry.outcome, entry.mode, entry.profile_id) == ("allowed", "normal", personas.alice.pk)
    notice = Notice.objects.get(kind=Notice.Kind.CONSULTATION, profile=personas.alice, practitioner=personas.david)
    assert notice.channel == Notice.Channel.EMAIL
    open_record(david, personas.bernard)
    letter = Notice.objects.get(kind=Notice.Kind.CONSULTATION, profile=personas.bernard)
    assert letter.channel == Notice.Channel.LETTER  # N2: never activated, postal address only


def test_blocked_between_find_and_opening_gets_the_generic_refusal__A5(personas):
    claire = _pro(personas, "claire")
    token = token_of(find(claire, personas.bernard))
    # Bernard never activated: a block cannot be placed by him (L4); use Étienne who is activated.
    token = token_of(find(claire, personas.etienne))
    access.do_block_practitioner(personas.etienne, personas.claire, actor=personas.etienne.user)
    response = claire.post(reverse("practitioners:patient", args=[token]), {"attests_care_team": "on"}, follow=True)
    assert GENERIC in response.content.decode()
    assert _entries(action="open_record", outcome="denied", reason="blocked").count() == 1


# --- The record: A2, A4, A12, filters, pagination, queries -------------------------------------------------

ALICE_FOR_DOCTORS = {
    "Bilan sanguin annuel",
    "Ordonnance — traitement de fond",
    "Prescription de rééducation du genou",
    "Vaccination antigrippale",
    "Consultation de cardiologie",
    "Consultation de remplacement",
    "Radio du genou (photo)",
}


def _titles(response) -> set[str]:
    return set(re.findall(r'/documents/\d+/">([^<]+)</a>', response.content.decode().replace("&#x27;", "'")))


def test_masked_documents_leave_no_trace_on_the_record__A4(personas):
    david = _pro(personas, "david")
    token = open_record(david, personas.alice)
    response = david.get(reverse("practitioners:record", args=[token]))
    html = response.content.decode()
    assert _titles(response) == ALICE_FOR_DOCTORS
    assert "Synthèse psychiatrique" not in html
    assert "68599-0" not in html  # not even among the type filters
    assert "masqué" not in html.lower()
    assert "7 documents" in html


def test_treating_doctor_sees_masked_documents_marked_as_masked__A6(personas):
    claire = _pro(personas, "claire")
    token = open_record(claire, personas.alice)
    response = claire.get(reverse("practitioners:record", args=[token]))
    assert _titles(response) == ALICE_FOR_DOCTORS | {"Synthèse psychiatrique"}
    html = response.content.decode()
    assert 'value="68599-0"' in html  # its type is among the filters, for her
    rows = html[html.index("<tbody>") :].split("<tr")
    masked = [row for row in rows if "Synthèse psychiatrique" in row]
    assert len(masked) == 1 and "Masqué par le patient" in masked[0]
    assert sum("Masqué par le patient" in row for row in rows) == 1
    assert "Trace des accès au dossier" in html


def test_pharmacist_sees_only_her_matrix_types__A2(personas):
    emma = _pro(personas, "emma")
    token = open_record(emma, personas.alice)
    titles = _titles(emma.get(reverse("practitioners:record", args=[token])))
    assert titles == {"Bilan sanguin annuel", "Ordonnance — traitement de fond", "Vaccination antigrippale"}


def test_physiotherapist_sees_only_his_matrix_types__A2(personas):
    francois = _pro(personas, "francois")
    token = open_record(francois, personas.alice)
    titles = _titles(francois.get(reverse("practitioners:record", args=[token])))
    assert titles == {"Prescription de rééducation du genou", "Radio du genou (photo)"}


def test_category_masks_hide_present_and_future_documents__A12(personas):
    from access_control.models import DocumentCategory

    access.do_mask_category(
        personas.alice, DocumentCategory.objects.get(code="sante-mentale"), actor=personas.alice_user
    )
    access.do_deposit_document(
        personas.alice,
        actor=personas.claire,
        fileobj=io.BytesIO(minimal_pdf("Suivi", ["x"])),
        document_type="68599-0",
        title="Synthèse psychiatrique de suivi",
    )
    david = _pro(personas, "david")
    token = open_record(david, personas.alice)
    assert (
        "Synthèse psychiatrique de suivi"
        not in david.get(reverse("practitioners:record", args=[token])).content.decode()
    )


def test_record_filters_by_type_class_author_and_dates(personas):
    claire = _pro(personas, "claire")
    token = open_record(claire, personas.alice)
    url = reverse("practitioners:record", args=[token])
    assert _titles(claire.get(url, {"type": "11502-2"})) == {"Bilan sanguin annuel"}
    assert _titles(claire.get(url, {"document_class": "11"})) == {"Synthèse psychiatrique"}
    assert _titles(claire.get(url, {"author": "patient"})) == {"Radio du genou (photo)"}
    assert _titles(claire.get(url, {"author": str(personas.hugo.pk)})) == {"Consultation de remplacement"}
    assert _titles(claire.get(url, {"date_from": "2000-01-01", "date_to": "2000-12-31"})) == set()
    # The cast's documents are dated over months and years (issue 18): the last 60 days hold three of them.
    since = (timezone.localdate() - timedelta(days=60)).isoformat()
    assert _titles(claire.get(url, {"date_from": since})) == {
        "Bilan sanguin annuel",
        "Ordonnance — traitement de fond",
        "Consultation de remplacement",
    }
    bad = claire.get(url, {"date_from": "pas une date", "type": "inconnu"})
    assert bad.status_code == 200
    assert "Saisissez une date valide" in bad.content.decode()
    assert len(_titles(bad)) == 8  # invalid filters are reported and ignored


def _deposit_many(profile, author, count):
    body = minimal_pdf("Bilan", ["x"])
    for number in range(count):
        access.do_deposit_document(
            profile, actor=author, fileobj=io.BytesIO(body), document_type="11502-2", title=f"Bilan n° {number}"
        )


def test_record_page_paginates_in_a_pinned_number_of_queries(personas, django_assert_num_queries):
    david = _pro(personas, "david")
    token = open_record(david, personas.bernard)
    url = reverse("practitioners:record", args=[token])
    david.get(url)  # warm the session
    with django_assert_num_queries(QUERIES_RECORD):
        response = david.get(url)
    assert len(_titles(response)) == 1
    _deposit_many(personas.bernard, personas.claire, 45)
    with django_assert_num_queries(QUERIES_RECORD):
        response = david.get(url, {"type": "11502-2", "page": "2"})
    html = response.content.decode()
    assert len(_titles(response)) == 20
    assert "Page 2 sur 3" in html
    assert "46 documents" in html
    assert "type=11502-2" in html and "page=3" in html  # the pagination keeps the filters


# session, user, OTP device, practitioner (practitioner_required); profile; the filters' choices, count, page;
# the health summary (access_control.api.health_summary_for_practitioner: one query when there is none); the
# session save (savepoint, update, release).
QUERIES_RECORD = 12


# --- Documents: viewer, download, forged ids --------------------------------------------------------------


def _document_id(client, token, title):
    response = client.get(reverse("practitioners:record", args=[token]))
    match = re.search(r'/documents/(\d+)/">' + re.escape(title) + "<", response.content.decode())
    assert match, title
    return int(match.group(1))


def test_pdf_is_previewed_as_page_images_and_each_opening_is_traced__T1(personas):
    david = _pro(personas, "david")
    token = open_record(david, personas.alice)
    document_id = _document_id(david, token, "Bilan sanguin annuel")
    viewer = david.get(reverse("practitioners:document", args=[token, document_id]))
    assert viewer.status_code == 200
    page_url = reverse("practitioners:document_page", args=[token, document_id, 1])
    assert f'<img class="preview-page" src="{page_url}" loading="lazy"' in viewer.content.decode()
    assert "<iframe" not in viewer.content.decode()
    image = david.get(page_url)
    assert image["Content-Type"] == "image/png" and image.content.startswith(b"\x89PNG")
    content_url = reverse("practitioners:document_content", args=[token, document_id])
    body = david.get(content_url)
    assert body.status_code == 200
    assert body["Content-Type"] == "application/pdf"
    assert body["Content-Disposition"].startswith("inline")
    assert body["X-Frame-Options"] == "SAMEORIGIN"
    assert b"".join(body.streaming_content).startswith(b"%PDF")
    opened = _entries(action="open_document", actor_practitioner=personas.david, document_id=document_id)
    assert opened.filter(outcome="allowed").count() == 1  # the page, its images and body: one viewing, one entry
    download = david.get(reverse("practitioners:document_download", args=[token, document_id]))
    assert download["Content-Disposition"].startswith("attachment")
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    assert opened.filter(outcome="allowed").count() == 2
    # The consultation notice folds the day's openings into one (N1).
    assert Notice.objects.filter(kind=Notice.Kind.CONSULTATION, profile=personas.alice).count() == 1


def test_image_shows_as_a_page_image_and_text_as_text(personas):
    david = _pro(personas, "david")
    access.do_deposit_document(
        personas.alice,
        actor=personas.david,
        fileobj=io.BytesIO("Note de liaison\nTension 12/8 — RAS.\n".encode()),
        document_type="11490-0",
        title="Note texte",
    )
    token = open_record(david, personas.alice)
    image_id = _document_id(david, token, "Radio du genou (photo)")
    viewer = david.get(reverse("practitioners:document", args=[token, image_id])).content.decode()
    assert '<img class="preview-page"' in viewer
    assert david.get(reverse("practitioners:document_page", args=[token, image_id, 1]))["Content-Type"] == "image/png"
    text_id = _document_id(david, token, "Note texte")
    viewer = david.get(reverse("practitioners:document", args=[token, text_id])).content.decode()
    assert "Tension 12/8 — RAS." in viewer and "<pre" in viewer


@pytest.mark.parametrize("kind", ["masked", "other_record", "unknown", "beyond_range"])
def test_forged_document_ids_are_404_and_traced__A4_T1(personas, kind):
    from access_control.api import visible_documents

    david = _pro(personas, "david")
    token = open_record(david, personas.alice)
    claire_sees = visible_documents(personas.claire, personas.alice)
    forged = {
        "masked": claire_sees.get(title="Synthèse psychiatrique").pk,
        "other_record": visible_documents(personas.claire, personas.etienne).get().pk,
        "unknown": 987654,
        "beyond_range": 10**20,
    }[kind]
    before = _entries(action="open_document", outcome="denied").count()
    for name in ("document", "document_content", "document_download"):
        response = david.get(reverse(f"practitioners:{name}", args=[token, forged]))
        assert response.status_code == 404, name
        assert "Synthèse" not in response.content.decode()
    assert _entries(action="open_document", outcome="denied").count() == before + 3


def test_a_document_of_another_opened_record_is_refused_like_an_unknown_id__A5_T1(personas):
    """The viewer looks in the token's record only: another opened record's document is an unknown id, traced alike."""
    from access_control.trail import NATIONAL_CHAIN
    from records.models import Document

    david = _pro(personas, "david")
    token = open_record(david, personas.alice)
    open_record(david, personas.bernard)
    bernards = Document.objects.filter(profile=personas.bernard).first()
    unknown = Document.objects.order_by("pk").last().pk + 1000
    before = _entries(profile=personas.bernard).count()
    for pk in (bernards.pk, unknown):
        assert david.get(reverse("practitioners:document", args=[token, pk])).status_code == 404
    entries = _entries(action="open_document", actor_practitioner=personas.david).order_by("pk")
    assert [(e.document_id, e.outcome, e.reason, e.profile_id) for e in entries] == [
        (pk, "denied", "document_not_found", NATIONAL_CHAIN) for pk in (bernards.pk, unknown)
    ]
    assert _entries(profile=personas.bernard).count() == before  # nothing on Bernard's chain


def test_documents_need_an_opened_record__A1(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.alice))  # found, not opened
    from access_control.api import visible_documents

    document_id = visible_documents(personas.david, personas.alice).first().pk
    assert david.get(reverse("practitioners:document", args=[token, document_id])).status_code == 404
    assert _entries(action="open_document", reason="record_not_opened").count() == 1


# --- A7: emergency access --------------------------------------------------------------------------------


def test_bris_de_glace_needs_a_justification_then_a_confirmation__A7(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.alice))
    url = reverse("practitioners:emergency", args=[token])
    assert "centre_15" not in david.get(url).content.decode()  # not a SAMU regulator
    missing = david.post(url, {"mode": "bris_de_glace", "justification": "  "})
    assert "L'accès en bris de glace exige une justification écrite." in _text(missing)
    confirm = david.post(url, {"mode": "bris_de_glace", "justification": "Patiente inconsciente aux urgences."})
    html = confirm.content.decode()
    for consequence in ("trace du dossier", "informé immédiatement", "médecin traitant", "revue des agents"):
        assert consequence in html
    assert not _entries(action="open_record", actor_practitioner=personas.david).exists()  # nothing yet
    opened = david.post(
        url, {"mode": "bris_de_glace", "justification": "Patiente inconsciente aux urgences.", "confirm": "yes"}
    )
    assert opened["Location"].endswith("/dossier/")
    entry = _entries(action="open_record", actor_practitioner=personas.david).get()
    assert (entry.mode, entry.justification) == ("bris_de_glace", "Patiente inconsciente aux urgences.")
    emergency = Notice.objects.filter(kind=Notice.Kind.EMERGENCY, profile=personas.alice)
    assert emergency.filter(recipient_practitioner__isnull=True).count() == 1
    assert emergency.filter(recipient_practitioner=personas.claire).count() == 1
    assert Review.objects.filter(kind=Review.Kind.EMERGENCY, practitioner=personas.david).count() == 1
    record = david.get(reverse("practitioners:record", args=[token])).content.decode()
    assert "Accès en urgence : Bris de glace" in record
    assert "Synthèse psychiatrique" not in record  # masks hold in emergency (A4)
    # The documents open in the emergency mode.
    document_id = _document_id(david, token, "Bilan sanguin annuel")
    assert david.get(reverse("practitioners:document", args=[token, document_id])).status_code == 200
    assert _entries(action="open_document", mode="bris_de_glace", outcome="allowed").count() == 1


def test_a_forged_centre_15_is_refused_to_a_non_regulator__A7(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.alice))
    response = david.post(reverse("practitioners:emergency", args=[token]), {"mode": "centre_15", "confirm": "yes"})
    assert response.status_code == 200
    assert not _entries(action="open_record", actor_practitioner=personas.david).exists()


def test_samu_regulator_uses_centre_15__A7(personas):
    ines = _pro(personas, "ines")
    token = token_of(find(ines, personas.bernard))
    url = reverse("practitioners:emergency", args=[token])
    assert 'value="centre_15"' in ines.get(url).content.decode()
    confirm = ines.post(url, {"mode": "centre_15"})
    assert "Centre 15 (SAMU)" in confirm.content.decode()
    opened = ines.post(url, {"mode": "centre_15", "confirm": "yes"})
    assert opened["Location"].endswith("/dossier/")
    assert _entries(action="open_record", mode="centre_15", outcome="allowed").count() == 1
    assert "Bilan lipidique" in ines.get(reverse("practitioners:record", args=[token])).content.decode()


def test_emergency_access_refused_when_the_patient_opted_out__A7(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.etienne))
    url = reverse("practitioners:emergency", args=[token])
    response = david.post(url, {"mode": "bris_de_glace", "justification": "Malaise.", "confirm": "yes"}, follow=True)
    assert "Ce patient a refusé l'accès en urgence à son dossier" in _text(response)
    assert _entries(action="open_record", reason="emergency_opt_out").count() == 1
    assert not Notice.objects.filter(kind=Notice.Kind.EMERGENCY, profile=personas.etienne).exists()
    record = david.get(reverse("practitioners:record", args=[token]))
    assert record["Location"].endswith(f"/patient/{token}/")  # not opened


# --- A6, T3: treating doctor; own activity -----------------------------------------------------------------


def test_treating_doctor_lists_her_patients_and_reads_their_trail__A6_T3(personas, django_assert_num_queries):
    claire = _pro(personas, "claire")
    _pro(personas, "david")
    david = _pro(personas, "david")
    open_record(david, personas.alice)
    patients = claire.get(reverse("practitioners:my_patients")).content.decode()
    assert "Alice Marie MARTIN" in patients and "Bernard" not in patients
    url = reverse("practitioners:patient_trail", args=[personas.alice.pk])
    claire.get(url)
    with django_assert_num_queries(QUERIES_TRAIL):
        trail = claire.get(url).content.decode()
    assert "Dr David Lambert" in trail and "Consultation du dossier" in trail
    assert "Blocage d&#x27;un professionnel" in trail
    # From her list to the record: the opening still asks for the attestation (A1).
    response = claire.post(reverse("practitioners:my_patient_open", args=[personas.alice.pk]))
    assert "/pro/patient/" in response["Location"]


QUERIES_TRAIL = 10  # sign-in checks (4), the treated profile, count, page, the session save (3)


def test_other_practitioners_do_not_see_a_patients_trail__A6(personas):
    david = _pro(personas, "david")
    assert david.get(reverse("practitioners:patient_trail", args=[personas.alice.pk])).status_code == 404
    assert david.post(reverse("practitioners:my_patient_open", args=[personas.alice.pk])).status_code == 404
    assert "Alice" not in david.get(reverse("practitioners:my_patients")).content.decode()
    token = open_record(david, personas.alice)
    assert "Trace des accès au dossier" not in david.get(reverse("practitioners:record", args=[token])).content.decode()


def test_my_activity_lists_own_actions_in_a_pinned_number_of_queries__T3(personas, django_assert_num_queries):
    david = _pro(personas, "david")
    token = open_record(david, personas.alice)
    document_id = _document_id(david, token, "Bilan sanguin annuel")
    david.get(reverse("practitioners:document", args=[token, document_id]))
    _find_page(david, _unknown_nir(), "1985-03-12")
    url = reverse("practitioners:activity")
    david.get(url)
    with django_assert_num_queries(QUERIES_ACTIVITY):
        html = david.get(url).content.decode()
    assert "Consultation du dossier" in html and "Alice Marie MARTIN" in html
    assert f"document n° {document_id}" in html
    assert "Recherche d&#x27;un profil" in html
    for number in range(5):
        _find_page(david, _unknown_nir(), f"1985-03-{number + 1:02d}")
    with django_assert_num_queries(QUERIES_ACTIVITY):
        david.get(url, {"page": "1"})


QUERIES_ACTIVITY = 10  # sign-in checks (4), count, page, the patients' names, the session save (3)


def test_insurer_physician_can_open_nothing__A3(personas):
    julien = _pro(personas, "julien")
    for profile in (personas.alice, personas.bernard, personas.etienne, personas.gerard):
        assert GENERIC in _find_page(julien, profile.nir, profile.birth_date.isoformat()).decode()
    assert "Aucun patient" in julien.get(reverse("practitioners:my_patients")).content.decode()


def test_high_profile_access_raises_a_review__A13(personas):
    david = _pro(personas, "david")
    open_record(david, personas.gerard)
    assert Review.objects.filter(kind=Review.Kind.HIGH_PROFILE, profile=personas.gerard).count() == 1
