"""The lifecycle desk in the admin: find a profile by NIR and birth date (A11), then each lifecycle action
(L1-L8) behind a form and a confirmation page, run by the records action with the staff member as actor,
with its notice (N5) and trail entry (T1); refusals shown as they are (L9)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from access_control.models import TrailEntry
from notifications.models import Notice
from records import actions, lifecycle
from records.models import Profile
from tests.admin_fixtures import (  # noqa: F401  (fixtures)
    fixture_agent,
    fixture_agent_client,
    fixture_supervisor,
    fixture_supervisor_client,
)
from tests.lifecycle_fixtures import enrol, enrol_active, enrol_open
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
LOOKUP = "/admin/records/profile/"
State = Profile.State


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def desk(profile) -> str:
    return f"/admin/records/profile/{profile.pk}/"


def action_url(profile, slug) -> str:
    return f"/admin/records/profile/{profile.pk}/desk/{slug}/"


def act(client, profile, slug, data=None):
    """Post the form, check the confirmation page changed nothing, then confirm. Returns the final response."""
    before = Profile.objects.get(pk=profile.pk).state
    trail_before = TrailEntry.objects.count()
    response = client.post(action_url(profile, slug), data or {})
    assert response.status_code == 200, response
    assert response.context["confirming"], response.context["form"].errors
    assert "Confirmez l'opération" in response.content.decode()
    assert Profile.objects.get(pk=profile.pk).state == before and TrailEntry.objects.count() == trail_before
    return client.post(action_url(profile, slug), {**(data or {}), "confirmed": "1"}, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def last_entry(profile) -> TrailEntry:
    return TrailEntry.objects.filter(profile_id=profile.pk).order_by("-seq").first()


def notice_kinds(profile) -> list[str]:
    return list(Notice.objects.filter(profile=profile).order_by("pk").values_list("kind", flat=True))


def offered(client, profile) -> list[str]:
    return [action.slug for action in client.get(desk(profile)).context["desk_actions"]]


# --- Finding a profile (A11) -------------------------------------------------------------------------------


def test_nir_and_birth_date_together_open_the_desk__A11(agent_client):
    profile, _code = enrol()
    spaced = f"{profile.nir[0]} {profile.nir[1:3]} {profile.nir[3:5]} {profile.nir[5:]}"
    response = agent_client.get(LOOKUP, {"nir": spaced, "birth_date": "1980-01-15"})
    assert response.status_code == 302 and response["Location"] == desk(profile)


def test_a_wrong_birth_date_finds_nothing_and_says_so__A11(agent_client):
    profile, _code = enrol()
    response = agent_client.get(LOOKUP, {"nir": profile.nir, "birth_date": "1980-01-16"})
    assert response.status_code == 200
    assert "Aucun profil ne correspond" in response.content.decode()


def test_profiles_are_never_listed_nor_searched_by_name__A11(agent_client, django_assert_num_queries):
    enrol()
    enrol(birth_name="LEROY", first_names="Camille")
    # session, user, device, permissions (2), session save (3 with its savepoint): no query on profiles
    with django_assert_num_queries(8):
        response = agent_client.get(LOOKUP, {"q": "PETIT"})
    content = response.content.decode()
    assert response.status_code == 200
    assert "PETIT" not in content and "LEROY" not in content


def test_the_desk_shows_the_profile_its_notices_and_trail_in_few_queries(agent_client, django_assert_num_queries):
    profile, _code = enrol()
    actions.do_reissue_provisional_code(profile, actor=None)
    # session, user, device, permissions (2), profile, trail, notices, represented, session save (3)
    with django_assert_num_queries(12):
        response = agent_client.get(desk(profile))
    assert response.status_code == 200
    assert [n.kind for n in response.context["notices"]] == ["pre_opening", "pre_opening"]
    assert [e.action for e in response.context["trail"]] == ["provisional_code_reissued", "enrol"]
    assert "provisional_code_hash" not in response.content.decode()
    assert "pbkdf2" not in response.content.decode()


def test_what_the_desk_offers_follows_the_state_and_the_group(agent_client, supervisor):
    pending, _code = enrol()
    opened, _code = enrol_open()
    assert offered(agent_client, pending) == ["opposition", "reissue-code"]
    assert offered(agent_client, opened) == ["reissue-code", "close"]
    assert offered(verified_client(Client(), supervisor), opened) == ["reissue-code", "suspend", "close", "death"]


# --- L2: opposition ---------------------------------------------------------------------------------------


def test_an_agent_records_an_opposition_with_the_provisional_code__L2_T1(agent_client, agent):
    profile, code = enrol()
    assert agent_client.get(action_url(profile, "opposition")).status_code == 200
    response = act(agent_client, profile, "opposition", {"method": "code", "provisional_code": code.lower()})

    assert messages_of(response) == ["Opposition enregistrée ; la confirmation est envoyée à la personne."]
    profile.refresh_from_db()
    assert profile.state == State.OPPOSED
    entry = last_entry(profile)
    assert (entry.action, entry.detail, entry.reason) == ("opposition", "pending->opposed", "provisional_code")
    assert (entry.actor_kind, entry.actor_user_id, entry.actor_name) == ("staff", agent.pk, "Karim Benali")
    assert notice_kinds(profile) == ["pre_opening", "opposition"]


def test_an_agent_records_an_opposition_after_checking_identity__L2(agent_client):
    profile, _code = enrol()
    response = agent_client.post(action_url(profile, "opposition"), {"method": "identity"})
    assert response.context["form"].errors == {
        "identity_checked": ["L'attestation de vérification d'identité est obligatoire."]
    }
    act(agent_client, profile, "opposition", {"method": "identity", "identity_checked": "on"})
    profile.refresh_from_db()
    assert profile.state == State.OPPOSED
    assert last_entry(profile).reason == "identity_checked"


def test_a_wrong_code_is_refused_before_the_confirmation_page_in_staff_words__L2_L9(agent_client):
    """Issue 18: the code is checked on the form, and the message speaks of the person's profile, not "votre"."""
    profile, _code = enrol()
    response = agent_client.post(
        action_url(profile, "opposition"), {"method": "code", "provisional_code": "ABCDEFGHJK"}
    )
    assert response.status_code == 200 and not response.context["confirming"]
    assert response.context["form"].errors == {
        "provisional_code": [
            "Ce code provisoire ne correspond pas au profil de la personne. Vérifiez-le sur sa notice."
        ]
    }
    assert "votre profil" not in response.content.decode()
    profile.refresh_from_db()
    assert profile.state == State.PENDING
    assert notice_kinds(profile) == ["pre_opening"]


