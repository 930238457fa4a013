"""The practitioner REST API under the portal's rules, told with the personas (docs/api.md)."""

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from access_control.models import Review, TrailEntry
from access_control.rules import GENERIC_REFUSAL, Action, Reason
from notifications.models import Notice
from records.models import Document
from tests.api_fixtures import client_for, error_code, found_handle, open_handle, pdf_file, search
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db


def titles(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["title"] for row in response.json()["results"]}


def documents(client, handle, **params):
    return client.get(reverse("api-pro-documents", args=[handle]), params)


# --- A11: finding a patient -----------------------------------------------------------------------------


def test_search_by_identity_traits_returns_a_handle_not_the_nir__A11(personas):
    client = client_for(personas.david)
    response = search(client, personas.alice, birth_name="Martin")
    assert response.status_code == 200
    body = response.json()
    assert body["first_names"] == "Alice Marie" and body["opened_mode"] == ""
    assert personas.alice.nir not in body["handle"] and str(personas.alice.pk) in body["handle"]


def test_wrong_birth_date_is_the_same_404_as_an_unknown_nir_and_is_traced__A11(personas):
    client = client_for(personas.david)
    wrong = search(client, personas.alice, birth_date="1985-03-13")
    unknown = client.post(reverse("api-pro-search"), {"nir": "1370476243484 15", "birth_date": "1937-04-01"})
    assert wrong.status_code == unknown.status_code == 404
    assert error_code(wrong) == error_code(unknown) == "no_match"
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"] == str(GENERIC_REFUSAL)
    denied = TrailEntry.objects.filter(actor_practitioner=personas.david, action=Action.LOOKUP)
    assert {entry.reason for entry in denied} == {Reason.IDENTITY_MISMATCH, Reason.NOT_FOUND}


def test_an_invalid_nir_is_a_400_with_the_field_named__I1(personas):
    response = client_for(personas.david).post(
        reverse("api-pro-search"), {"nir": "12345", "birth_date": "1985-03-12"}, format="json"
    )
    assert response.status_code == 400 and error_code(response) == "invalid"
    assert "nir" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("who", "whom"),
    [
        ("hugo", "alice"),  # A5: blocked
        ("julien", "alice"),  # A3: insurer's physician
        ("gilles", "bernard"),  # A3: occupational physician without authorisation
        ("david", "camille"),  # L2: opposed
        ("david", "denise"),  # L5: closed
    ],
)
def test_refused_patients_look_exactly_like_unknown_ones__A3_A5_L2_L5(personas, who, whom):
    response = search(client_for(getattr(personas, who)), getattr(personas, whom))
    assert response.status_code == 404 and error_code(response) == "no_match"
    assert response.json()["error"]["message"] == str(GENERIC_REFUSAL)


def test_a_handle_is_useless_to_another_practitioner_and_cannot_be_forged__A11(personas):
    handle = found_handle(client_for(personas.david), personas.alice)
    other = client_for(personas.claire)
    assert error_code(other.post(reverse("api-pro-open", args=[handle]), {"attests_care_team": True})) == "no_match"
    forged = handle.rsplit(".", 1)[0] + ".0123456789abcdef0123456789abcdef"
    assert client_for(personas.david).post(reverse("api-pro-open", args=[forged])).status_code == 404


# --- A1, A7: opening ---------------------------------------------------------------------------------------


def test_opening_needs_the_care_team_attestation__A1(personas):
    client = client_for(personas.david)
    handle = found_handle(client, personas.alice)
    response = client.post(reverse("api-pro-open", args=[handle]), {}, format="json")
    assert response.status_code == 403 and error_code(response) == Reason.CARE_TEAM_NOT_ATTESTED


def test_opening_writes_one_trail_entry_and_one_consultation_notice__T1_N1(personas):
    client = client_for(personas.david)
    before = Notice.objects.filter(profile=personas.bernard, kind=Notice.Kind.CONSULTATION).count()
    open_handle(client, personas.bernard)
    entry = TrailEntry.objects.get(
        profile=personas.bernard, action=Action.OPEN_RECORD, actor_practitioner=personas.david
    )
    assert entry.outcome == TrailEntry.Outcome.ALLOWED and entry.mode == "normal"
    assert entry.client_address == "127.0.0.1"
    notice = Notice.objects.get(profile=personas.bernard, kind=Notice.Kind.CONSULTATION, practitioner=personas.david)
    assert notice.channel == Notice.Channel.LETTER  # N2: Bernard never activated his profile
    assert Notice.objects.filter(profile=personas.bernard, kind=Notice.Kind.CONSULTATION).count() == before + 1


