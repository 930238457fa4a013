"""The patient REST API under the portal's rules, told with the personas (docs/api.md)."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from access_control.actions import do_deposit_document
from access_control.api import visible_documents
from access_control.models import Block, TrailEntry, TreatingRightsGrant
from access_control.rules import Action, Reason
from records.models import Document, Profile
from tests.api_fixtures import client_for, error_code, open_handle, pdf_file, stepped_up_client
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db


def url(name, profile, *args):
    return reverse(name, args=[profile.pk, *args])


def titles(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {row["title"] for row in response.json()["results"]}


def test_profiles_lists_own_profile_first_then_the_minors__L10(personas):
    response = client_for(personas.alice.user).get(reverse("api-patient-profiles"))
    assert response.status_code == 200
    rows = response.json()
    assert [row["first_names"] for row in rows] == ["Alice Marie", "Fanny"]
    assert rows[0]["own"] is True and rows[1]["own"] is False
    assert rows[0]["treating_doctor"]["rpps"] == personas.claire.rpps
    assert rows[0]["preferred_channel"] == "email"


def test_another_patients_profile_is_404(personas):
    response = client_for(personas.alice.user).get(url("api-patient-profile", personas.etienne))
    assert response.status_code == 404 and error_code(response) == "profile_not_found"


def test_the_patient_sees_her_documents_masked_ones_included_with_flags__A4(personas):
    response = client_for(personas.alice.user).get(url("api-patient-documents", personas.alice))
    rows = {row["title"]: row for row in response.json()["results"]}
    assert len(rows) == 8
    assert rows["Synthèse psychiatrique"]["masked"] is True
    assert rows["Radio du genou (photo)"]["own_upload"] is True


def test_a_held_document_is_hidden_from_the_patient_until_released__A8(personas):
    document = do_deposit_document(
        personas.alice, actor=personas.david, fileobj=pdf_file(), document_type="11502-2", title="Résultat à annoncer",
        hold=True,
    )  # fmt: skip
    alice = client_for(personas.alice.user)
    assert "Résultat à annoncer" not in titles(alice.get(url("api-patient-documents", personas.alice)))
    response = alice.get(url("api-patient-document", personas.alice, document.pk))
    assert response.status_code == 404 and error_code(response) == "document_not_found"
    denied = TrailEntry.objects.get(profile=personas.alice, document_id=document.pk, outcome="denied")
    assert denied.reason == Reason.DOCUMENT_NOT_FOUND  # T1: the denied attempt is traced
    from access_control.actions import do_release_hold

    do_release_hold(document, actor=personas.david)
    assert "Résultat à annoncer" in titles(alice.get(url("api-patient-documents", personas.alice)))


def test_the_representative_does_not_see_the_minors_secret__A9(personas):
    alice = client_for(personas.alice.user)
    assert titles(alice.get(url("api-patient-documents", personas.fanny))) == {"Historique des vaccinations"}


def test_content_is_streamed_and_traced__T1(personas):
    alice = client_for(personas.alice.user)
    document = Document.objects.get(profile=personas.alice, title="Radio du genou (photo)")
    response = alice.get(url("api-patient-content", personas.alice, document.pk))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    assert TrailEntry.objects.filter(
        profile=personas.alice, action=Action.OPEN_DOCUMENT, document_id=document.pk, actor_kind="patient"
    ).exists()


def test_upload_and_delete_own_document_but_not_a_practitioners__A10(personas):
    alice = client_for(personas.alice.user)
    response = alice.post(
        url("api-patient-documents", personas.alice),
        {"file": pdf_file("ordonnance.pdf"), "document_type": "DOCPAT02", "title": "Mon ordonnance"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    own = response.json()["id"]
    refused = alice.post(
        url("api-patient-documents", personas.alice),
        {"file": pdf_file(), "document_type": "11502-2", "title": "Faux bilan"},
        format="multipart",
    )
    assert refused.status_code == 400 and error_code(refused) == "type_not_for_patients"
    assert alice.delete(url("api-patient-document", personas.alice, own)).status_code == 204
    assert Document.objects.get(pk=own).deleted_at is not None
    practitioners = Document.objects.get(profile=personas.alice, title="Bilan sanguin annuel")
    conflict = alice.delete(url("api-patient-document", personas.alice, practitioners.pk))
    assert conflict.status_code == 409 and error_code(conflict) == "not_own_document"


def test_mask_then_the_practitioner_no_longer_sees_it__A4(personas):
    alice = client_for(personas.alice.user)
    document = Document.objects.get(profile=personas.alice, title="Consultation de cardiologie")
    response = alice.post(url("api-patient-mask", personas.alice, document.pk))
    assert response.status_code == 200 and response.json()["masked"] is True
    emma_visible = client_for(personas.david)
    handle = open_handle(emma_visible, personas.alice)
    listed = titles(emma_visible.get(reverse("api-pro-documents", args=[handle])))
    assert "Consultation de cardiologie" in listed  # David is its author (A4)
    claire = client_for(personas.claire)
    assert "Consultation de cardiologie" in titles(
        claire.get(reverse("api-pro-documents", args=[open_handle(claire, personas.alice)]))
    )  # and Claire the treating doctor
    assert alice.delete(url("api-patient-mask", personas.alice, document.pk)).json()["masked"] is False


def test_a_closed_profile_shows_nothing_and_cannot_be_masked__L4_L5(personas):
    denise = client_for(personas.denise.user)
    assert denise.get(url("api-patient-documents", personas.denise)).json()["count"] == 0
    response = denise.post(url("api-patient-category", personas.denise, "sante-mentale"))
    assert response.status_code == 409 and error_code(response) == "profile_not_activated"


def test_category_masks_apply_to_practitioners__A12(personas):
    alice = client_for(personas.alice.user)
    categories = {row["code"]: row for row in alice.get(url("api-patient-categories", personas.alice)).json()}
    assert categories["sante-mentale"]["masked"] is False
    masked = alice.post(url("api-patient-category", personas.alice, "sante-mentale"))
    assert masked.status_code == 200 and masked.json()["masked"] is True
    assert alice.get(url("api-patient-profile", personas.alice)).json()["masked_categories"] == ["sante-mentale"]
    unknown = alice.post(url("api-patient-category", personas.alice, "astrologie"))
    assert unknown.status_code == 404 and error_code(unknown) == "category_not_found"


def test_block_and_unblock_by_rpps__A5(personas):
    alice = client_for(personas.alice.user)
    response = alice.post(url("api-patient-blocks", personas.alice), {"rpps": personas.david.rpps}, format="json")
    assert response.status_code == 201 and response.json()["practitioner"]["rpps"] == personas.david.rpps
    assert {row["practitioner"]["rpps"] for row in alice.get(url("api-patient-blocks", personas.alice)).json()} == {
        personas.hugo.rpps,
        personas.david.rpps,
    }
    treating = alice.post(url("api-patient-blocks", personas.alice), {"rpps": personas.claire.rpps}, format="json")
    assert treating.status_code == 409 and error_code(treating) == "treating_doctor"
    stepped_up = stepped_up_client(personas.alice.user)
    assert stepped_up.delete(url("api-patient-block", personas.alice, personas.david.rpps)).status_code == 204
    assert not Block.objects.filter(profile=personas.alice, practitioner=personas.david).exists()


def test_unblocking_from_a_portal_session_needs_the_step_up__A5(personas):
    session = APIClient()
    verified_client(session, personas.alice.user)
    response = session.delete(url("api-patient-block", personas.alice, personas.hugo.rpps))
    assert response.status_code == 403 and error_code(response) == "step_up_required"


def _sees_the_psychiatric_synthesis(practitioner, profile) -> bool:
    return visible_documents(practitioner, profile).filter(document_type__code="68599-0").exists()


def _grant(client, profile, practitioner, **extra):
    return client.post(url("api-patient-treating-rights", profile), {"rpps": practitioner.rpps}, format="json", **extra)


def test_granted_treating_rights_show_masked_documents_until_revoked__A4(personas, django_assert_num_queries):
    alice, stepped_up = client_for(personas.alice.user), stepped_up_client(personas.alice.user)
    alice.get(reverse("api-patient-profiles"))  # the token's first use records it: not part of the counts below
    assert not _sees_the_psychiatric_synthesis(personas.david, personas.alice)
    response = _grant(stepped_up, personas.alice, personas.david)
    assert response.status_code == 201, response.content
    assert response.json()["practitioner"] == {
        "rpps": personas.david.rpps, "name": "Dr David Lambert", "profession": personas.david.profession.label_fr,
        "city": "PARIS",
    }  # fmt: skip
    assert _sees_the_psychiatric_synthesis(personas.david, personas.alice)

    def listed_rpps() -> list[str]:
        # token, profile (managed, with treating doctor), grants with their practitioners and professions
        with django_assert_num_queries(3):
            rows = alice.get(url("api-patient-treating-rights", personas.alice)).json()
        assert all(row["granted_at"] for row in rows)
        return [row["practitioner"]["rpps"] for row in rows]

    assert listed_rpps() == [personas.david.rpps]
    _grant(stepped_up, personas.alice, personas.ines)
    assert listed_rpps() == [personas.david.rpps, personas.ines.rpps]
    assert alice.delete(url("api-patient-treating-right", personas.alice, personas.david.rpps)).status_code == 204
    assert not _sees_the_psychiatric_synthesis(personas.david, personas.alice)
    assert listed_rpps() == [personas.ines.rpps]


def test_treating_rights_are_refused_to_a_blocked_practitioner_and_an_insurers_physician__A3_A4_A5(personas):
    alice = stepped_up_client(personas.alice.user)
    blocked = _grant(alice, personas.alice, personas.hugo)
    assert blocked.status_code == 409 and error_code(blocked) == "practitioner_blocked"
    assert blocked.json()["error"]["message"] == (
        "Vous avez bloqué ce professionnel : débloquez-le avant de lui donner des droits."
    )
    english = _grant(alice, personas.alice, personas.hugo, HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 409 and english.json()["error"]["message"] == (
        "You have blocked this practitioner: unblock them before giving them rights."
    )
    insurer = _grant(alice, personas.alice, personas.julien)
    assert insurer.status_code == 400 and error_code(insurer) == "forbidden_actor"
    assert not TreatingRightsGrant.objects.filter(profile=personas.alice).exists()
    assert not _sees_the_psychiatric_synthesis(personas.hugo, personas.alice)


def test_treating_rights_for_an_unknown_rpps_or_another_patients_profile_are_404__A4(personas):
    alice = stepped_up_client(personas.alice.user)
    unknown = alice.post(url("api-patient-treating-rights", personas.alice), {"rpps": "99999999999"}, format="json")
    assert unknown.status_code == 404 and error_code(unknown) == "practitioner_not_found"
    gone = alice.delete(url("api-patient-treating-right", personas.alice, "99999999999"))
    assert gone.status_code == 404 and error_code(gone) == "practitioner_not_found"
    other = _grant(alice, personas.etienne, personas.david)
    assert other.status_code == 404 and error_code(other) == "profile_not_found"
    for forged_id in (Profile.objects.order_by("pk").last().pk + 1, 2**63):
        forged = alice.post(
            reverse("api-patient-treating-rights", args=[forged_id]), {"rpps": personas.david.rpps}, format="json"
        )
        assert forged.status_code == 404 and forged.json() == other.json()
    listed = alice.get(url("api-patient-treating-rights", personas.etienne))
    assert listed.status_code == 404 and listed.json() == other.json()
    assert not TreatingRightsGrant.objects.exists()


def test_a_read_token_can_list_but_not_grant_or_revoke_treating_rights__A4(personas):
    alice = client_for(personas.alice.user, scope="read")
    assert alice.get(url("api-patient-treating-rights", personas.alice)).json() == []
    granted = _grant(alice, personas.alice, personas.david)
    assert granted.status_code == 403 and error_code(granted) == "insufficient_scope"
    revoked = alice.delete(url("api-patient-treating-right", personas.alice, personas.david.rpps))
    assert revoked.status_code == 403 and error_code(revoked) == "insufficient_scope"
    assert not TreatingRightsGrant.objects.exists()


def test_an_occupational_physician_reads_only_while_authorised_through_the_api__A3(personas, django_assert_num_queries):
    from access_control.api import find_profile

    alice, gilles = client_for(personas.alice.user), personas.gilles
    stepped_up = stepped_up_client(personas.alice.user)
    alice.get(reverse("api-patient-profiles"))  # the token's first use records it: not part of the count below

    def finds() -> bool:
        return find_profile(gilles, nir=personas.alice.nir, birth_date=personas.alice.birth_date) is not None

    assert not finds()
    given = stepped_up.post(
        url("api-patient-occupational-authorisations", personas.alice), {"rpps": gilles.rpps}, format="json"
    )
    assert given.status_code == 201 and given.json()["practitioner"]["rpps"] == gilles.rpps
    assert finds()
    with django_assert_num_queries(3):  # token, profile, authorisations with their practitioners and professions
        listed = alice.get(url("api-patient-occupational-authorisations", personas.alice)).json()
    assert [row["practitioner"]["name"] for row in listed] == ["Dr Gilles Fontaine"]
    not_occupational = stepped_up.post(
        url("api-patient-occupational-authorisations", personas.alice), {"rpps": personas.david.rpps}, format="json"
    )
    assert not_occupational.status_code == 400 and error_code(not_occupational) == "not_occupational_physician"
    withdrawn = alice.delete(url("api-patient-occupational-authorisation", personas.alice, gilles.rpps))
    assert withdrawn.status_code == 204
    assert not finds()
    actions = TrailEntry.objects.filter(profile=personas.alice, detail=f"rpps:{gilles.rpps}").order_by("seq")
    assert list(actions.values_list("action", flat=True)) == [Action.AUTHORISE_OCCUPATIONAL, Action.REVOKE_OCCUPATIONAL]


def test_treating_doctor_and_emergency_opt_out__A6_A7(personas):
    etienne = stepped_up_client(personas.etienne.user)
    response = etienne.put(
        url("api-patient-treating-doctor", personas.etienne), {"rpps": personas.david.rpps}, format="json"
    )
    assert response.status_code == 200 and response.json()["treating_doctor"]["rpps"] == personas.david.rpps
    insurer = etienne.put(
        url("api-patient-treating-doctor", personas.etienne), {"rpps": personas.julien.rpps}, format="json"
    )
    assert insurer.status_code == 400 and error_code(insurer) == "not_a_doctor"
    assert etienne.delete(url("api-patient-treating-doctor", personas.etienne)).json()["treating_doctor"] is None
    opt_in = etienne.put(url("api-patient-emergency", personas.etienne), {"opt_out": False}, format="json")
    assert opt_in.json()["emergency_access_opt_out"] is False
    ines = client_for(personas.ines)
    assert open_handle(ines, personas.etienne, mode="centre_15")  # A7: emergency access possible again


def test_trail_shows_who_accessed_the_record__T3(personas):
    open_handle(client_for(personas.david), personas.alice)
    rows = client_for(personas.alice.user).get(url("api-patient-trail", personas.alice)).json()["results"]
    assert rows[0]["action"] == Action.OPEN_RECORD and rows[0]["actor_name"] == "Dr David Lambert"
    assert rows[0]["actor_profession"]


def test_notices_and_preferences__N1_N2(personas):
    open_handle(client_for(personas.david), personas.alice)
    alice = client_for(personas.alice.user)
    notices = alice.get(url("api-patient-notices", personas.alice)).json()["results"]
    consultation = next(n for n in notices if n["kind"] == "consultation")
    assert consultation["practitioner"]["name"] == "Dr David Lambert" and consultation["channel"] == "email"
    stepped_up = stepped_up_client(personas.alice.user)
    response = stepped_up.put(
        url("api-patient-preferences", personas.alice), {"channel": "post", "new_document_notices": True}, format="json"
    )
    assert response.status_code == 200 and response.json()["preferred_channel"] == "post"
    fanny = stepped_up.put(
        url("api-patient-preferences", personas.fanny),
        {"channel": "email", "new_document_notices": False},
        format="json",
    )
    assert fanny.status_code == 400 and error_code(fanny) == "email_not_verified"


def test_a_read_token_cannot_write(personas):
    alice = client_for(personas.alice.user, scope="read")
    assert alice.get(url("api-patient-documents", personas.alice)).status_code == 200
    response = alice.put(url("api-patient-emergency", personas.alice), {"opt_out": True}, format="json")
    assert response.status_code == 403 and error_code(response) == "insufficient_scope"


def test_a_practitioner_token_cannot_use_the_patient_api(personas):
    response = client_for(personas.claire).get(reverse("api-patient-profiles"))
    assert response.status_code == 403 and error_code(response) == "wrong_account_kind"


def test_unknown_api_paths_answer_in_the_error_shape():
    response = APIClient().get("/api/v1/nowhere/")
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_patient_document_list_costs_a_constant_number_of_queries(personas, django_assert_num_queries):
    alice = client_for(personas.alice.user)
    alice.get(url("api-patient-documents", personas.alice))  # the token's last use is recorded now
    for size in (1, 8):
        # token, profile (managed, with treating doctor), count, page, masked categories
        with django_assert_num_queries(5):
            response = alice.get(url("api-patient-documents", personas.alice), {"page_size": size})
        assert len(response.json()["results"]) == size