def test_an_expired_code_is_refused_before_the_confirmation_page__L2(agent_client):
    profile, code = enrol()
    Profile.objects.filter(pk=profile.pk).update(provisional_code_expires_at=timezone.now() - timedelta(minutes=1))
    response = agent_client.post(action_url(profile, "opposition"), {"method": "code", "provisional_code": code})
    assert not response.context["confirming"]
    assert "Le code provisoire de la personne a expiré" in response.context["form"].errors["provisional_code"][0]


def test_the_desk_shows_the_trails_codes_as_translated_labels(agent_client):
    """Issue 18: « Opposition à la création », « … → Opposition enregistrée », not ``opposition``, ``pending->opposed``."""
    profile, code = enrol()
    act(agent_client, profile, "opposition", {"method": "code", "provisional_code": code})
    content = agent_client.get(desk(profile)).content.decode()
    assert "<td>Opposition à la création</td>" in content
    assert "<td>Notice envoyée (délai d&#x27;opposition) → Opposition enregistrée</td>" in content
    assert "<td>code provisoire</td>" in content
    assert "pending-&gt;opposed" not in content and "<td>opposition</td>" not in content
    listing = agent_client.get("/admin/access_control/trailentry/").content.decode()
    assert "Opposition à la création" in listing and "pending-&gt;opposed" not in listing