def test_listing_before_opening_is_refused(personas):
    client = client_for(personas.david)
    response = documents(client, found_handle(client, personas.alice))
    assert response.status_code == 403 and error_code(response) == "record_not_opened"


def test_emergency_access_is_refused_after_the_patients_opt_out__A7(personas):
    client = client_for(personas.ines)
    handle = found_handle(client, personas.etienne)
    response = client.post(reverse("api-pro-open", args=[handle]), {"mode": "centre_15"}, format="json")
    assert response.status_code == 403 and error_code(response) == Reason.EMERGENCY_OPT_OUT


def test_break_glass_needs_a_justification_and_is_notified_and_reviewed__A7_N3(personas):
    client = client_for(personas.david)
    handle = found_handle(client, personas.alice)
    url = reverse("api-pro-open", args=[handle])
    refused = client.post(url, {"mode": "bris_de_glace"}, format="json")
    assert refused.status_code == 403 and error_code(refused) == Reason.JUSTIFICATION_MISSING
    response = client.post(url, {"mode": "bris_de_glace", "justification": "Patiente inconsciente."}, format="json")
    assert response.status_code == 200 and response.json()["opened_mode"] == "bris_de_glace"
    notices = Notice.objects.filter(profile=personas.alice, kind=Notice.Kind.EMERGENCY, practitioner=personas.david)
    assert {n.recipient_practitioner_id for n in notices} == {None, personas.claire.pk}  # patient + treating doctor
    assert Review.objects.filter(profile=personas.alice, practitioner=personas.david, kind="emergency").exists()
    # A4: masked documents stay hidden in emergency too.
    assert "Synthèse psychiatrique" not in titles(documents(client, response.json()["handle"]))


def test_only_samu_regulators_use_centre_15__A7(personas):
    client = client_for(personas.david)
    handle = found_handle(client, personas.bernard)
    response = client.post(reverse("api-pro-open", args=[handle]), {"mode": "centre_15"}, format="json")
    assert response.status_code == 403 and error_code(response) == Reason.NOT_SAMU_REGULATOR


# --- A2, A4, A12: what an opened record shows ---------------------------------------------------------------

ALICE_ALL = {
    "Bilan sanguin annuel",
    "Ordonnance — traitement de fond",
    "Prescription de rééducation du genou",
    "Vaccination antigrippale",
    "Consultation de cardiologie",
    "Synthèse psychiatrique",
    "Consultation de remplacement",
    "Radio du genou (photo)",
}


def test_a_masked_document_is_absent_except_for_the_treating_doctor__A4_A6(personas):
    david = client_for(personas.david)
    assert titles(documents(david, open_handle(david, personas.alice))) == ALICE_ALL - {"Synthèse psychiatrique"}
    claire = client_for(personas.claire)
    assert titles(documents(claire, open_handle(claire, personas.alice))) == ALICE_ALL


def test_the_matrix_restricts_a_pharmacist__A2(personas):
    emma = client_for(personas.emma)
    assert titles(documents(emma, open_handle(emma, personas.alice))) == {
        "Bilan sanguin annuel",
        "Ordonnance — traitement de fond",
        "Vaccination antigrippale",
    }


def test_a_masked_category_hides_present_documents_from_others__A12(personas):
    from access_control.actions import do_mask_category
    from access_control.models import DocumentCategory

    do_mask_category(
        personas.bernard.__class__.objects.get(pk=personas.etienne.pk),
        DocumentCategory.objects.get(code="sante-mentale"),
        actor=personas.etienne.user,
    )
    david = client_for(personas.david)
    handle = open_handle(david, personas.etienne)
    assert titles(documents(david, handle)) == {"Synthèse médicale"}  # 60591-5 is not in the category
    from access_control.actions import do_deposit_document

    do_deposit_document(
        personas.etienne, actor=personas.claire, fileobj=pdf_file(), document_type="68599-0", title="Nouvelle synthèse"
    )
    assert titles(documents(david, handle)) == {"Synthèse médicale"}  # A12: future documents too


