"""The practitioner directory in the admin: the extract upload, suspension and reinstatement with confirmation,
the markers (A3, A7), each traced in the staff member's name (T1); agents read only."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from access_control.models import TrailEntry
from access_control.trail import NATIONAL_CHAIN
from practitioners.models import Practitioner, Profession
from tests.admin_fixtures import (  # noqa: F401  (fixtures)
    fixture_agent,
    fixture_agent_client,
    fixture_supervisor,
    fixture_supervisor_client,
)
from tests.test_directory import extract, row, rpps

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/practitioners/practitioner/"
IMPORT = "/admin/practitioners/practitioner/import/"


@pytest.fixture
def claire(db):
    return Practitioner.objects.create(
        rpps=rpps(1), title="Dr", last_name="Dubois", first_name="Claire", profession=Profession.objects.get(code="10")
    )


def change_url(practitioner) -> str:
    return f"/admin/practitioners/practitioner/{practitioner.pk}/change/"


def status_url(practitioner, slug) -> str:
    return f"/admin/practitioners/practitioner/{practitioner.pk}/status/{slug}/"


def directory_entries() -> list[tuple[str, str, str]]:
    return list(
        TrailEntry.objects.filter(profile_id=NATIONAL_CHAIN, action__startswith="practitioner_")
        .order_by("seq")
        .values_list("action", "detail", "reason")
    )


def test_the_changelist_lists_practitioners_in_few_queries(supervisor_client, django_assert_num_queries):
    profession = Profession.objects.get(code="10")
    Practitioner.objects.bulk_create(
        Practitioner(rpps=rpps(n), last_name=f"Nom{n}", first_name="Prénom", profession=profession) for n in range(30)
    )
    # session, user, device, permissions (2), the page of rows with their profession, the filters' professions,
    # the paginator's count, session save (3)
    with django_assert_num_queries(11):
        response = supervisor_client.get(CHANGELIST)
    assert response.status_code == 200
    assert 'href="/admin/practitioners/practitioner/import/"' in response.content.decode()


def test_a_supervisor_uploads_the_extract_and_sees_the_report(supervisor_client):
    data = extract(row(rpps(1)), row(rpps(2)), row("123")).getvalue()
    response = supervisor_client.post(IMPORT, {"extract": SimpleUploadedFile("extract.csv", data, "text/csv")})
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.created, report.rejected) == (2, 1)
    assert "11 chiffres" in response.content.decode()
    assert Practitioner.objects.count() == 2


def test_agents_read_the_directory_but_neither_import_suspend_nor_mark(agent_client, claire):
    assert agent_client.get(CHANGELIST).status_code == 200
    assert agent_client.get(change_url(claire)).status_code == 200
    assert agent_client.post(IMPORT, {"extract": SimpleUploadedFile("e.csv", b"x")}).status_code == 403
    assert agent_client.post(status_url(claire, "suspend"), {"reason": "x", "confirmed": "1"}).status_code == 403
    assert agent_client.post(change_url(claire), {"is_samu_regulator": "on"}).status_code == 403
    claire.refresh_from_db()
    assert (claire.status, claire.is_samu_regulator) == ("active", False)
    assert directory_entries() == []


def test_a_supervisor_suspends_and_reinstates_after_confirming(supervisor_client, supervisor, claire):
    response = supervisor_client.post(status_url(claire, "suspend"), {"reason": "Interdiction d'exercice"})
    assert response.context["confirming"]
    assert Practitioner.objects.get(pk=claire.pk).status == "active"
    response = supervisor_client.post(
        status_url(claire, "suspend"), {"reason": "Interdiction d'exercice", "confirmed": "1"}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["Professionnel suspendu."]
    assert Practitioner.objects.get(pk=claire.pk).status == "suspended"
    response = supervisor_client.post(
        status_url(claire, "suspend"), {"reason": "Encore", "confirmed": "1"}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["Ce professionnel est déjà suspendu."]
    supervisor_client.post(status_url(claire, "reinstate"), {"reason": "Fin de l'interdiction", "confirmed": "1"})
    assert Practitioner.objects.get(pk=claire.pk).status == "active"
    assert directory_entries() == [
        ("practitioner_suspended", f"rpps {claire.rpps}", "Interdiction d'exercice"),
        ("practitioner_reinstated", f"rpps {claire.rpps}", "Fin de l'interdiction"),
    ]
    entry = TrailEntry.objects.filter(action="practitioner_suspended").get()
    assert (entry.profile_id, entry.actor_kind, entry.actor_user_id) == (NATIONAL_CHAIN, "staff", supervisor.pk)


def test_a_supervisor_sets_the_markers_through_the_traced_action__A3_A7(supervisor_client, claire):
    response = supervisor_client.post(change_url(claire), {"is_samu_regulator": "on"})
    assert response.status_code == 302
    claire.refresh_from_db()
    assert (claire.is_samu_regulator, claire.is_occupational_physician, claire.is_insurer_physician) == (
        True,
        False,
        False,
    )
    assert directory_entries() == [
        (
            "practitioner_markers",
            f"rpps {claire.rpps}: is_samu_regulator=1 is_occupational_physician=0 is_insurer_physician=0",
            "",
        )
    ]
    response = supervisor_client.post(change_url(claire), {"is_samu_regulator": "on", "is_insurer_physician": "on"})
    assert response.status_code == 200
    assert "aucun accès (A3)" in response.content.decode()
    assert Practitioner.objects.get(pk=claire.pk).is_insurer_physician is False


def test_the_directory_fields_are_read_only_and_nothing_is_added_or_deleted(supervisor_client, claire):
    supervisor_client.post(change_url(claire), {"last_name": "Autre", "is_occupational_physician": "on"})
    claire.refresh_from_db()
    assert (claire.last_name, claire.is_occupational_physician) == ("Dubois", True)
    assert supervisor_client.get("/admin/practitioners/practitioner/add/").status_code == 403
    assert supervisor_client.get(f"/admin/practitioners/practitioner/{claire.pk}/delete/").status_code == 403
    assert supervisor_client.post("/admin/practitioners/profession/10/change/", {"is_doctor": ""}).status_code == 403


def test_a_too_large_upload_points_to_the_command(supervisor_client, settings, monkeypatch):
    monkeypatch.setattr("practitioners.admin.IMPORT_UPLOAD_MAX_BYTES", 10)
    response = supervisor_client.post(
        IMPORT, {"extract": SimpleUploadedFile("e.csv", io.BytesIO(b"x" * 20).getvalue())}
    )
    assert "import_practitioners" in response.content.decode()
    assert Practitioner.objects.count() == 0
