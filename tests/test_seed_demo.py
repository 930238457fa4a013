"""`seed_demo` builds the cast once, prints working logins, and a second run changes nothing."""

import io

import pytest
from django.core.management import call_command

from access_control.models import TrailEntry
from practitioners.models import Practitioner
from records.models import Document, Profile, User

pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return (
        Profile.objects.count(),
        Document.objects.count(),
        Practitioner.objects.count(),
        User.objects.count(),
    )


def test_seed_demo_is_idempotent_and_prints_the_logins():
    first = io.StringIO()
    call_command("seed_demo", stdout=first)
    counts = _counts()
    trail = TrailEntry.objects.exclude(action="provisional_code_reissued").count()
    second = io.StringIO()
    call_command("seed_demo", stdout=second)
    assert _counts() == counts
    assert TrailEntry.objects.exclude(action="provisional_code_reissued").count() == trail
    text = second.getvalue()
    assert "alice.martin@courriel.example" in text
    assert "RPPS 10002000221" in text  # Dr David Lambert
    assert "karim.benali" in text
    assert "demo-0001" in text
    karim = User.objects.get(username="karim.benali")
    assert set(karim.groups.values_list("name", flat=True)) == {"Agents", "Superviseurs"}


def test_supervisors_may_view_api_tokens_and_agents_may_not():
    from django.contrib.auth.models import Group

    def codenames(name: str) -> set[str]:
        return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))

    assert "view_apitoken" in codenames("Superviseurs")
    assert "view_apitoken" not in codenames("Agents")
