"""Reviews and letters in the admin (issue 7 items 6, 7): the curiosity report over the trail (A13), marking a
print batch handed to the mail house (N4, T1), and the API tokens and batch files shown read-only."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access_control import api
from access_control.models import ApiToken, Review, TrailEntry
from access_control.queries import curiosity_report
from access_control.rules import Action
from access_control.tokens import do_create_token
from access_control.trail import NATIONAL_CHAIN, record_entry
from notifications.actions import BatchActionError, do_mark_batch_handed
from notifications.models import BatchFile, PrintBatch
from tests.admin_fixtures import (  # noqa: F401  (fixtures)
    fixture_agent,
    fixture_agent_client,
    fixture_supervisor,
    fixture_supervisor_client,
    make_staff_member,
)
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db

REPORT = "/admin/access_control/review/curiosite/"
BATCHES = "/admin/notifications/printbatch/"


def _trace(practitioner, profile, action: str, times: int) -> None:
    with transaction.atomic():
        for _n in range(times):
            record_entry(profile=profile, action=action, actor=practitioner)


def _period():
    now = timezone.now()
    return now - timedelta(days=30), now + timedelta(minutes=1)


def _row(rows, practitioner):
    return next((row for row in rows if row["actor_practitioner_id"] == practitioner.pk), None)


# --- Curiosity report (issue 7 item 6, A13) -------------------------------------------------------------


def test_curiosity_report_flags_many_openings_without_deposits__A13(personas):
    since, until = _period()
    assert _row(curiosity_report(since, until, min_openings=0, min_ratio=0), personas.ines) is None  # no activity yet
    _trace(personas.ines, personas.bernard, Action.OPEN_RECORD, 25)
    _trace(personas.emma, personas.bernard, Action.OPEN_RECORD, 25)
    _trace(personas.emma, personas.bernard, Action.DEPOSIT, 5)  # 5 openings a deposit: not unusual
    with CaptureQueriesContext(connection) as queries:
        rows = list(curiosity_report(since, until, min_openings=20, min_ratio=10))
    assert len(queries) == 1  # one aggregate query, whatever the number of practitioners
    ines = _row(rows, personas.ines)
    assert ines is not None and ines["unusual"]
    assert ines["openings"] >= 25 and ines["deposits"] == 0 and ines["ratio"] == ines["openings"]
    assert ines["actor_practitioner__rpps"] == personas.ines.rpps
    emma = _row(rows, personas.emma)
    assert emma is None or emma["high_profile_openings"] > 0 and not emma["unusual"]
    # The thresholds are parameters: a lower ratio lists Emma too.
    assert _row(list(curiosity_report(since, until, min_openings=20, min_ratio=1)), personas.emma)["unusual"]
    # Outside the period, nothing.
    assert (
        _row(list(curiosity_report(until, until + timedelta(days=1), min_openings=1, min_ratio=0)), personas.ines)
        is None
    )


def test_curiosity_report_lists_high_profile_openings__A13(personas):
    decision = api.open_record(personas.david, personas.gerard)
    assert decision.allowed
    assert Review.objects.filter(trail_entry_id=decision.trail_entry.pk, kind=Review.Kind.HIGH_PROFILE).exists()
    since, until = _period()
    david = _row(list(curiosity_report(since, until, min_openings=1000, min_ratio=1000)), personas.david)
    assert david is not None and david["high_profile_openings"] >= 1 and not david["unusual"]


def test_curiosity_page_shows_practitioners_not_patients_in_constant_queries__A13(personas, agent_client):
    _trace(personas.ines, personas.bernard, Action.OPEN_RECORD, 21)
    api.open_record(personas.david, personas.gerard)
    assert agent_client.get("/admin/access_control/review/").content.decode().count(REPORT) == 1  # linked
    with CaptureQueriesContext(connection) as first:
        response = agent_client.get(REPORT)
    assert response.status_code == 200
    page = response.content.decode()
    assert personas.ines.rpps in page and personas.ines.last_name in page and personas.david.rpps in page
    assert personas.ines.profession.label_fr in page
    for profile in (personas.bernard, personas.gerard):
        assert profile.nir not in page and profile.birth_name.upper() not in page.upper()  # no patient identity
    # More flagged practitioners, same number of queries.
    _trace(personas.emma, personas.bernard, Action.OPEN_RECORD, 30)
    _trace(personas.julien, personas.alice, Action.OPEN_RECORD, 30)
    with CaptureQueriesContext(connection) as second:
        page = agent_client.get(REPORT).content.decode()
    assert personas.emma.rpps in page and personas.julien.rpps in page
    assert len(second) == len(first)
    # Thresholds and period as GET parameters.
    strict = agent_client.get(REPORT, {"min_openings": 1000, "min_ratio": 1000}).content.decode()
    assert personas.ines.rpps not in strict and personas.david.rpps in strict  # high-profile opening stays
    today = timezone.localdate()
    earlier = agent_client.get(REPORT, {"since": today - timedelta(days=60), "until": today - timedelta(days=31)})
    assert personas.ines.rpps not in earlier.content.decode()
    bad = agent_client.get(REPORT, {"since": today, "until": today - timedelta(days=1)})
    assert bad.status_code == 200 and personas.ines.rpps not in bad.content.decode()


def test_curiosity_page_refused_to_non_staff_unverified_or_unpermitted(personas, agent):
    _trace(personas.ines, personas.bernard, Action.OPEN_RECORD, 21)
    patient = verified_client(Client(), personas.alice_user).get(REPORT)
    assert patient.status_code == 302 and personas.ines.rpps not in patient.content.decode()
    unverified = Client()
    unverified.force_login(agent)  # no second factor
    assert unverified.get(REPORT).status_code == 302
    no_group = make_staff_member("paul.martin", None, first_name="Paul", last_name="Martin")
    assert verified_client(Client(), no_group).get(REPORT).status_code == 403


# --- Print batch handed to the mail house (issue 7 item 7, N4, T1) --------------------------------------


def _batch(status=PrintBatch.Status.CLOSED, days_ago: int = 1) -> PrintBatch:
    day = timezone.localdate() - timedelta(days=days_ago)
    closed_at = timezone.now() if status == PrintBatch.Status.CLOSED else None
    return PrintBatch.objects.create(day=day, status=status, closed_at=closed_at, letter_count=3, page_count=5)


def test_closed_batch_marked_handed_once_with_trail_entry__N4_T1(agent):
    batch = _batch()
    done = do_mark_batch_handed(batch, actor=agent)
    assert done.handed_by == agent and done.handed_at is not None
    entry = TrailEntry.objects.get(action="batch_handed", detail=f"batch {batch.pk}")
    assert entry.profile_id == NATIONAL_CHAIN and entry.actor_user_id == agent.pk and entry.actor_kind == "staff"
    with pytest.raises(BatchActionError):
        do_mark_batch_handed(batch, actor=agent)
    assert TrailEntry.objects.filter(action="batch_handed").count() == 1
    batch.refresh_from_db()
    assert batch.handed_at == done.handed_at


def test_open_batch_cannot_be_marked_handed__N4():
    batch = _batch(PrintBatch.Status.OPEN, days_ago=0)
    staff = make_staff_member("karim.benali", "Agents")
    with pytest.raises(BatchActionError):
        do_mark_batch_handed(batch, actor=staff)
    batch.refresh_from_db()
    assert batch.handed_at is None and not TrailEntry.objects.filter(action="batch_handed").exists()


def test_admin_action_marks_batches_handed_and_shows_status__N4(agent, agent_client):
    closed, still_open = _batch(), _batch(PrintBatch.Status.OPEN, days_ago=0)
    response = agent_client.post(
        BATCHES, {"action": "mark_handed", "_selected_action": [closed.pk, still_open.pk]}, follow=True
    )
    assert response.status_code == 200
    closed.refresh_from_db()
    still_open.refresh_from_db()
    assert closed.handed_by == agent and still_open.handed_at is None
    page = response.content.decode()
    assert "1 lot(s) marqué(s) remis au routeur." in page and "Seul un lot clôturé" in page
    assert "par Karim Benali" in agent_client.get(BATCHES).content.decode()
    agent_client.post(BATCHES, {"action": "mark_handed", "_selected_action": [closed.pk]})
    assert TrailEntry.objects.filter(action="batch_handed").count() == 1  # once


# --- Read-only API tokens and batch files ----------------------------------------------------------------


def test_api_token_admin_lists_tokens_read_only_and_revokes_traced__T1(personas, supervisor, supervisor_client):
    secret = do_create_token(personas.david.user, name="Logiciel du cabinet", scope="read", actor=personas.david.user)
    token = secret.token
    view_tokens = Permission.objects.get(codename="view_apitoken")
    supervisors = supervisor.groups.get()
    supervisors.permissions.remove(view_tokens)
    assert supervisor_client.get("/admin/access_control/apitoken/").status_code == 403  # no permission
    supervisors.permissions.add(view_tokens)  # what records 0004 grants the supervisors
    listing = supervisor_client.get("/admin/access_control/apitoken/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Logiciel du cabinet" in page and token.prefix in page
    assert token.digest not in page and secret.secret not in page
    detail = supervisor_client.get(f"/admin/access_control/apitoken/{token.pk}/change/").content.decode()
    assert token.digest not in detail and 'name="name"' not in detail  # read-only, no hash
    assert supervisor_client.get("/admin/access_control/apitoken/add/").status_code == 403
    assert supervisor_client.get(f"/admin/access_control/apitoken/{token.pk}/delete/").status_code == 403
    supervisor_client.post("/admin/access_control/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    entry = TrailEntry.objects.get(action="api_token_revoked", detail=f"token {token.pk}")
    assert entry.actor_user_id == supervisor.pk
    assert ApiToken.objects.filter(pk=token.pk, revoked_at=token.revoked_at).exists()


def test_batch_file_admin_read_only_without_content(agent_client):
    batch = _batch()
    part = BatchFile.objects.create(
        batch=batch,
        part=BatchFile.Part.MANIFEST,
        storage_key="batches/test-manifest",
        wrapped_key=b"secret-wrapped-key",
        master_key_id="k1",
        size=123,
        sha256="ab" * 32,
    )
    listing = agent_client.get("/admin/notifications/batchfile/")
    assert listing.status_code == 200 and "Manifeste CSV" in listing.content.decode()
    detail = agent_client.get(f"/admin/notifications/batchfile/{part.pk}/change/")
    assert detail.status_code == 200
    page = detail.content.decode()
    assert "batches/test-manifest" not in page and "ab" * 32 not in page and 'name="size"' not in page
    assert agent_client.get("/admin/notifications/batchfile/add/").status_code == 403
    assert agent_client.get(f"/admin/notifications/batchfile/{part.pk}/delete/").status_code == 403


def _csv_rows(response) -> list[list[str]]:
    import csv
    import io

    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")  # for French spreadsheets
    return list(csv.reader(io.StringIO(body[1:]), delimiter=";"))


def test_curiosity_report_csv_neutralises_formulas_in_constant_queries__A13(
    personas, agent_client, django_assert_num_queries
):
    ines = personas.ines
    # The name comes from the practitioner's directory entry: a formula typed there must stay text.
    type(ines).objects.filter(pk=ines.pk).update(title="", first_name='=HYPERLINK("http://evil.example","x")')
    _trace(ines, personas.bernard, Action.OPEN_RECORD, 21)
    page = agent_client.get(REPORT)
    assert f"{REPORT[:-1]}.csv" in page.content.decode()  # linked from the page
    agent_client.get(REPORT[:-1] + ".csv")  # warm the session and permission caches
    # Session, user, second-factor device, the user's and their groups' permissions, the one aggregate query of
    # the report (however many practitioners are flagged), then the session's refreshed stamp (savepoint, update,
    # release).
    with django_assert_num_queries(9):
        response = agent_client.get(REPORT[:-1] + ".csv", {"min_openings": 20, "min_ratio": 10})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="carnet-curiosite-')
    rows = _csv_rows(response)
    assert rows[0][:3] == ["Professionnel", "Profession", "RPPS"]
    flagged = next(row for row in rows if row[2] == ines.rpps)
    assert flagged[0].startswith("'=HYPERLINK(")  # neutralised: a spreadsheet shows it as text
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert flagged[3] == "21" and flagged[4] == "0" and flagged[-1] == "oui"
    assert personas.bernard.nir not in response.content.decode()  # no patient identity
    _trace(personas.emma, personas.bernard, Action.OPEN_RECORD, 30)
    with django_assert_num_queries(9):
        more = _csv_rows(agent_client.get(REPORT[:-1] + ".csv", {"min_openings": 20, "min_ratio": 10}))
    assert len(more) == len(rows) + 1
    # A bad period goes back to the page, which shows its errors; no permission, no report.
    today = timezone.localdate()
    bad = agent_client.get(REPORT[:-1] + ".csv", {"since": today, "until": today - timedelta(days=1)})
    assert bad.status_code == 302 and bad.url.startswith(REPORT)
    no_group = make_staff_member("paul.martin", None, first_name="Paul", last_name="Martin")
    assert verified_client(Client(), no_group).get(REPORT[:-1] + ".csv").status_code == 403
