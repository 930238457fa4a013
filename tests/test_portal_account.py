"""« Mes données » (L5, L6): export, closure, early deletion, re-opening with the step-up and one-time forms;
the e-mail change (N2); the profiles of a legal representative (L10); expired sessions."""

import io
import json
import re
import zipfile

import pytest
from django.core import mail
from django.test import Client

from access_control.api import find_profile
from access_control.models import TrailEntry
from accounts.auth import EPOCH_SESSION_KEY
from records.models import Document, Profile
from tests.portal_fixtures import _fresh_cache, form_token, signed_in, stepped_up, text, url  # noqa: F401

pytestmark = pytest.mark.django_db


def test_export_needs_the_step_up_and_streams_a_complete_zip(client, personas):
    alice = personas.alice
    signed_in(client, alice)
    response = client.get(url("export"))
    assert response.status_code == 302 and response.url.startswith(url("step_up"))
    stepped_up(client)
    response = client.get(url("export"))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    names = archive.namelist()
    index = json.loads(archive.read("index.json"))
    documents = Document.objects.filter(profile=alice, deleted_at__isnull=True)
    assert len(index["documents"]) == documents.count() == 8
    for entry in index["documents"]:
        assert entry["file"] in names
    synthesis = next(e for e in index["documents"] if e["title"] == "Synthèse psychiatrique")
    assert synthesis["masked"] is True
    assert archive.read(synthesis["file"]).startswith(b"%PDF")
    trail = archive.read("trail.csv").decode()
    assert "mask_document" in trail and "block_practitioner" in trail
    assert TrailEntry.objects.filter(profile=alice, action="export_record").count() == 1


def test_a_representatives_export_leaves_out_the_minors_secret__A9(client, personas):
    signed_in(client, personas.alice)
    client.post(url("switch_profile"), {"profile": personas.fanny.pk})
    stepped_up(client)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get(url("export")).streaming_content)))
    titles = [entry["title"] for entry in json.loads(archive.read("index.json"))["documents"]]
    assert titles == ["Historique des vaccinations"]
    secret = Document.objects.get(profile=personas.fanny, title="Consultation confidentielle")
    assert f",{secret.pk}," not in archive.read("trail.csv").decode()


def test_close_states_consequences_needs_step_up_and_acts_once__L5(client, personas):
    alice = personas.alice
    signed_in(client, alice)
    assert client.get(url("close")).url.startswith(url("step_up"))
    stepped_up(client)
    page = client.get(url("close"))
    assert "archivés pendant 10 ans" in text(page)
    token = form_token(page)
    response = client.post(url("close"), {"form_token": token})  # not confirmed
    assert "Ce champ est obligatoire" in text(response)
    alice.refresh_from_db()
    assert alice.state == Profile.State.ACTIVE
    token = form_token(response)
    response = client.post(url("close"), {"form_token": token, "confirm": "on"}, follow=True)
    assert "Votre espace santé est clôturé" in text(response)
    alice.refresh_from_db()
    assert alice.state == Profile.State.CLOSED
    assert find_profile(personas.david, nir=alice.nir, birth_date=alice.birth_date) is None
    response = client.post(url("close"), {"form_token": token, "confirm": "on"}, follow=True)  # replay
    assert "Ce formulaire a déjà été envoyé" in text(response)
    assert TrailEntry.objects.filter(profile=alice, action="closure").count() == 1

    # Closed: the documents are archived, not shown; re-open restores them (L6).
    assert "Aucun document" in text(client.get(url("documents")))
    page = client.get(url("reopen"))
    client.post(url("reopen"), {"form_token": form_token(page), "confirm": "on"})
    alice.refresh_from_db()
    assert alice.state == Profile.State.ACTIVE
    assert "Bilan sanguin annuel" in text(client.get(url("documents")))