def test_a_block_takes_effect_at_once_on_an_opened_handle__A5(personas):
    from access_control.actions import do_block_practitioner

    david = client_for(personas.david)
    handle = open_handle(david, personas.alice)
    do_block_practitioner(personas.alice, personas.david, actor=personas.alice.user)
    response = documents(david, handle)
    assert response.status_code == 200 and response.json()["count"] == 0


def test_filters_and_pagination(personas):
    claire = client_for(personas.claire)
    handle = open_handle(claire, personas.alice)
    first = documents(claire, handle, page_size=3)
    body = first.json()
    assert body["count"] == 8 and len(body["results"]) == 3 and body["next"] and body["previous"] is None
    assert titles(documents(claire, handle, type="11488-4")) == {
        "Consultation de cardiologie",
        "Consultation de remplacement",
    }
    assert titles(documents(claire, handle, document_class="42")) == {
        "Ordonnance — traitement de fond",
        "Prescription de rééducation du genou",
    }
    out_of_range = documents(claire, handle, page=99)
    assert out_of_range.status_code == 404 and error_code(out_of_range) == "not_found"
    bad = documents(claire, handle, date_from="hier")
    assert bad.status_code == 400 and "date_from" in bad.json()["error"]["fields"]


def test_document_list_costs_two_queries_whatever_the_page(personas, django_assert_num_queries):
    claire = client_for(personas.claire)
    handle = open_handle(claire, personas.alice)
    documents(claire, handle)  # the token's last use is now recorded: no write on the next calls
    for size in (1, 8):
        # token (with user, practitioner, profession), the page with the total (COUNT(*) OVER ())
        with django_assert_num_queries(2):
            response = documents(claire, handle, page_size=size)
        assert len(response.json()["results"]) == size
    with django_assert_num_queries(3):  # page=last: the total first, then the page
        assert len(documents(claire, handle, page_size=8, page="last").json()["results"]) >= 1


