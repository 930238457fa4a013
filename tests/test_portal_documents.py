"""The patient's documents (A4, A8-A10, A12): list, filters and pages, viewing, uploads, deletion, masking."""

import io

import pytest
from django.urls import reverse

from access_control import actions as access
from access_control.api import visible_documents
from access_control.models import CategoryMask, DocumentCategory, TrailEntry
from records.models import Document
from records.personas import minimal_pdf
from tests.portal_fixtures import (  # noqa: F401
    _fresh_cache,
    form_token,
    signed_in,
    text,
    upload_file,
    url,
)

pytestmark = pytest.mark.django_db


def _doc(profile, title):
    return Document.objects.get(profile=profile, title=title)


def test_dashboard_shows_latest_documents_accesses_and_notices(client, personas):
    signed_in(client, personas.alice)
    page = client.get(url("dashboard"))
    assert page.status_code == 200
    assert "Bonjour Alice" in text(page)
    assert "Radio du genou (photo)" in text(page)  # latest documents
    assert "Derniers accès à votre dossier" in text(page)
    assert "no-store" in page["Cache-Control"]


def test_dashboard_tells_of_a_hold_only_after_the_reminder__A8(client, personas):
    from django.utils import timezone

    held = access.do_deposit_document(
        personas.alice, actor=personas.david, fileobj=io.BytesIO(minimal_pdf("IRM", ["x"])),
        document_type="11488-4", title="Résultat d'IRM à annoncer", hold=True,
    )  # fmt: skip
    signed_in(client, personas.alice)
    page = client.get(url("dashboard"))
    assert "attend votre rendez-vous" not in text(page)
    assert "Résultat d'IRM" not in text(page)
    Document.objects.filter(pk=held.pk).update(hold_reminder_sent_at=timezone.now())
    page = client.get(url("dashboard"))
    assert "Un document attend votre rendez-vous" in text(page)
    assert "Résultat d'IRM" not in text(page)  # the document itself stays hidden (A8)
    assert client.get(url("document", held.pk)).status_code == 404


def test_document_list_pins_its_queries(client, personas, django_assert_num_queries):
    signed_in(client, personas.alice)
    client.get(url("documents"))  # warm the session and the caches
    with django_assert_num_queries(14):
        page = client.get(url("documents"))
    assert page.status_code == 200
    for title in ("Bilan sanguin annuel", "Synthèse psychiatrique", "Consultation de remplacement"):
        assert title in text(page)
    assert "Masqué" in text(page)
    # The same number of queries with more documents and filters.
    for number in range(25):
        access.do_deposit_document(
            personas.alice, actor=personas.claire, fileobj=io.BytesIO(b"note %d" % number),
            document_type="11488-4", title=f"Note {number}",
        )  # fmt: skip
    with django_assert_num_queries(14):
        page = client.get(url("documents") + "?type=11488-4&page=2")
    assert "Page 2 sur 2" in text(page)


def test_document_list_filters_by_type_class_author_and_date(client, personas):
    signed_in(client, personas.alice)
    page = client.get(url("documents") + "?type=87273-9")
    assert "Vaccination antigrippale" in text(page) and "Bilan sanguin annuel" not in text(page)
    page = client.get(url("documents") + "?author=patient")
    assert "Radio du genou (photo)" in text(page) and "Bilan sanguin annuel" not in text(page)
    page = client.get(url("documents") + f"?author={personas.emma.pk}")
    assert "Vaccination antigrippale" in text(page) and "Radio du genou" not in text(page)
    page = client.get(url("documents") + "?document_class=90")
    assert "Radio du genou (photo)" in text(page) and "Bilan sanguin" not in text(page)
    page = client.get(url("documents") + "?date_from=2999-01-01")
    assert "Aucun document ne correspond." in text(page)


def test_minor_secret_documents_never_show_to_the_representative__A9(client, personas):
    signed_in(client, personas.alice)
    client.post(url("switch_profile"), {"profile": personas.fanny.pk})
    page = client.get(url("documents"))
    assert "Historique des vaccinations" in text(page)
    assert "Consultation confidentielle" not in text(page)
    secret = _doc(personas.fanny, "Consultation confidentielle")
    assert client.get(url("document", secret.pk)).status_code == 404
    assert client.get(url("document_download", secret.pk)).status_code == 404
    trail = client.get(url("trail"))
    assert "Consultation confidentielle" not in text(trail)


def test_document_detail_says_who_still_sees_a_masked_document__A4(client, personas):
    signed_in(client, personas.alice)
    synthesis = _doc(personas.alice, "Synthèse psychiatrique")
    page = client.get(url("document", synthesis.pk))
    assert page.status_code == 200
    assert "par son auteur, Dr Claire Dubois" in text(page)
    assert "par votre médecin traitant, Dr Claire Dubois" in text(page)
    assert "Démasquer ce document" in text(page)


