"""The admin site: who gets in (staff, verified second factor), what each group may do, and the dashboard."""

from datetime import date

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import RequestFactory
from django.utils import timezone

from access_control.models import Review, TrailEntry
from accounts.admin_site import DASHBOARD_CACHE_KEY
from notifications.models import BatchFile, Letter, Notice, PrintBatch
from records.models import Document, Profile, User
from tests.admin_fixtures import (  # noqa: F401  (fixtures)
    AGENTS,
    SUPERVISORS,
    fixture_agent,
    fixture_agent_client,
    fixture_supervisor,
    fixture_supervisor_client,
    make_staff_member,
)
from tests.lifecycle_fixtures import enrol, enrol_active
from tests.signin_fixtures import verified_client

pytestmark = pytest.mark.django_db

INDEX = "/admin/"
LOOKUP = "/admin/records/profile/"


def _login_url(response) -> bool:
    return response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_migration_creates_agents_and_supervisors_with_their_permissions(agent, supervisor):
    assert agent.has_perm("records.view_profile") and supervisor.has_perm("records.view_profile")
    for perm in ("records.handle_counter_requests", "records.enrol_profiles", "access_control.change_review"):
        assert agent.has_perm(perm) and supervisor.has_perm(perm)
    for perm in (
        "records.decide_lifecycle",
        "practitioners.import_directory",
        "practitioners.suspend_practitioner",
        "practitioners.change_practitioner",
        "access_control.change_accessrule",
    ):
        assert not agent.has_perm(perm), perm
        assert supervisor.has_perm(perm), perm


def test_no_group_may_write_the_trail_documents_notices_or_letters__T2():
    make_staff_member("x", AGENTS)
    forbidden = {
        f"{model._meta.app_label}.{action}_{model._meta.model_name}"
        for model in (TrailEntry, Document, Notice, Letter, BatchFile, Profile)
        for action in ("add", "change", "delete")
    }
    for group in Group.objects.filter(name__in=[AGENTS, SUPERVISORS]):
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert granted & forbidden == set(), group.name


def test_trail_documents_notices_and_letters_are_read_only_in_the_admin__T2(supervisor):
    request = RequestFactory().get("/admin/")
    request.user = User.objects.create(username="root", kind=User.Kind.STAFF, is_staff=True, is_superuser=True)
    for model in (TrailEntry, Document, Notice, Letter, Profile):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request), model
        assert not model_admin.has_delete_permission(request), model
    assert {"title", "original_name", "wrapped_key"} <= set(admin.site._registry[Document].exclude)


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    for url in (INDEX, LOOKUP, "/admin/records/profile/enrol/", "/admin/practitioners/practitioner/import/"):
        assert _login_url(client.get(url)), url


def test_staff_without_a_verified_second_factor_get_nothing(client, supervisor):
    client.force_login(supervisor)  # password only: the OTP step was skipped
    assert _login_url(client.get(INDEX))
    assert _login_url(client.get(LOOKUP))
    assert _login_url(client.post("/admin/records/profile/enrol/"))


def test_verified_accounts_that_are_not_staff_get_nothing(client):
    _profile, patient = enrol_active()
    verified_client(client, patient)
    assert _login_url(client.get(INDEX))
    patient.is_staff = True  # flagged by mistake: still not a staff account
    patient.save(update_fields=["is_staff"])
    verified_client(client, patient)
    assert _login_url(client.get(INDEX))
    assert _login_url(client.get(LOOKUP))


def test_a_session_signed_out_everywhere_ends_in_the_admin_too(client, agent):
    from accounts.auth import end_all_sessions

    verified_client(client, agent)
    assert client.get(INDEX).status_code == 200
    end_all_sessions(agent.pk)
    assert _login_url(client.get(INDEX))


def test_staff_in_no_group_get_in_but_see_no_profile(client):
    verified_client(client, make_staff_member("nobody", None))
    assert client.get(INDEX).status_code == 200
    assert client.get(LOOKUP).status_code == 403


def test_agents_enrol_but_do_not_import_the_directory(agent_client):
    assert agent_client.get("/admin/records/profile/enrol/").status_code == 200
    assert agent_client.get("/admin/practitioners/practitioner/import/").status_code == 403
    assert agent_client.get("/admin/practitioners/practitioner/").status_code == 200


def test_dashboard_counts_profiles_notices_letters_and_reviews(supervisor_client, django_assert_num_queries):
    enrol()
    enrol(birth_date=date(1990, 1, 1))
    enrol_active()
    cache.delete(DASHBOARD_CACHE_KEY)
    # session, user, device; the four dashboard counts; permissions (2); recent actions; session save
    with django_assert_num_queries(13):
        response = supervisor_client.get(INDEX)
    assert response.status_code == 200
    figures = response.context["dashboard"]
    profiles = dict(figures["profiles"])
    assert profiles[Profile.State.PENDING.label] == 2
    assert profiles[Profile.State.ACTIVE.label] == 1
    assert figures["profiles_total"] == 3
    assert figures["activations_this_week"] == 1
    notices = dict(figures["notices"])
    assert notices[Notice.Status.PENDING.label] == Notice.objects.filter(status="pending").count()
    assert (figures["letters_today"], figures["pages_today"], figures["open_reviews"]) == (0, 0, 0)
    assert "Avis par statut" in response.content.decode()
    with django_assert_num_queries(9):  # cached for a minute
        supervisor_client.get(INDEX)


def test_dashboard_reads_today_s_batch_and_open_reviews(supervisor_client):
    PrintBatch.objects.create(day=timezone.localdate(), letter_count=12, page_count=15)
    assert Review.objects.count() == 0
    cache.delete(DASHBOARD_CACHE_KEY)
    figures = supervisor_client.get(INDEX).context["dashboard"]
    assert (figures["letters_today"], figures["pages_today"]) == (12, 15)


def test_supervisors_register_connected_apps_but_never_see_their_tokens(supervisor_client, agent):
    """Issue 17: an app is registered by a supervisor, with its listing; codes and tokens stay out of reach."""
    page = supervisor_client.get("/admin/oauth2_provider/application/add/")
    assert page.status_code == 200 and 'name="carnet_listing-0-publisher"' in page.content.decode()
    assert supervisor_client.get("/admin/accounts/appconnection/").status_code == 200
    for secrets in ("accesstoken", "refreshtoken", "grant", "idtoken"):
        assert supervisor_client.get(f"/admin/oauth2_provider/{secrets}/").status_code == 403
    from django.test import Client

    assert verified_client(Client(), agent).get("/admin/oauth2_provider/application/add/").status_code == 403