def test_an_opposition_after_the_window_shows_the_action_s_refusal__L2_L9(agent_client, agent, clock):
    profile, _code = enrol()
    clock.shift(timedelta(days=43))  # the scheduled opening has not run yet: still pending
    verified_client(agent_client, agent)  # a new session: the first one expired meanwhile
    response = act(agent_client, profile, "opposition", {"method": "identity", "identity_checked": "on"})
    assert messages_of(response) == [
        "Le délai d'opposition s'est terminé le 13 avril 2026. Vous pouvez demander la clôture du profil."
    ]
    assert Profile.objects.get(pk=profile.pk).state == State.PENDING


# --- L1: new provisional code -----------------------------------------------------------------------------


def test_a_new_provisional_code_replaces_the_old_one__L1(agent_client, agent):
    profile, code = enrol()
    act(agent_client, profile, "reissue-code")
    profile.refresh_from_db()
    assert not lifecycle.check_provisional_code(profile, code)
    assert notice_kinds(profile) == ["pre_opening", "pre_opening"]
    assert (last_entry(profile).action, last_entry(profile).actor_user_id) == ("provisional_code_reissued", agent.pk)


# --- L7: suspension ---------------------------------------------------------------------------------------


def test_a_supervisor_suspends_with_a_reason_and_lifts_the_suspension__L7(supervisor_client, supervisor):
    profile, _user = enrol_active()
    response = supervisor_client.post(action_url(profile, "suspend"), {"reason": ""})
    assert "reason" in response.context["form"].errors
    response = act(supervisor_client, profile, "suspend", {"reason": "Usurpation d'identité signalée"})
    assert messages_of(response) == ["Profil suspendu ; la personne en est informée."]
    profile.refresh_from_db()
    assert profile.state == State.SUSPENDED
    entry = last_entry(profile)
    assert (entry.action, entry.detail, entry.reason, entry.actor_user_id) == (
        "suspension",
        "active->suspended",
        "Usurpation d'identité signalée",
        supervisor.pk,
    )
    act(supervisor_client, profile, "lift-suspension")
    profile.refresh_from_db()
    assert profile.state == State.ACTIVE
    assert last_entry(profile).detail == "suspended->active"
    assert notice_kinds(profile)[-2:] == ["suspension", "reopening"]


def test_agents_cannot_suspend_even_by_posting_directly__L7(agent_client):
    profile, _user = enrol_active()
    response = agent_client.post(action_url(profile, "suspend"), {"reason": "Fraude", "confirmed": "1"}, follow=True)
    assert messages_of(response) == ["Cette opération n'est pas possible pour ce profil ou pour votre rôle."]
    assert Profile.objects.get(pk=profile.pk).state == State.ACTIVE


# --- L5, L6: closure, early deletion, re-opening ----------------------------------------------------------


def test_an_agent_closes_at_the_person_s_request_deletes_early_and_reopens__L5_L6(agent_client, agent):
    profile, _user = enrol_active()
    response = agent_client.post(action_url(profile, "close"), {"reason": "admin"})
    assert "reason" in response.context["form"].errors  # an agent cannot decide an administrative closure
    act(agent_client, profile, "close", {"reason": "patient"})
    profile.refresh_from_db()
    assert (profile.state, profile.closure_reason) == (State.CLOSED, "patient")
    assert last_entry(profile).actor_user_id == agent.pk

    response = act(agent_client, profile, "early-deletion")
    assert messages_of(response) == ["Suppression anticipée programmée ; la personne est informée de la date."]
    profile.refresh_from_db()
    assert profile.deletion_requested_at == START
    assert profile.archive_until == START + timedelta(days=90)
    assert "early-deletion" not in offered(agent_client, profile)

    act(agent_client, profile, "reopen")
    profile.refresh_from_db()
    assert (profile.state, profile.deletion_requested_at) == (State.ACTIVE, None)
    assert notice_kinds(profile)[-3:] == ["closure", "deletion_done", "reopening"]
    assert [e.action for e in TrailEntry.objects.filter(profile_id=profile.pk).order_by("seq")][-3:] == [
        "closure",
        "deletion_request",
        "reopening",
    ]