def test_inline_view_and_download_are_decrypted_and_traced__T1(client, personas):
    signed_in(client, personas.alice)
    radio = _doc(personas.alice, "Radio du genou (photo)")
    response = client.get(url("document_inline", radio.pk))
    body = b"".join(response.streaming_content)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert body.startswith(b"\x89PNG") and len(body) == radio.size
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    response = client.get(url("document_download", radio.pk))
    assert response["Content-Disposition"].startswith("attachment")
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    entries = TrailEntry.objects.filter(profile=personas.alice, document_id=radio.pk, action="open_document")
    assert sorted(entries.values_list("detail", flat=True)) == ["download", "view"]


def test_text_documents_are_shown_in_the_page(client, personas):
    note = access.do_deposit_document(
        personas.alice, actor=personas.alice.user, fileobj=io.BytesIO(b"Tension 12/8, poids 61 kg\n"),
        document_type="DOCPAT02", title="Mes mesures",
    )  # fmt: skip
    signed_in(client, personas.alice)
    page = client.get(url("document", note.pk))
    assert "Tension 12/8, poids 61 kg" in text(page)


def test_forged_document_ids_of_another_patient_are_404_and_traced__T1(client, personas):
    signed_in(client, personas.alice)
    other = _doc(personas.bernard, "Bilan lipidique")
    for name in ("document", "document_inline", "document_download"):
        response = client.get(url(name, other.pk))
        assert response.status_code == 404
        assert "Bilan lipidique" not in response.content.decode()
    denied = TrailEntry.objects.filter(profile=personas.alice, outcome="denied", document_id=other.pk)
    assert denied.count() == 3
    assert not TrailEntry.objects.filter(profile=personas.bernard, actor_user_id=personas.alice.user_id).exists()
    # Masking a forged id changes nothing on the other record.
    client.post(url("mask_documents"), {"documents": [other.pk], "operation": "mask"})
    other.refresh_from_db()
    assert other.masked_at is None
    response = client.post(url("delete_document", other.pk), {"form_token": "forged"})
    assert response.status_code == 302
    other.refresh_from_db()
    assert other.deleted_at is None


def test_mask_and_unmask_many_documents__A4(client, personas):
    signed_in(client, personas.alice)
    bilan = _doc(personas.alice, "Bilan sanguin annuel")
    cardio = _doc(personas.alice, "Consultation de cardiologie")
    response = client.post(
        url("mask_documents"), {"documents": [bilan.pk, cardio.pk], "operation": "mask"}, follow=True
    )
    assert "2 documents masqués." in text(response)
    assert set(visible_documents(personas.emma, personas.alice)).isdisjoint({bilan, cardio})
    assert bilan not in visible_documents(personas.david, personas.alice)
    assert bilan in visible_documents(personas.claire, personas.alice)  # author and treating doctor
    # Replay: idempotent, no second trail entry.
    client.post(url("mask_documents"), {"documents": [bilan.pk, cardio.pk], "operation": "mask"})
    assert TrailEntry.objects.filter(profile=personas.alice, action="mask_document", document_id=bilan.pk).count() == 1
    client.post(url("mask_documents"), {"documents": [bilan.pk], "operation": "unmask"})
    assert bilan in visible_documents(personas.david, personas.alice)
    response = client.post(url("mask_documents"), {"operation": "mask"}, follow=True)
    assert "Cochez au moins un document." in text(response)


def test_category_mask_covers_present_and_future_documents__A12(client, personas):
    signed_in(client, personas.alice)
    category = DocumentCategory.objects.get(code="sante-mentale")
    client.post(url("mask_category"), {"category": "sante-mentale", "operation": "mask"})
    assert CategoryMask.objects.filter(profile=personas.alice, category=category).exists()
    future = access.do_deposit_document(
        personas.alice, actor=personas.david, fileobj=io.BytesIO(minimal_pdf("Psy", ["x"])),
        document_type="68599-0", title="Nouvelle synthèse psychiatrique",
    )  # fmt: skip
    assert future not in visible_documents(personas.emma, personas.alice)
    page = client.get(url("documents"))
    assert "Masqué (catégorie)" in text(page)
    client.post(url("mask_category"), {"category": "sante-mentale", "operation": "unmask"})
    assert not CategoryMask.objects.filter(profile=personas.alice).exists()
    assert client.post(url("mask_category"), {"category": "nope", "operation": "mask"}).status_code == 404


