"""Which channel a notice takes (N2, L1)."""

from datetime import date

import pytest

from notifications.models import Notice
from notifications.outbox import choose_channel
from records import actions
from records.identifiers import make_nir
from records.models import Profile

pytestmark = pytest.mark.django_db

ADDRESS = {"address_street": "7 rue Nationale", "postal_code": "59000", "city": "LILLE"}


def _enrol(first13: str, **fields) -> Profile:
    profile, _code = actions.do_enrol_profile(
        nir=make_nir(first13),
        birth_name="PETIT",
        first_names="Jeanne",
        birth_date=date(1960, 5, 4),
        sex="F",
        actor=None,
        **fields,
    )
    return profile


def test_pre_opening_notice_goes_by_email_when_the_roster_has_one__L1():
    profile = _enrol("2600575114021", email="jeanne@example.org", **ADDRESS)
    notice = Notice.objects.get(profile=profile, kind=Notice.Kind.PRE_OPENING)
    assert notice.channel == Notice.Channel.EMAIL


def test_pre_opening_notice_goes_by_post_without_an_email__L1():
    profile = _enrol("2600575114022", **ADDRESS)
    notice = Notice.objects.get(profile=profile, kind=Notice.Kind.PRE_OPENING)
    assert notice.channel == Notice.Channel.LETTER


def test_unverified_email_does_not_carry_consultation_notices__N2():
    profile = _enrol("2600575114023", email="jeanne@example.org", **ADDRESS)
    profile.state = Profile.State.OPEN
    assert choose_channel(profile, Notice.Kind.CONSULTATION) == Notice.Channel.LETTER


def test_activated_verified_email_preference_gets_email__N2():
    profile = _enrol("2600575114024", email="jeanne@example.org", **ADDRESS)
    profile.state = Profile.State.ACTIVE
    profile.email_verified = True
    profile.preferred_channel = Profile.Channel.EMAIL
    assert choose_channel(profile, Notice.Kind.CONSULTATION) == Notice.Channel.EMAIL
    profile.preferred_channel = Profile.Channel.POST
    assert choose_channel(profile, Notice.Kind.CONSULTATION) == Notice.Channel.LETTER


def test_no_usable_address_makes_the_notice_undeliverable__N2():
    profile = _enrol("2600575114025")
    notice = Notice.objects.get(profile=profile, kind=Notice.Kind.PRE_OPENING)
    assert (notice.channel, notice.status) == (Notice.Channel.NONE, Notice.Status.UNDELIVERABLE)
