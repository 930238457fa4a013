"""`seed_demo` builds the cast once, prints working logins, and a second run changes nothing."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

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


def test_seed_demo_spreads_the_records_over_years_deterministically():
    """Issue 18: dates, types and authors a real record would have, the same at each run."""
    call_command("seed_demo", stdout=io.StringIO())
    alice = Profile.objects.get(birth_name="MARTIN", first_names="Alice Marie")
    documents = Document.objects.filter(profile=alice)
    today = timezone.localdate()
    years = set(documents.values_list("care_date__year", flat=True))
    assert years >= {today.year - offset for offset in range(1, 6)}  # five past years, and this one's
    assert documents.filter(care_date__gt=today).count() == 0
    assert documents.values("care_date").distinct().count() >= 20  # not all the same day
    assert {"11502-2", "87273-9", "60593-1", "57833-6", "11488-4"} <= set(
        documents.values_list("document_type__code", flat=True)
    )
    authors = set(documents.values_list("author_practitioner__last_name", flat=True))
    assert {"Dubois", "Girard", "Lambert"} <= authors
    flu = documents.get(title=f"Vaccination antigrippale {today.year - 2}")
    assert flu.care_date.month in (10, 11, 12) and flu.care_date.weekday() < 5
    assert flu.author_practitioner.last_name == "Girard"
    fanny = Profile.objects.get(first_names="Fanny")
    assert Document.objects.filter(profile=fanny, care_date__year__lt=fanny.birth_date.year).count() == 0
    dates = sorted(documents.values_list("title", "care_date"))
    Document.objects.filter(profile=alice, title__contains=str(today.year - 1)).update(title="x")  # fresh run
    call_command("seed_demo", stdout=io.StringIO())
    again = sorted(Document.objects.filter(profile=alice).exclude(title="x").values_list("title", "care_date"))
    assert again == dates  # the same titles and dates: seeded