def test_upload_own_document_and_delete_it__A10(client, personas):
    signed_in(client, personas.alice)
    page = client.get(url("upload"))
    assert "Taille maximale : 5 Mo" in text(page)
    token = form_token(page)
    data = {"document_type": "DOCPAT03", "title": "Compte rendu de ma clinique", "form_token": token}
    response = client.post(url("upload"), {**data, "file": upload_file(minimal_pdf("CR", ["ok"]), "cr.pdf")})
    assert response.status_code == 302
    document = Document.objects.get(profile=personas.alice, title="Compte rendu de ma clinique")
    assert document.author_kind == "patient" and document.content_type == "application/pdf"
    # Replayed form: not deposited twice.
    response = client.post(url("upload"), {**data, "file": upload_file(minimal_pdf("CR", ["ok"]), "cr.pdf")})
    assert Document.objects.filter(profile=personas.alice, title="Compte rendu de ma clinique").count() == 1
    # Delete it; a replay of the deletion does nothing more.
    page = client.get(url("document", document.pk))
    delete_token = form_token(page)
    client.post(url("delete_document", document.pk), {"form_token": delete_token})
    document.refresh_from_db()
    assert document.deleted_at is not None
    response = client.post(url("delete_document", document.pk), {"form_token": delete_token})
    assert response.status_code == 302
    assert TrailEntry.objects.filter(action="delete_document", document_id=document.pk).count() == 1


def test_upload_refuses_wrong_types_and_sizes_with_clear_messages__A10(client, personas, settings):
    settings.CARNET_PATIENT_UPLOAD_MAX_BYTES = 1024
    signed_in(client, personas.alice)
    before = Document.objects.count()

    def send(content, name, **extra):
        token = form_token(client.get(url("upload")))
        data = {"document_type": "DOCPAT03", "title": "Essai", "form_token": token, **extra}
        return client.post(url("upload"), {**data, "file": upload_file(content, name)})

    response = send(b"MZ\x90\x00\x03" + b"\x00" * 200, "ordonnance.pdf")  # an executable named .pdf
    assert "Ce type de fichier n'est pas accepté" in text(response)
    response = send(b"<html><script>alert(1)</script></html>", "note.txt")
    assert "n'est pas accepté" in text(response)
    response = send(minimal_pdf("Gros", ["x" * 60] * 60) + b"%" * 2048, "gros.pdf")
    assert "dépasse la taille maximale autorisée (0,0 Mo)" in text(response) or "taille maximale" in text(response)
    response = send(b"", "vide.pdf")
    assert "vide" in text(response)
    response = send(minimal_pdf("ok", ["x"]), "ok.pdf", document_type="11502-2")  # not a DOCPAT type
    assert "Sélectionnez un choix valide" in text(response)
    assert Document.objects.count() == before
    # The re-rendered form carries a fresh token: the corrected file goes through.
    page = send(b"MZ\x90\x00\x03" + b"\x00" * 200, "x.pdf")
    token = form_token(page)
    response = client.post(
        url("upload"),
        {"document_type": "DOCPAT03", "title": "Corrigé", "form_token": token, "file": upload_file(b"note\n", "n.txt")},
    )
    assert response.status_code == 302
    assert Document.objects.count() == before + 1


def test_practitioner_documents_cannot_be_deleted_by_the_patient__A10(client, personas):
    signed_in(client, personas.alice)
    bilan = _doc(personas.alice, "Bilan sanguin annuel")
    page = client.get(url("document", bilan.pk))
    assert "Supprimer définitivement" not in text(page)
    token = form_token(client.get(url("upload")))  # any live token: the refusal comes from the action
    response = client.post(url("delete_document", bilan.pk), {"form_token": token}, follow=True)
    assert "ne peut pas être supprimé" in text(response)
    bilan.refresh_from_db()
    assert bilan.deleted_at is None


def test_portal_pages_need_a_signed_in_patient(client, personas):
    bilan = _doc(personas.alice, "Bilan sanguin annuel")
    for path in (url("documents"), url("document", bilan.pk), url("upload"), url("privacy"), url("trail"),
                 url("notices"), url("my_data"), url("export")):  # fmt: skip
        response = client.get(path)
        assert response.status_code == 302 and response.url.startswith(reverse("patients:login"))


def test_dashboard_pins_its_queries(client, personas, django_assert_num_queries):
    from access_control.api import open_record

    signed_in(client, personas.alice)
    client.get(url("dashboard"))
    with django_assert_num_queries(13):
        client.get(url("dashboard"))
    for practitioner in (personas.david, personas.emma, personas.claire, personas.francois):
        open_record(practitioner, personas.alice)
    with django_assert_num_queries(13):
        page = client.get(url("dashboard"))
    assert "Emma Girard" in text(page) and "Pharmacien" in text(page)