def test_document_list_pages_read_alike_with_the_total_in_the_page_query(personas):
    """Counts, links and 404s of the one-query pages are those of DRF's pagination (count query, then slice)."""
    claire = client_for(personas.claire)
    handle = open_handle(claire, personas.alice)
    total = documents(claire, handle, page_size=100).json()["count"]
    assert total >= 3
    pages = [documents(claire, handle, page_size=2, page=n).json() for n in range(1, (total + 1) // 2 + 1)]
    assert all(page["count"] == total for page in pages)
    assert [row["id"] for page in pages for row in page["results"]] == [
        row["id"] for row in documents(claire, handle, page_size=100).json()["results"]
    ]
    assert pages[0]["previous"] is None and pages[-1]["next"] is None and "page=2" in pages[0]["next"]
    assert documents(claire, handle, page_size=2, page="last").json() == pages[-1]
    for wrong in (len(pages) + 1, 0, "x"):
        response = documents(claire, handle, page_size=2, page=wrong)
        assert response.status_code == 404 and error_code(response) == "not_found"
    assert documents(claire, handle, page_size=2, type="nothing-of-this-type").json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_document_list_body_is_the_serializers_for_every_kind_of_document__A2_A8(personas):
    """The listing builds its body from rows (listed_documents): byte for byte what DocumentSerializer gives."""
    from access_control.api import visible_documents
    from practitioners.serializers import DocumentSerializer

    claire = client_for(personas.claire)
    handle = open_handle(claire, personas.alice)
    held = claire.post(
        reverse("api-pro-documents", args=[handle]),
        {"file": pdf_file(), "document_type": "11502-2", "title": "Bilan à annoncer", "hold": "true"},
    )
    assert held.status_code == 201
    Document.objects.filter(pk=held.json()["id"]).update(hidden_from_representatives=True)
    response = documents(claire, handle, page_size=100)
    listing = visible_documents(personas.claire, personas.alice)
    expected = DocumentSerializer(listing, many=True).data
    assert json.dumps(response.json()["results"]) == json.dumps(expected)  # same keys, same order, same values
    kinds = {(row["author"]["kind"], row["held_from_patient"], row["minors_secret"]) for row in expected}
    assert {kind for kind, _held, _secret in kinds} >= {"practitioner", "patient"}
    assert any(held for _kind, held, _secret in kinds) and any(secret for _kind, _held, secret in kinds)


# --- Documents: metadata, content, deposit, hold ---------------------------------------------------------


def _alice_document(title):
    return Document.objects.get(profile__first_names="Alice Marie", title=title)


def test_content_download_is_traced_as_an_opening__T1(personas):
    david = client_for(personas.david)
    handle = open_handle(david, personas.alice)
    document = _alice_document("Consultation de cardiologie")
    meta = david.get(reverse("api-pro-document", args=[handle, document.pk]))
    assert meta.status_code == 200 and meta.json()["type"]["code"] == "11488-4"
    assert meta.json()["author"]["rpps"] == personas.david.rpps
    response = david.get(reverse("api-pro-content", args=[handle, document.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    assert (
        TrailEntry.objects.filter(
            action=Action.OPEN_DOCUMENT, document_id=document.pk, actor_practitioner=personas.david, outcome="allowed"
        ).count()
        == 1
    )


def test_a_masked_document_cannot_be_fetched_by_id__A4(personas):
    david = client_for(personas.david)
    handle = open_handle(david, personas.alice)
    masked = _alice_document("Synthèse psychiatrique")
    assert error_code(david.get(reverse("api-pro-document", args=[handle, masked.pk]))) == "document_not_found"
    assert david.get(reverse("api-pro-content", args=[handle, masked.pk])).status_code == 404
    entry = TrailEntry.objects.get(
        action=Action.OPEN_DOCUMENT, document_id=masked.pk, actor_practitioner=personas.david
    )
    assert entry.outcome == "denied" and entry.reason == Reason.DOCUMENT_NOT_VISIBLE


def test_deposit_with_a_hold_then_release__A8_A10(personas):
    david = client_for(personas.david)
    handle = found_handle(david, personas.bernard)  # depositing needs no opening
    response = david.post(
        reverse("api-pro-documents", args=[handle]),
        {"file": pdf_file(), "document_type": "11502-2", "title": "Bilan à annoncer", "hold": "true"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["held_from_patient"] is True
    document = Document.objects.get(pk=response.json()["id"])
    assert document.content_type == "application/pdf" and document.is_held
    opened = open_handle(david, personas.bernard)
    released = david.post(reverse("api-pro-release", args=[opened, document.pk]))
    assert released.status_code == 200 and released.json()["held_from_patient"] is False


def test_a_refused_file_is_a_400_with_the_stores_code__D(personas):
    david = client_for(personas.david)
    handle = found_handle(david, personas.bernard)
    fake = pdf_file()
    fake.seek(0)
    fake = type(fake)(b"MZ\x90\x00 not a document")
    fake.name = "virus.pdf"
    response = david.post(
        reverse("api-pro-documents", args=[handle]),
        {"file": fake, "document_type": "11502-2", "title": "Faux"},
        format="multipart",
    )
    assert response.status_code == 400 and error_code(response) == "file_type"


def test_a_blocked_practitioner_deposits_by_identity_and_gets_a_receipt__A5_A10(personas):
    hugo = client_for(personas.hugo)
    body = {
        "nir": personas.alice.nir,
        "birth_date": "1985-03-12",
        "birth_name": "MARTIN",
        "file": pdf_file(),
        "document_type": "11488-4",
        "title": "Compte rendu de garde",
    }
    response = hugo.post(reverse("api-pro-deposit"), body, format="multipart")
    assert response.status_code == 202 and response.json()["status"] == "received"
    assert "patient" not in response.json()
    assert Document.objects.filter(profile=personas.alice, title="Compte rendu de garde").exists()
    unknown = dict(body, nir="1370476243484 15", birth_date="1937-04-01", file=pdf_file())
    again = hugo.post(reverse("api-pro-deposit"), unknown, format="multipart")
    assert again.status_code == 202 and again.json() == response.json()  # no oracle


def test_a_deposit_to_an_opposed_profile_is_refused_by_identity_too__L2_A10(personas):
    david = client_for(personas.david)
    body = {
        "nir": personas.camille.nir,
        "birth_date": "1990-07-21",
        "birth_name": "LEROY",
        "file": pdf_file(),
        "document_type": "11488-4",
        "title": "Compte rendu",
    }
    response = david.post(reverse("api-pro-deposit"), body, format="multipart")
    assert response.status_code == 202 and not Document.objects.filter(profile=personas.camille).exists()


# --- A6, T3: treating doctor and own activity ----------------------------------------------------------------


def test_the_treating_doctor_lists_her_patients_and_reads_the_trail__A6_T3(personas):
    claire = client_for(personas.claire)
    patients = claire.get(reverse("api-pro-my-patients")).json()["results"]
    by_name = {row["first_names"]: row["handle"] for row in patients}
    assert "Alice Marie" in by_name
    trail = claire.get(reverse("api-pro-trail", args=[by_name["Alice Marie"]]))
    assert trail.status_code == 200 and trail.json()["count"] > 0
    david = client_for(personas.david)
    refused = david.get(reverse("api-pro-trail", args=[found_handle(david, personas.alice)]))
    assert refused.status_code == 404 and error_code(refused) == "no_match"


def test_own_activity_names_no_patient_for_refusals__T3_A5(personas):
    hugo = client_for(personas.hugo)
    search(hugo, personas.alice)
    rows = hugo.get(reverse("api-pro-activity")).json()["results"]
    refused = [row for row in rows if row["action"] == Action.LOOKUP]
    assert refused and all(row["patient_name"] == "" and row["outcome"] == "denied" for row in refused)
    david = client_for(personas.david)
    open_handle(david, personas.bernard)
    opened = [r for r in david.get(reverse("api-pro-activity")).json()["results"] if r["action"] == Action.OPEN_RECORD]
    assert opened[0]["patient_name"] == "Bernard Louis PETIT"


# --- Accounts ------------------------------------------------------------------------------------------


def test_a_patient_token_cannot_use_the_practitioner_api(personas):
    response = search(client_for(personas.alice.user), personas.bernard)
    assert response.status_code == 403 and error_code(response) == "wrong_account_kind"


def test_staff_have_no_api_access_even_signed_in(personas, client):
    staff = APIClient()
    verified_client(staff, personas.karim)
    assert search(staff, personas.bernard).status_code == 403
    response = staff.get(reverse("api-patient-profiles"))
    assert response.status_code == 403 and error_code(response) == "wrong_account_kind"


def test_a_practitioners_verified_portal_session_also_works(personas):
    session = APIClient(enforce_csrf_checks=False)
    verified_client(session, personas.david.user)
    assert search(session, personas.bernard).status_code == 200
    unverified = APIClient()
    unverified.force_login(personas.david.user)  # password step only: no second factor
    assert error_code(search(unverified, personas.bernard)) == "not_authenticated"


def test_a_document_of_another_opened_record_is_refused_like_an_unknown_id__A5_T1(personas):
    """The content is looked for in the handle's record only: another record's id is an unknown id, traced alike.

    David has opened Bernard's record too; through Alice's handle, Bernard's document is no opening of Bernard's
    record (nothing on Bernard's chain) and gets the answer and the entry of an id that exists nowhere.
    """
    from access_control.trail import NATIONAL_CHAIN

    david = client_for(personas.david)
    handle = open_handle(david, personas.alice)
    open_handle(david, personas.bernard)
    bernards = Document.objects.filter(profile=personas.bernard).first()
    unknown = Document.objects.order_by("pk").last().pk + 1000
    before = TrailEntry.objects.filter(profile=personas.bernard).count()
    answers = [david.get(reverse("api-pro-content", args=[handle, pk])) for pk in (bernards.pk, unknown)]
    assert [answer.status_code for answer in answers] == [404, 404]
    assert answers[0].content == answers[1].content
    entries = TrailEntry.objects.filter(action=Action.OPEN_DOCUMENT, actor_practitioner=personas.david).order_by("pk")
    assert [(e.document_id, e.outcome, e.reason, e.profile_id) for e in entries] == [
        (pk, "denied", Reason.DOCUMENT_NOT_FOUND, NATIONAL_CHAIN) for pk in (bernards.pk, unknown)
    ]
    assert TrailEntry.objects.filter(profile=personas.bernard).count() == before