def test_an_administrative_closure_is_reopened_by_a_supervisor_only__L5_L6(supervisor_client, agent):
    agent_client = verified_client(Client(), agent)
    profile, _user = enrol_active()
    act(supervisor_client, profile, "close", {"reason": "admin"})
    profile.refresh_from_db()
    assert (profile.state, profile.closure_reason) == (State.CLOSED, "admin")
    assert "reopen" not in offered(agent_client, profile)
    act(supervisor_client, profile, "reopen")
    assert Profile.objects.get(pk=profile.pk).state == State.ACTIVE


# --- L8: death --------------------------------------------------------------------------------------------


def test_a_supervisor_records_a_death_which_closes_for_good__L8(supervisor_client):
    profile, user = enrol_active()
    response = act(supervisor_client, profile, "death", {"date_of_death": "2026-02-27"})
    assert messages_of(response) == ["Décès enregistré ; le profil est clôturé."]
    profile.refresh_from_db()
    user.refresh_from_db()
    assert (profile.state, profile.closure_reason, profile.deceased_at) == (
        State.CLOSED,
        "deceased",
        date(2026, 2, 27),
    )
    assert not user.is_active
    assert notice_kinds(profile)[-1] != "closure"  # heirs are dealt with outside the portal (L8)
    assert offered(supervisor_client, profile) == ["early-deletion"]


def test_a_death_date_in_the_future_is_refused_clearly__L8_L9(supervisor_client):
    profile, _user = enrol_active()
    response = act(supervisor_client, profile, "death", {"date_of_death": "2026-03-05"})
    assert messages_of(response) == ["La date de décès doit être comprise entre la date de naissance et aujourd'hui."]
    assert Profile.objects.get(pk=profile.pk).state == State.ACTIVE


# --- L1: the roster upload --------------------------------------------------------------------------------


def test_an_agent_uploads_a_small_roster_and_sees_the_report__L1(agent_client, agent):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.lifecycle_fixtures import next_nir
    from tests.test_enrolment import line, roster

    data = roster(line(next_nir()), line("1800175"), line(next_nir())).getvalue()
    response = agent_client.post(
        "/admin/records/profile/enrol/", {"roster": SimpleUploadedFile("roster.csv", data, "text/csv")}
    )
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.created, report.rejected, report.notices) == (2, 1, 2)
    content = response.content.decode()
    assert "Le NIR compte 15 caractères" in content
    assert set(TrailEntry.objects.filter(action="enrol").values_list("actor_user_id", flat=True)) == {agent.pk}
    again = agent_client.post(
        "/admin/records/profile/enrol/", {"roster": SimpleUploadedFile("roster.csv", data, "text/csv")}
    )
    assert (again.context["report"].created, again.context["report"].already_enrolled) == (0, 2)


def test_the_roster_upload_refuses_a_file_that_is_not_a_roster_or_too_big__L1(agent_client, monkeypatch):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = agent_client.post(
        "/admin/records/profile/enrol/", {"roster": SimpleUploadedFile("x.csv", b"name,city\nA,B\n", "text/csv")}
    )
    assert "Colonnes obligatoires absentes" in response.content.decode()
    monkeypatch.setattr("records.admin.ENROL_UPLOAD_MAX_BYTES", 10)
    response = agent_client.post(
        "/admin/records/profile/enrol/", {"roster": SimpleUploadedFile("x.csv", b"x" * 20, "text/csv")}
    )
    assert "enroll_patients" in response.content.decode()
    assert not Profile.objects.exists()
