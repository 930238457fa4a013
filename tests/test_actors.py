"""Who counts as staff, who speaks for a profile (records.actors), and actions that own their commit.

Staff is one rule for every app (docs/adr/0006-who-counts-as-staff.md): an active account of the staff kind.
Each kind of account is tried against a staff-only action of access_control (a cell of the matrix, A2) and one
of records (a suspension, L7): both must answer alike.
"""

import pytest
from django.db import transaction

from access_control.actions import IllegalAction, do_set_access_rule
from access_control.models import AccessRule
from practitioners.actions import do_suspend_practitioner
from records import actions
from records.actors import is_staff, speaks_for
from records.lifecycle import ActorNotAllowed
from records.models import DocumentType, Profile, User
from tests.lifecycle_fixtures import enrol, enrol_active, enrol_open, make_staff, next_nir
from tests.trail_fixtures import make_practitioner

ACCOUNTS = {
    # kind, is_active, is_superuser, is_staff flag of the admin site -> counts as staff
    "staff": (User.Kind.STAFF, True, False, True),
    "staff superuser": (User.Kind.STAFF, True, True, True),
    "deactivated staff": (User.Kind.STAFF, False, False, True),
    "patient superuser": (User.Kind.PATIENT, True, True, True),
    "practitioner superuser": (User.Kind.PRACTITIONER, True, True, True),
    "patient": (User.Kind.PATIENT, True, False, False),
}
STAFF = {"staff", "staff superuser"}


def _account(name: str) -> User:
    kind, active, superuser, staff_flag = ACCOUNTS[name]
    return User.objects.create(
        username=name.replace(" ", "."), kind=kind, is_active=active, is_superuser=superuser, is_staff=staff_flag
    )


@pytest.mark.django_db
@pytest.mark.parametrize("name", ACCOUNTS)
def test_one_rule_decides_who_is_staff_in_access_control_and_records__A2_L7(name):
    actor = _account(name)
    profile, _code = enrol_open()
    profession = make_practitioner().profession
    document_type = DocumentType.objects.order_by("pk").first()
    may_read = AccessRule.objects.filter(profession=profession, document_type=document_type, may_read=True).exists()
    assert is_staff(actor) is (name in STAFF)
    if name in STAFF:
        do_set_access_rule(profession, document_type, not may_read, actor=actor)
        actions.do_suspend_profile(profile, actor=actor, reason="fraude")
        assert AccessRule.objects.get(profession=profession, document_type=document_type).may_read is not may_read
        assert Profile.objects.get(pk=profile.pk).state == Profile.State.SUSPENDED
        return
    with pytest.raises(IllegalAction):
        do_set_access_rule(profession, document_type, not may_read, actor=actor)
    with pytest.raises(ActorNotAllowed):
        actions.do_suspend_profile(profile, actor=actor, reason="fraude")
    assert (
        AccessRule.objects.filter(profession=profession, document_type=document_type, may_read=True).exists()
        is may_read
    )
    assert Profile.objects.get(pk=profile.pk).state == Profile.State.OPEN


@pytest.mark.django_db
def test_a_practitioner_or_the_system_is_never_staff():
    assert not is_staff(make_practitioner())
    assert not is_staff(None)


@pytest.mark.django_db
def test_the_holder_and_the_representative_speak_for_a_profile__L10():
    parent, parent_user = enrol_active()
    minor, _code = enrol(birth_name="MARTIN", first_names="Fanny", birth_date=parent.birth_date.replace(year=2015))
    actions.do_set_legal_representative(minor, parent, actor=make_staff())
    minor = Profile.objects.select_related("legal_representative").get(pk=minor.pk)
    _other, other_user = enrol_active(email="autre@example.org")
    assert speaks_for(parent, parent_user) and speaks_for(minor, parent_user)
    assert not speaks_for(parent, other_user) and not speaks_for(minor, other_user)
    assert not speaks_for(parent, make_staff()) and not speaks_for(parent, None)
    User.objects.filter(pk=parent_user.pk).update(is_active=False)
    parent_user.refresh_from_db()
    assert not speaks_for(parent, parent_user)


# --- Actions own their commit (docs/conventions.md) -----------------------------------------------------------
# Django's test case relaxes durability for its own wrapping transaction: these tests commit for real.


@pytest.mark.django_db(transaction=True)
def test_a_top_level_action_refuses_to_run_inside_another_transaction():
    staff = make_staff()
    profile, _code = enrol_open()
    practitioner = make_practitioner()
    document_type = DocumentType.objects.order_by("pk").first()
    for call in (
        lambda: actions.do_suspend_profile(profile, actor=staff, reason="fraude"),
        lambda: actions.do_enrol_profile(
            nir=next_nir(),
            birth_name="X",
            first_names="Y",
            birth_date=profile.birth_date,
            sex="M",
            actor=staff,
        ),  # fmt: skip
        lambda: do_set_access_rule(practitioner.profession, document_type, True, actor=staff),
        lambda: do_suspend_practitioner(practitioner, actor=staff, reason="Décision de l'Ordre"),
    ):
        with pytest.raises(RuntimeError, match="durable"), transaction.atomic():
            call()
    assert Profile.objects.get(pk=profile.pk).state == Profile.State.OPEN
    assert Profile.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_composing_caller_passes_durable_false_and_owns_the_commit():
    staff = make_staff()
    profile, _code = enrol_open()
    with pytest.raises(RuntimeError, match="rolled back"), transaction.atomic():
        actions.do_close_profile(profile, actor=staff, reason=Profile.ClosureReason.ADMIN, durable=False)
        assert Profile.objects.get(pk=profile.pk).state == Profile.State.CLOSED
        raise RuntimeError("rolled back")
    assert Profile.objects.get(pk=profile.pk).state == Profile.State.OPEN  # the action's writes went with it
