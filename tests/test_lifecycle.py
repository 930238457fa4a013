"""The profile lifecycle (L1-L10) as actions, with its trail (T1, T4) and notices (N5)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.core.exceptions import ValidationError
from django.core.files.storage import storages

from access_control.models import TrailEntry
from access_control.trail import NATIONAL_CHAIN, verify_chain
from notifications.models import Notice
from records import actions, crypto, lifecycle_jobs, tasks, transitions
from records.lifecycle import ActorNotAllowed, IllegalTransition, InvalidProvisionalCode, TrailAction
from records.models import Document, Profile, User
from tests.lifecycle_fixtures import (
    PASSWORD,
    activate,
    deposit_document,
    enrol,
    enrol_active,
    enrol_open,
    make_doctor,
    make_staff,
)

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # 9:30 in Paris; durations are counted in UTC
State = Profile.State
Reason = Profile.ClosureReason


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def staff(db):
    return make_staff()


@pytest.fixture
def practitioner(db):
    return make_doctor()


def trail(profile) -> list[tuple[str, str, str]]:
    entries = TrailEntry.objects.filter(profile_id=profile.pk).order_by("seq")
    return [(e.action, e.detail, e.actor_kind) for e in entries]


def notices(profile) -> list[str]:
    return list(Notice.objects.filter(profile_id=profile.pk).order_by("pk").values_list("kind", flat=True))


def snapshot(profile):
    """Everything an action could change, to prove a refused one changed nothing (L9)."""
    return (
        Profile.objects.filter(pk=profile.pk).values().get(),
        list(TrailEntry.objects.filter(profile_id=profile.pk).values_list("pk", "hash")),
        list(Notice.objects.filter(profile_id=profile.pk).values_list("pk", "kind", "status")),
        list(User.objects.order_by("pk").values_list("pk", "is_active")),
    )


def refused(profile, call, exc=IllegalTransition, code=None):
    before = snapshot(profile)
    with pytest.raises(exc) as exc_info:
        call()
    assert snapshot(profile) == before
    if code is not None:
        assert exc_info.value.code == code
    return exc_info.value


def closed_profile(staff, **fields):
    profile, _user = enrol_active(**fields)
    return actions.do_close_profile(profile, actor=profile.user, reason=Reason.PATIENT)


# --- L1: enrolment, provisional code ---------------------------------------------------------------------


def test_enrolment_creates_pending_profile_with_hashed_code_and_pre_opening_letter__L1(clock, staff):
    profile, code = enrol(actor=staff)

    assert profile.state == State.PENDING
    assert profile.notice_sent_at == START
    assert len(code) == 10 and code.isalnum() and code.isupper()
    assert code not in profile.provisional_code_hash
    assert profile.provisional_code_expires_at == START + timedelta(days=settings.CARNET_PROVISIONAL_CODE_DAYS)
    assert actions.check_provisional_code(profile, code)
    assert actions.check_provisional_code(profile, f" {code[:5].lower()}-{code[5:]} ")  # as typed from a letter
    assert not actions.check_provisional_code(profile, "ABCDEFGHJK")
    notice = Notice.objects.get(profile=profile)
    assert (notice.kind, notice.channel, notice.status) == (Notice.Kind.PRE_OPENING, "letter", "pending")
    assert crypto.unseal(notice.sealed_payload) == code.encode()
    assert code.encode() not in bytes(notice.sealed_payload)
    assert trail(profile) == [(TrailAction.ENROL, "->pending", "staff")]
    assert list(notice.trail_entries.all()) == list(TrailEntry.objects.filter(profile_id=profile.pk))


def test_enrolment_is_idempotent_on_the_nir__L1(clock):
    profile, code = enrol()
    spaced = " ".join([profile.nir[:1], profile.nir[1:7], profile.nir[7:]])
    again, no_code = enrol(nir=spaced, first_names="Autre")

    assert again.pk == profile.pk and no_code is None
    assert again.first_names == "Bernard"
    assert actions.check_provisional_code(again, code)
    assert Profile.objects.count() == 1
    assert notices(profile) == [Notice.Kind.PRE_OPENING]
    assert len(trail(profile)) == 1


def test_enrolment_rejects_an_invalid_nir_and_keeps_nothing__L1_I1(clock):
    with pytest.raises(ValidationError) as exc_info:
        enrol(nir="137047624348416")
    assert exc_info.value.code == "nir_key"
    assert not Profile.objects.exists() and not TrailEntry.objects.exists() and not Notice.objects.exists()


def test_enrolment_is_for_the_roster_or_staff_only__L1(clock, practitioner):
    patient_profile, patient = enrol_active()
    for actor in (practitioner, patient):
        with pytest.raises(ActorNotAllowed):
            enrol(actor=actor)
    assert Profile.objects.count() == 1


def test_reissued_code_replaces_the_old_one_and_keeps_the_window__L1(clock, staff):
    profile, old_code = enrol()
    clock.shift(timedelta(days=10))

    profile, new_code = actions.do_reissue_provisional_code(profile, actor=staff)

    assert new_code != old_code
    assert not actions.check_provisional_code(profile, old_code)
    assert actions.check_provisional_code(profile, new_code)
    assert profile.notice_sent_at == START  # L2: the window runs from the first notice
    assert profile.provisional_code_expires_at == START + timedelta(days=10 + settings.CARNET_PROVISIONAL_CODE_DAYS)
    assert notices(profile) == [Notice.Kind.PRE_OPENING, Notice.Kind.PRE_OPENING]
    assert crypto.unseal(Notice.objects.filter(profile=profile).last().sealed_payload) == new_code.encode()
    assert trail(profile)[-1] == (TrailAction.PROVISIONAL_CODE_REISSUED, "", "staff")


def test_provisional_code_expires_after_six_weeks__L1(clock):
    profile, code = enrol()
    clock.shift(timedelta(days=settings.CARNET_PROVISIONAL_CODE_DAYS) - timedelta(seconds=1))
    assert actions.check_provisional_code(profile, code)
    clock.shift(timedelta(seconds=1))
    assert not actions.check_provisional_code(profile, code)


# --- L2: opposition --------------------------------------------------------------------------------------


def test_opposition_with_the_code_on_the_last_second_of_the_window__L2(clock):
    profile, code = enrol(birth_name="LEROY", first_names="Camille", sex=Profile.Sex.FEMALE)
    clock.shift(timedelta(days=42) - timedelta(seconds=1))

    profile = actions.do_record_opposition(profile, actor=None, provisional_code=code)

    assert profile.state == State.OPPOSED
    assert profile.opposed_at == START + timedelta(days=42) - timedelta(seconds=1)
    assert notices(profile) == [Notice.Kind.PRE_OPENING, Notice.Kind.OPPOSITION]
    entry = TrailEntry.objects.filter(profile_id=profile.pk).last()
    assert (entry.action, entry.detail, entry.reason) == (
        TrailAction.OPPOSITION,
        "pending->opposed",
        "provisional_code",
    )


def test_opposition_at_the_end_of_the_window_is_refused_and_the_profile_opens__L2_L3(clock):
    profile, code = enrol()
    clock.shift(timedelta(days=42))

    error = refused(
        profile,
        lambda: actions.do_record_opposition(profile, actor=None, provisional_code=code),
        code="opposition_window_closed",
    )
    assert "délai d'opposition" in error.messages[0]
    assert lifecycle_jobs.open_due_profiles() == 1
    profile.refresh_from_db()
    assert profile.state == State.OPEN


def test_opposition_with_a_wrong_code_gets_the_generic_error__L2(clock):
    profile, _code = enrol()
    refused(
        profile,
        lambda: actions.do_record_opposition(profile, actor=None, provisional_code="ZZZZZZZZZZ"),
        InvalidProvisionalCode,
    )


def test_staff_record_an_opposition_only_after_checking_identity__L2(clock, staff, practitioner):
    profile, _code = enrol()
    refused(profile, lambda: actions.do_record_opposition(profile, actor=staff), ActorNotAllowed)
    refused(
        profile,
        lambda: actions.do_record_opposition(profile, actor=practitioner, identity_checked=True),
        ActorNotAllowed,
    )

    profile = actions.do_record_opposition(profile, actor=staff, identity_checked=True)

    assert profile.state == State.OPPOSED
    entry = TrailEntry.objects.filter(profile_id=profile.pk).last()
    assert (entry.actor_kind, entry.reason) == ("staff", "identity_checked")


def test_opposed_profile_never_opens_and_cannot_be_activated__L2_L9(clock):
    profile, code = enrol()
    actions.do_record_opposition(profile, actor=None, provisional_code=code)
    clock.shift(timedelta(days=100))

    assert lifecycle_jobs.open_due_profiles() == 0
    profile.refresh_from_db()
    assert profile.state == State.OPPOSED
    error = refused(
        profile,
        lambda: activate(profile, code),
        code="activation_opposed",
    )
    assert "opposition" in error.messages[0]
    refused(profile, lambda: actions.do_record_opposition(profile, actor=None, provisional_code=code))


# --- L3: opening ------------------------------------------------------------------------------------------


def test_scheduled_opening_at_day_42_opens_due_profiles_only__L3(clock):
    first, _ = enrol()
    clock.shift(timedelta(hours=1))
    younger, _ = enrol()
    clock.move_to(START + timedelta(days=42) - timedelta(microseconds=1))
    assert lifecycle_jobs.open_due_profiles() == 0

    clock.move_to(START + timedelta(days=42))
    assert tasks.open_due_profiles_task() == 1

    first.refresh_from_db()
    younger.refresh_from_db()
    assert (first.state, first.opened_at) == (State.OPEN, START + timedelta(days=42))
    assert younger.state == State.PENDING
    assert trail(first)[-1] == (TrailAction.OPENING, "pending->open", "system")
    assert notices(first) == [Notice.Kind.PRE_OPENING]  # opening sends nothing (L3)
    assert lifecycle_jobs.open_due_profiles() == 0  # idempotent


def test_scheduled_opening_walks_chunks_with_bounded_queries__L3(clock, monkeypatch, django_assert_max_num_queries):
    profiles = [enrol()[0] for _i in range(5)]
    clock.shift(timedelta(days=42))
    monkeypatch.setattr(lifecycle_jobs, "CHUNK_SIZE", 2)

    # Per chunk: the ids (no row lock); per profile, in its own transaction: SAVEPOINT, the lock by id (one shard
    # on Citus), one UPDATE, the trail queries (three on PostgreSQL: advisory lock, last link, insert; two on
    # SQLite and Citus), RELEASE; then one empty ids query. 39 on PostgreSQL, 34 on SQLite and Citus.
    with django_assert_max_num_queries(3 + 5 * (4 + 3) + 1):
        assert lifecycle_jobs.open_due_profiles() == 5

    assert set(Profile.objects.values_list("state", flat=True)) == {State.OPEN}
    for profile in profiles:
        assert [a for a, _d, _k in trail(profile)] == [TrailAction.ENROL, TrailAction.OPENING]
        assert verify_chain(profile.pk) == []


def test_opening_by_hand_before_the_window_ends_is_refused__L3(clock, staff):
    profile, _ = enrol()
    clock.shift(timedelta(days=41))
    refused(profile, lambda: actions.do_open_profile(profile, actor=staff), code="opposition_window_running")


# --- L4: activation ---------------------------------------------------------------------------------------


def test_activation_creates_a_patient_account_never_named_after_the_nir__L4(clock):
    profile, code = enrol_open(birth_name="MARTIN", first_names="Alice", sex=Profile.Sex.FEMALE)

    user = activate(profile, code, email="alice.martin@example.org")

    profile.refresh_from_db()
    assert user.kind == User.Kind.PATIENT and not user.is_staff
    assert profile.nir not in user.username and profile.nir[:13] not in user.username
    assert user.check_password(PASSWORD) and not user.password.startswith(UNUSABLE_PASSWORD_PREFIX)
    assert (profile.user, profile.state, profile.activated_at) == (user, State.ACTIVE, START)
    assert (profile.email, profile.email_verified) == ("alice.martin@example.org", False)
    assert profile.provisional_code_hash == "" and profile.provisional_code_expires_at is None
    entry = TrailEntry.objects.filter(profile_id=profile.pk).last()
    assert (entry.action, entry.detail, entry.actor_kind, entry.actor_user_id) == (
        TrailAction.ACTIVATION,
        "open->active",
        "patient",
        user.pk,
    )


@pytest.mark.parametrize("wrong", ["nir", "provisional_code", "birth_date"])
def test_wrong_nir_code_or_birth_date_give_one_generic_error__L4(clock, wrong):
    profile, code = enrol_open()
    values = {"nir": profile.nir, "provisional_code": code, "birth_date": profile.birth_date}
    values[wrong] = {
        "nir": "137047624348415",
        "provisional_code": "ABCDEFGHJK",
        "birth_date": date(1980, 1, 16),
    }[wrong]

    error = refused(
        profile,
        lambda: actions.do_activate_profile(profile, password=PASSWORD, email="b@example.org", **values),
        InvalidProvisionalCode,
    )
    assert error.messages == ["Les informations saisies ne permettent pas d'identifier votre profil. Vérifiez-les."]


def test_activation_with_an_expired_code_is_refused_then_a_new_code_works__L1_L4(clock, staff):
    profile, code = enrol_open()
    clock.shift(timedelta(days=settings.CARNET_PROVISIONAL_CODE_DAYS))

    error = refused(
        profile,
        lambda: activate(profile, code),
        code="provisional_code_expired",
    )
    assert "expiré" in error.messages[0]
    profile, code = actions.do_reissue_provisional_code(profile, actor=staff)
    user = activate(profile, code)
    assert user.profile.state == State.ACTIVE


def test_pending_profile_activated_in_its_window_opens_and_activates_at_once__L1_L4(clock):
    profile, code = enrol()
    user = activate(profile, code)
    profile.refresh_from_db()
    assert profile.state == State.ACTIVE
    assert profile.opened_at == profile.activated_at
    assert profile.user == user
    entry = profile.trail_entries.order_by("-seq").first()
    assert entry.detail == "pending->active"


def test_weak_password_refuses_activation_and_creates_no_account__L4(clock):
    profile, code = enrol_open()
    refused(
        profile,
        lambda: activate(profile, code, password="12345"),
        ValidationError,
    )


def test_activated_profile_cannot_be_activated_twice__L4(clock):
    profile, _user = enrol_active()
    refused(
        profile,
        lambda: activate(profile, "ABCDEFGHJK"),
        InvalidProvisionalCode,  # the code was used up: same answer as any wrong code
    )


# --- L5: closure and early deletion -----------------------------------------------------------------------


def test_patient_closes_the_profile_and_it_is_archived_ten_years__L5(clock):
    profile, user = enrol_active()
    clock.shift(timedelta(days=3))

    profile = actions.do_close_profile(profile, actor=user, reason=Reason.PATIENT)

    closed_at = START + timedelta(days=3)
    assert (profile.state, profile.closed_at, profile.closure_reason) == (State.CLOSED, closed_at, Reason.PATIENT)
    assert profile.archive_until == closed_at.replace(year=closed_at.year + 10)
    assert notices(profile)[-1] == Notice.Kind.CLOSURE
    entry = TrailEntry.objects.filter(profile_id=profile.pk).last()
    assert (entry.action, entry.detail, entry.reason, entry.actor_kind) == (
        TrailAction.CLOSURE,
        "active->closed",
        Reason.PATIENT,
        "patient",
    )


def test_staff_close_a_never_activated_profile__L5(clock, staff):
    profile, _code = enrol_open()
    profile = actions.do_close_profile(profile, actor=staff, reason=Reason.ADMIN)
    assert (profile.state, profile.closure_reason) == (State.CLOSED, Reason.ADMIN)
    assert trail(profile)[-1] == (TrailAction.CLOSURE, "open->closed", "staff")


def test_closure_actors_are_checked__L5(clock, practitioner):
    profile, user = enrol_active()
    other_profile, other_user = enrol_active(email="autre@example.org")
    refused(
        profile, lambda: actions.do_close_profile(profile, actor=practitioner, reason=Reason.PATIENT), ActorNotAllowed
    )
    refused(
        profile, lambda: actions.do_close_profile(profile, actor=other_user, reason=Reason.PATIENT), ActorNotAllowed
    )
    refused(profile, lambda: actions.do_close_profile(profile, actor=user, reason=Reason.ADMIN), ActorNotAllowed)
    refused(profile, lambda: actions.do_close_profile(profile, actor=None, reason=Reason.DECEASED), ActorNotAllowed)


def test_early_deletion_brings_the_purge_forward_and_tells_the_patient__L5(clock, staff):
    profile, user = enrol_active()
    refused(profile, lambda: actions.do_request_early_deletion(profile, actor=user), code="not_closed")
    actions.do_close_profile(profile, actor=user, reason=Reason.PATIENT)
    clock.shift(timedelta(days=1))

    profile = actions.do_request_early_deletion(profile, actor=user)

    due = START + timedelta(days=1 + settings.CARNET_EARLY_DELETION_DAYS)
    assert (profile.deletion_requested_at, profile.archive_until) == (START + timedelta(days=1), due)
    assert notices(profile)[-1] == Notice.Kind.DELETION_DONE
    assert trail(profile)[-1] == (TrailAction.DELETION_REQUEST, f"purge {due:%Y-%m-%d}", "patient")
    refused(profile, lambda: actions.do_request_early_deletion(profile, actor=staff), code="deletion_already_requested")


# --- L6: re-opening ---------------------------------------------------------------------------------------


def test_reopening_restores_documents_and_history__L6(clock, practitioner):
    profile, user = enrol_active(birth_name="MOREAU", first_names="Denise")
    documents = [deposit_document(profile, user), deposit_document(profile, practitioner)]
    actions.do_close_profile(profile, actor=user, reason=Reason.PATIENT)
    actions.do_request_early_deletion(profile, actor=user)
    history = [e.pk for e in TrailEntry.objects.filter(profile_id=profile.pk)]
    clock.shift(timedelta(days=30))

    profile = actions.do_reopen_profile(profile, actor=user)

    assert profile.state == State.ACTIVE
    assert profile.closed_at is profile.archive_until is profile.deletion_requested_at is None
    assert profile.closure_reason == ""
    assert list(profile.documents.order_by("pk")) == documents
    assert [e.pk for e in TrailEntry.objects.filter(profile_id=profile.pk)][: len(history)] == history
    assert trail(profile)[-1] == (TrailAction.REOPENING, "closed->active", "patient")
    assert notices(profile)[-1] == Notice.Kind.REOPENING
    assert verify_chain(profile.pk) == []


def test_never_activated_profile_reopens_as_open__L6(clock, staff):
    profile, _code = enrol_open()
    actions.do_close_profile(profile, actor=staff, reason=Reason.ADMIN)
    profile = actions.do_reopen_profile(profile, actor=staff)
    assert profile.state == State.OPEN


def test_holder_cannot_reopen_a_closure_decided_by_staff__L6(clock, staff):
    profile, user = enrol_active()
    actions.do_close_profile(profile, actor=staff, reason=Reason.ADMIN)
    refused(profile, lambda: actions.do_reopen_profile(profile, actor=user), ActorNotAllowed)


def test_reopening_after_the_archive_period_is_refused__L6(clock, staff):
    profile, user = enrol_active()
    actions.do_close_profile(profile, actor=user, reason=Reason.PATIENT)
    clock.shift(timedelta(days=366 * 10))
    refused(profile, lambda: actions.do_reopen_profile(profile, actor=staff), code="archive_expired")


# --- L7: suspension ---------------------------------------------------------------------------------------


def test_staff_suspend_and_lift_a_suspension__L7(clock, staff):
    profile, user = enrol_active()
    refused(profile, lambda: actions.do_suspend_profile(profile, actor=user, reason="fraude"), ActorNotAllowed)

    profile = actions.do_suspend_profile(profile, actor=staff, reason="usage frauduleux de la carte Vitale")
    assert (profile.state, profile.suspended_at) == (State.SUSPENDED, START)
    entry = TrailEntry.objects.filter(profile_id=profile.pk).last()
    assert (entry.action, entry.detail, entry.reason) == (
        TrailAction.SUSPENSION,
        "active->suspended",
        "usage frauduleux de la carte Vitale",
    )
    assert notices(profile)[-1] == Notice.Kind.SUSPENSION

    profile = actions.do_lift_suspension(profile, actor=staff)
    assert (profile.state, profile.suspended_at) == (State.ACTIVE, None)
    assert trail(profile)[-1] == (TrailAction.SUSPENSION_LIFTED, "suspended->active", "staff")
    assert notices(profile)[-1] == Notice.Kind.REOPENING


def test_suspension_becomes_a_closure_after_42_days__L7(clock, staff):
    profile, _user = enrol_active()
    lifted, _other = enrol_active(email="autre@example.org")
    actions.do_suspend_profile(profile, actor=staff, reason="fraude")
    actions.do_suspend_profile(lifted, actor=staff, reason="fraude")
    clock.shift(timedelta(days=1))
    actions.do_lift_suspension(lifted, actor=staff)
    clock.move_to(START + timedelta(days=42) - timedelta(seconds=1))
    assert lifecycle_jobs.close_expired_suspensions() == 0

    clock.move_to(START + timedelta(days=42))
    assert tasks.close_expired_suspensions_task() == 1

    profile.refresh_from_db()
    lifted.refresh_from_db()
    assert (profile.state, profile.closure_reason) == (State.CLOSED, Reason.SUSPENSION)
    assert profile.archive_until == START.replace(year=2036) + timedelta(days=42)
    assert trail(profile)[-1] == (TrailAction.CLOSURE, "suspended->closed", "system")
    assert notices(profile)[-1] == Notice.Kind.CLOSURE
    assert lifted.state == State.ACTIVE


# --- L8: death --------------------------------------------------------------------------------------------


def test_recorded_death_closes_for_good_and_disables_the_login__L8(clock, staff):
    profile, user = enrol_active()
    notices_before = notices(profile)

    profile = actions.do_record_death(profile, actor=staff, date_of_death=date(2026, 2, 27))

    assert (profile.state, profile.closure_reason, profile.deceased_at) == (
        State.CLOSED,
        Reason.DECEASED,
        date(2026, 2, 27),
    )
    user.refresh_from_db()
    assert not user.is_active
    assert notices(profile) == notices_before  # heirs are dealt with outside the portal
    assert trail(profile)[-1] == (TrailAction.DEATH, "active->closed", "staff")
    refused(profile, lambda: actions.do_reopen_profile(profile, actor=staff), code="deceased")
    refused(
        profile,
        lambda: actions.do_record_death(profile, actor=staff, date_of_death=date(2026, 2, 27)),
        code="already_deceased",
    )


def test_death_of_a_profile_closed_by_its_holder_keeps_the_closure_date__L8(clock, staff):
    profile, user = enrol_active()
    actions.do_close_profile(profile, actor=user, reason=Reason.PATIENT)
    archive_until = Profile.objects.get(pk=profile.pk).archive_until
    clock.shift(timedelta(days=5))
    profile = actions.do_record_death(profile, actor=staff, date_of_death=date(2026, 3, 5))
    assert (profile.closed_at, profile.archive_until, profile.closure_reason) == (START, archive_until, Reason.DECEASED)


def test_death_date_must_be_plausible__L8(clock, staff):
    profile, _user = enrol_active()
    refused(
        profile,
        lambda: actions.do_record_death(profile, actor=staff, date_of_death=date(2026, 3, 3)),
        code="death_date_invalid",
    )
    refused(
        profile,
        lambda: actions.do_record_death(profile, actor=profile.user, date_of_death=date(2026, 3, 1)),
        ActorNotAllowed,
    )


# --- L10: legal representative ----------------------------------------------------------------------------


def test_minor_is_managed_from_the_representatives_account__L10_L4_L5(clock, staff):
    alice, alice_user = enrol_active()
    fanny, code = enrol_open(
        birth_name="MARTIN", first_names="Fanny", sex=Profile.Sex.FEMALE, birth_date=date(2015, 6, 1)
    )

    fanny = actions.do_set_legal_representative(fanny, alice, actor=staff)
    assert fanny.legal_representative == alice
    assert trail(fanny)[-1] == (TrailAction.LEGAL_REPRESENTATIVE, "set", "staff")

    fanny = actions.do_activate_represented_profile(
        fanny, provisional_code=code, birth_date=date(2015, 6, 1), actor=alice_user
    )
    assert (fanny.state, fanny.user) == (State.ACTIVE, None)
    assert trail(fanny)[-1] == (TrailAction.ACTIVATION, "open->active", "patient")

    fanny = actions.do_close_profile(fanny, actor=alice_user, reason=Reason.PATIENT)
    assert fanny.state == State.CLOSED
    fanny = actions.do_reopen_profile(fanny, actor=alice_user)
    assert fanny.state == State.ACTIVE  # activated once: re-opens active although it has no login of its own


def test_enrolment_can_name_the_representative__L10(clock):
    alice, _user = enrol_active()
    fanny, _code = enrol(first_names="Fanny", birth_date=date(2015, 6, 1), legal_representative=alice)
    assert fanny.legal_representative == alice
    assert [a for a, _d, _k in trail(fanny)] == [TrailAction.ENROL, TrailAction.LEGAL_REPRESENTATIVE]


def test_representation_needs_a_minor_and_an_adult__L10(clock, staff):
    alice, _user = enrol_active()
    adult, _ = enrol_open()
    fanny, _ = enrol_open(first_names="Fanny", birth_date=date(2015, 6, 1))
    brother, _ = enrol_open(first_names="Hugo", birth_date=date(2012, 6, 1))
    refused(adult, lambda: actions.do_set_legal_representative(adult, alice, actor=staff), code="not_a_minor")
    refused(
        fanny, lambda: actions.do_set_legal_representative(fanny, brother, actor=staff), code="representative_minor"
    )
    refused(fanny, lambda: actions.do_set_legal_representative(fanny, alice, actor=alice.user), ActorNotAllowed)
    actions.do_close_profile(alice, actor=staff, reason=Reason.ADMIN)
    refused(
        fanny, lambda: actions.do_set_legal_representative(fanny, alice, actor=staff), code="representative_unusable"
    )


def test_an_unrelated_patient_cannot_activate_a_minors_profile__L10(clock):
    _alice, alice_user = enrol_active()
    fanny, code = enrol_open(first_names="Fanny", birth_date=date(2015, 6, 1))
    refused(
        fanny,
        lambda: actions.do_activate_represented_profile(
            fanny, provisional_code=code, birth_date=date(2015, 6, 1), actor=alice_user
        ),
        ActorNotAllowed,
    )


# --- L9: illegal transitions change nothing ---------------------------------------------------------------


def _call(name, staff):
    return {
        "open": lambda p: actions.do_open_profile(p, actor=staff),
        "suspend": lambda p: actions.do_suspend_profile(p, actor=staff, reason="fraude"),
        "lift": lambda p: actions.do_lift_suspension(p, actor=staff),
        "close": lambda p: actions.do_close_profile(p, actor=staff, reason=Reason.ADMIN),
        "reopen": lambda p: actions.do_reopen_profile(p, actor=staff),
        "delete_early": lambda p: actions.do_request_early_deletion(p, actor=staff),
        "reissue": lambda p: actions.do_reissue_provisional_code(p, actor=staff),
        "oppose": lambda p: actions.do_record_opposition(p, actor=staff, identity_checked=True),
    }[name]


def _profile_in(state, staff):
    if state == "pending":
        return enrol()[0]
    if state == "opposed":
        profile, _ = enrol()
        return actions.do_record_opposition(profile, actor=staff, identity_checked=True)
    if state == "open":
        return enrol_open()[0]
    if state == "active":
        return enrol_active()[0]
    if state == "suspended":
        return actions.do_suspend_profile(enrol_active()[0], actor=staff, reason="fraude")
    if state == "closed":
        return actions.do_close_profile(enrol_active()[0], actor=staff, reason=Reason.ADMIN)
    raise AssertionError(state)


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("pending", "suspend"),
        ("pending", "close"),
        ("pending", "reopen"),
        ("opposed", "open"),
        ("opposed", "close"),
        ("opposed", "reissue"),
        ("opposed", "suspend"),
        ("open", "oppose"),
        ("open", "lift"),
        ("open", "delete_early"),
        ("active", "reopen"),
        ("active", "reissue"),
        ("suspended", "suspend"),
        ("suspended", "reopen"),
        ("closed", "close"),
        ("closed", "suspend"),
        ("closed", "open"),
        ("closed", "oppose"),
    ],
)
def test_illegal_transition_fails_clearly_and_changes_nothing__L9(clock, staff, state, action):
    profile = _profile_in(state, staff)
    error = refused(profile, lambda: _call(action, staff)(profile))
    assert error.messages[0]  # a French sentence for the user
    assert Profile.objects.get(pk=profile.pk).state == state


# --- T1, N5: one transaction for the transition, its trail entry and its notice ---------------------------


def test_failure_after_the_trail_write_rolls_back_transition_and_trail__T1_N5(clock, staff, monkeypatch):
    profile, user = enrol_active()

    def broken_queue_notice(*args, **kwargs):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(actions, "queue_notice", broken_queue_notice)
    monkeypatch.setattr(transitions, "queue_notice", broken_queue_notice)
    for call in (
        lambda: actions.do_close_profile(profile, actor=user, reason=Reason.PATIENT),
        lambda: actions.do_suspend_profile(profile, actor=staff, reason="fraude"),
    ):
        refused(profile, call, RuntimeError)
    with pytest.raises(RuntimeError):
        enrol()
    assert Profile.objects.count() == 1


def test_failure_of_the_trail_write_leaves_no_transition__T1(clock, staff, monkeypatch):
    profile, _ = enrol()
    clock.shift(timedelta(days=42))

    def broken_record_entry(**kwargs):
        raise RuntimeError("trail unavailable")

    monkeypatch.setattr(transitions, "record_entry", broken_record_entry)
    refused(profile, lambda: actions.do_open_profile(profile, actor=staff), RuntimeError)
    with pytest.raises(RuntimeError):
        lifecycle_jobs.open_due_profiles()
    assert Profile.objects.get(pk=profile.pk).state == State.PENDING


def test_each_notice_is_linked_to_the_trail_entry_of_its_transition__T1_N5(clock, staff):
    profile, user = enrol_active()
    actions.do_suspend_profile(profile, actor=staff, reason="fraude")
    notice = Notice.objects.filter(profile=profile).last()
    entry = TrailEntry.objects.filter(profile_id=profile.pk).last()
    assert list(notice.trail_entries.all()) == [entry]
    assert notice.created_at == entry.at


# --- L5, T4: purge ----------------------------------------------------------------------------------------


def _body_exists(document) -> bool:
    return storages["documents"].exists(document.storage_key)


def _purge(now=None, capture=None):
    with capture(execute=True):
        return lifecycle_jobs.purge_due_profiles(now)


def test_purge_at_the_end_of_the_archive_period_removes_everything__L5_T4(
    clock, practitioner, django_capture_on_commit_callbacks
):
    denise, denise_user = enrol_active(birth_name="MOREAU", first_names="Denise", email="denise@example.org")
    bernard, _code = enrol_open()
    kept_document = deposit_document(bernard, practitioner)
    documents = [deposit_document(denise, practitioner), deposit_document(denise, denise_user)]
    actions.do_close_profile(denise, actor=denise_user, reason=Reason.PATIENT)
    bernard_before = (trail(bernard), notices(bernard))
    assert all(_body_exists(d) for d in documents)

    clock.move_to(START.replace(year=2036) - timedelta(seconds=1))
    assert _purge(capture=django_capture_on_commit_callbacks) == 0
    clock.move_to(START.replace(year=2036))
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.purge_due_profiles_task() == 1

    assert not Profile.objects.filter(pk=denise.pk).exists()
    assert not User.objects.filter(pk=denise_user.pk).exists()
    assert not Document.objects.filter(profile_id=denise.pk).exists()
    assert not any(_body_exists(d) for d in documents)
    assert not Notice.objects.filter(profile_id=denise.pk).exists()
    assert not TrailEntry.objects.filter(profile_id=denise.pk).exists()
    purge_entry = TrailEntry.objects.get(profile_id=NATIONAL_CHAIN, action=TrailAction.PURGE)
    assert (purge_entry.detail, purge_entry.reason) == (f"profile {denise.pk}", "archive_expired")
    assert verify_chain(NATIONAL_CHAIN) == []
    # Others untouched.
    assert (trail(bernard), notices(bernard)) == bernard_before
    assert list(bernard.documents.all()) == [kept_document] and _body_exists(kept_document)
    assert verify_chain(bernard.pk) == []
    assert _purge(capture=django_capture_on_commit_callbacks) == 0


def test_purge_after_an_early_deletion_request__L5_T4(clock, django_capture_on_commit_callbacks):
    profile, user = enrol_active()
    document = deposit_document(profile, user)
    actions.do_close_profile(profile, actor=user, reason=Reason.PATIENT)
    actions.do_request_early_deletion(profile, actor=user)

    clock.shift(timedelta(days=settings.CARNET_EARLY_DELETION_DAYS) - timedelta(seconds=1))
    assert _purge(capture=django_capture_on_commit_callbacks) == 0
    clock.shift(timedelta(seconds=1))
    assert _purge(capture=django_capture_on_commit_callbacks) == 1

    assert not Profile.objects.filter(pk=profile.pk).exists()
    assert not _body_exists(document)
    assert not TrailEntry.objects.filter(profile_id=profile.pk).exists()
    assert TrailEntry.objects.get(profile_id=NATIONAL_CHAIN, action=TrailAction.PURGE).reason == "early_deletion"


def test_reopened_profile_is_not_purged__L6_T4(clock, django_capture_on_commit_callbacks):
    profile, user = enrol_active()
    actions.do_close_profile(profile, actor=user, reason=Reason.PATIENT)
    actions.do_request_early_deletion(profile, actor=user)
    actions.do_reopen_profile(profile, actor=user)
    clock.shift(timedelta(days=366 * 11))
    assert _purge(capture=django_capture_on_commit_callbacks) == 0
    assert Profile.objects.get(pk=profile.pk).state == State.ACTIVE


def test_purging_a_representative_releases_the_minors_profile__L10_T4(clock, staff, django_capture_on_commit_callbacks):
    alice, alice_user = enrol_active()
    fanny, _ = enrol(first_names="Fanny", birth_date=date(2015, 6, 1), legal_representative=alice)
    actions.do_close_profile(alice, actor=alice_user, reason=Reason.PATIENT)
    actions.do_request_early_deletion(alice, actor=alice_user)
    clock.shift(timedelta(days=settings.CARNET_EARLY_DELETION_DAYS))

    assert _purge(capture=django_capture_on_commit_callbacks) == 1

    fanny.refresh_from_db()
    assert fanny.legal_representative is None
    assert trail(fanny)[-1] == (TrailAction.LEGAL_REPRESENTATIVE, "removed", "system")
    assert verify_chain(fanny.pk) == []


# --- Scheduling -------------------------------------------------------------------------------------------


def test_lifecycle_rules_are_scheduled__L3_L5_L7():
    from config.celery import app

    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for task in (tasks.open_due_profiles_task, tasks.close_expired_suspensions_task, tasks.purge_due_profiles_task):
        assert task.name in scheduled
        assert task.name in app.tasks


def test_operators_can_run_the_opening_rule_at_once__L3(clock):
    from io import StringIO

    from django.core.management import call_command

    enrol()
    clock.shift(timedelta(days=42))
    out = StringIO()
    call_command("open_due_profiles", stdout=out)
    assert out.getvalue().strip() == "1 profile(s) opened."