def test_early_deletion_of_a_closed_profile__L5(client, personas):
    denise = personas.denise  # closed by herself
    signed_in(client, denise)
    page = text(client.get(url("my_data")))
    assert "Rouvrir mon espace santé" in page and "Demander la suppression anticipée" in page
    stepped_up(client)
    page = client.get(url("early_deletion"))
    assert "supprimés définitivement" in text(page)
    client.post(url("early_deletion"), {"form_token": form_token(page), "confirm": "on"})
    denise.refresh_from_db()
    assert denise.deletion_requested_at is not None
    assert "Suppression définitive prévue le" in text(client.get(url("my_data")))
    response = client.post(url("early_deletion"), {"form_token": form_token(page), "confirm": "on"}, follow=True)
    assert "déjà été envoyé" in text(response)


def test_email_change_is_verified_by_a_code_after_the_step_up__N2(client, personas):
    alice = personas.alice
    signed_in(client, alice)
    assert client.get(url("email_change")).url.startswith(url("step_up"))
    stepped_up(client)
    mail.outbox.clear()
    client.post(url("email_change"), {"email": "alice.nouvelle@courriel.example"})
    assert mail.outbox[-1].to == ["alice.nouvelle@courriel.example"]
    alice.refresh_from_db()
    assert alice.email == "alice.martin@courriel.example"  # not before the code
    code = re.search(r"\b(\d{6})\b", mail.outbox[-1].body).group(1)
    wrong = "000000" if code != "000000" else "111111"
    assert "Code incorrect" in text(client.post(url("email_change"), {"code": wrong}))
    client.post(url("email_change"), {"code": code})
    alice.refresh_from_db()
    assert alice.email == "alice.nouvelle@courriel.example" and alice.email_verified
    assert alice.user.email == "alice.nouvelle@courriel.example"


def test_a_representative_switches_profiles_and_cannot_pick_another__L10(client, personas):
    signed_in(client, personas.alice)
    page = text(client.get(url("dashboard")))
    assert "Fanny MARTIN" in page  # in the switcher
    client.post(url("switch_profile"), {"profile": personas.fanny.pk})
    page = text(client.get(url("dashboard")))
    assert "Bonjour Fanny" in page and "représentant légal de Fanny MARTIN" in page
    response = client.post(url("switch_profile"), {"profile": personas.bernard.pk}, follow=True)
    assert "ne fait pas partie de ceux que vous gérez" in text(response)
    assert "Bonjour Fanny" in text(client.get(url("dashboard")))
    client.post(url("switch_profile"), {"profile": personas.alice.pk})
    assert "Bonjour Alice" in text(client.get(url("dashboard")))


def test_a_removed_representation_falls_back_to_ones_own_profile__L10(client, personas):
    signed_in(client, personas.alice)
    client.post(url("switch_profile"), {"profile": personas.fanny.pk})
    Profile.objects.filter(pk=personas.fanny.pk).update(legal_representative=None)
    page = text(client.get(url("documents")))
    assert "Bilan sanguin annuel" in page and "Historique des vaccinations" not in page


def test_expired_or_ended_sessions_go_back_to_sign_in(client, personas):
    signed_in(client, personas.alice)
    other = signed_in(Client(), personas.alice)
    assert other.get(url("documents")).status_code == 200
    client.post(url("logout_everywhere"))
    response = other.get(url("documents"))
    assert response.status_code == 302 and response.url.startswith(url("login"))
    # A session whose epoch stamp is missing (expired, tampered) is no session.
    third = signed_in(Client(), personas.alice)
    session = third.session
    del session[EPOCH_SESSION_KEY]
    session.save()
    assert third.get(url("trail")).status_code == 302
    # A form posted from an expired session acts on nothing.
    response = third.post(url("block"), {"practitioner": personas.david.pk})
    assert response.status_code == 302 and response.url.startswith(url("login"))


def test_an_idle_session_expires(client, personas, settings):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    signed_in(client, personas.alice)
    assert client.get(url("documents")).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE + 60)):
        response = client.get(url("documents"))
    assert response.status_code == 302 and response.url.startswith(url("login"))
