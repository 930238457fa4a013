"""The staff's charts (issue 18, item 5): notices per day by channel, letters per batch, emergency accesses per
week awaiting review (A7), and the curiosity report's chart (A13); counts only, in pinned queries."""

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from access_control import api
from access_control.actions import do_review_access
from access_control.models import AccessMode, Review
from access_control.rules import Action
from access_control.trail import record_entry
from notifications.models import Notice, PrintBatch
from tests.admin_fixtures import (  # noqa: F401  (fixtures)
    fixture_agent,
    fixture_agent_client,
    fixture_supervisor,
    fixture_supervisor_client,
    make_staff_member,
)
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db

CHARTS = "/admin/graphiques/"
REPORT = "/admin/access_control/review/curiosite/"


def _data(page: str, chart_id: str) -> dict:
    found = re.search(rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>', page, re.S)
    assert found, chart_id
    return json.loads(found.group(1))


def test_staff_charts_count_notices_batches_and_emergencies_awaiting_review__A7(
    personas, supervisor, supervisor_client, django_assert_num_queries
):
    assert api.open_record(personas.ines, personas.alice, mode=AccessMode.CENTRE_15).allowed
    assert api.open_record(personas.ines, personas.bernard, mode=AccessMode.CENTRE_15).allowed
    reviewed = Review.objects.filter(kind=Review.Kind.EMERGENCY, profile=personas.bernard).get()
    do_review_access(reviewed, actor=supervisor)
    PrintBatch.objects.create(day=timezone.localdate() - timedelta(days=1), letter_count=7, page_count=9)
    PrintBatch.objects.create(day=timezone.localdate(), letter_count=2, page_count=2)
    notices = Notice.objects.filter(created_at__gte=timezone.now() - timedelta(days=1))
    emailed, posted = notices.filter(channel="email").count(), notices.filter(channel="letter").count()
    supervisor_client.get(CHARTS)
    with django_assert_num_queries(11):
        response = supervisor_client.get(CHARTS)
    assert response.status_code == 200
    page = response.content.decode()
    per_day = _data(page, "notices-per-day")
    assert len(per_day["labels"]) == 14
    assert [set_["label"] for set_ in per_day["datasets"]] == ["Courriel", "Courrier postal", "Aucun"]
    assert per_day["datasets"][0]["data"][-1] == emailed and per_day["datasets"][1]["data"][-1] == posted
    batches = _data(page, "letters-per-batch")
    assert batches["datasets"][0]["data"][-2:] == [7, 2] and batches["datasets"][1]["data"][-2:] == [9, 2]
    weeks = _data(page, "emergency-reviews-per-week")
    waiting, done = weeks["datasets"]
    assert waiting["label"] == "En attente de revue" and waiting["data"][-1] == 1 and done["data"][-1] == 1
    assert "Voir les chiffres en tableau" in page and "<script>" not in page
    for profile in (personas.alice, personas.bernard):
        assert profile.nir not in page and profile.birth_name not in page  # counts only
    # More of everything, the same number of queries.
    PrintBatch.objects.create(day=timezone.localdate() - timedelta(days=2), letter_count=1, page_count=1)
    assert api.open_record(personas.ines, personas.alice, mode=AccessMode.CENTRE_15).allowed
    with django_assert_num_queries(11):
        supervisor_client.get(CHARTS)


def test_staff_charts_show_only_what_the_role_may_view(personas):
    no_group = make_staff_member("paul.martin", None, first_name="Paul", last_name="Martin")
    assert verified_client(Client(), no_group).get(CHARTS).status_code == 403
    patient = verified_client(Client(), personas.alice_user).get(CHARTS)
    assert patient.status_code == 302


def test_the_curiosity_report_draws_its_rows__A13(personas, agent_client):
    with_entries = [(personas.ines, 21), (personas.emma, 30)]
    for practitioner, times in with_entries:
        for _n in range(times):
            record_entry(profile=personas.bernard, action=Action.OPEN_RECORD, actor=practitioner)
    page = agent_client.get(REPORT).content.decode()
    drawn = _data(page, "curiosity")
    counts = dict(zip(drawn["labels"], drawn["datasets"][0]["data"], strict=True))
    assert counts[personas.emma.display_name] == 30 and counts[personas.ines.display_name] == 21
    assert [one["label"] for one in drawn["datasets"]] == ["Consultations", "Dépôts", "Profils sensibles consultés"]
    assert personas.bernard.nir not in page
