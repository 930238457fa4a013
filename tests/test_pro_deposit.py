"""Deposits from the practitioner portal: the form (A10, rule D), hold and release (A8), minor's secret (A9),
replayed forms, and the deposit by identity traits of a practitioner who may not open the record (A5, A10)."""

import re
from html import unescape

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from access_control.api import visible_documents
from access_control.models import TrailEntry
from access_control.trail import NATIONAL_CHAIN
from records.identifiers import make_nir
from records.models import Document
from records.personas import minimal_pdf
from tests.pro_fixtures import find, form_token, open_record, signed_in, token_of

pytestmark = pytest.mark.django_db

PDF = minimal_pdf("Compte rendu", ["Examen normal."])


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def _pro(personas, name) -> Client:
    return signed_in(Client(), getattr(personas, name))


def _text(response) -> str:
    return unescape(response.content.decode())


def _file(body=PDF, name="compte-rendu.pdf"):
    return SimpleUploadedFile(name, body, content_type="application/pdf")


def _fields(token, **overrides):
    data = {
        "form_token": token,
        "document_type": "11488-4",
        "care_date": "2025-01-15",
        "title": "Compte rendu de consultation",
        "file": _file(),
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def _deposit(client, token, **overrides):
    url = reverse("practitioners:deposit", args=[token])
    return client.post(url, _fields(form_token(client.get(url)), **overrides))


def _authored(practitioner, **filters):
    return Document.objects.filter(author_practitioner=practitioner, **filters)


# --- From a found patient ---------------------------------------------------------------------------------


def test_deposit_to_a_found_patient_without_opening_the_record__A10(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.bernard))
    response = _deposit(david, token)
    assert response.status_code == 302 and response["Location"].endswith(f"/patient/{token}/")
    document = _authored(personas.david, title="Compte rendu de consultation").get()
    assert (document.profile_id, document.content_type, document.document_type.code) == (
        personas.bernard.pk,
        "application/pdf",
        "11488-4",
    )
    assert str(document.care_date) == "2025-01-15"
    assert TrailEntry.objects.filter(action="deposit_document", document_id=document.pk, outcome="allowed").exists()
    page = david.get(response["Location"])
    assert "a été déposé dans le dossier de Bernard Louis PETIT" in _text(page)


def test_deposit_form_offers_catalogue_types_but_not_the_patients_own__A10(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.bernard))
    form = david.get(reverse("practitioners:deposit", args=[token])).content.decode()
    assert 'value="11488-4"' in form and 'value="DOCPAT' not in form
    refused = _deposit(david, token, document_type="DOCPAT01")
    assert "Choisissez un type de document de la liste." in _text(refused)
    assert not _authored(personas.david, title="Compte rendu de consultation").exists()


def test_oversized_and_disguised_files_are_refused_with_clear_messages__D(personas, settings):
    settings.CARNET_PRACTITIONER_UPLOAD_MAX_BYTES = 1024 * 1024
    david = _pro(personas, "david")
    token = token_of(find(david, personas.bernard))
    too_big = _deposit(david, token, file=_file(PDF + b" " * (1024 * 1024)))
    assert "Le fichier dépasse la taille maximale autorisée (1 Mo)." in _text(too_big)
    executable = _deposit(david, token, file=_file(b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)) * 8))
    assert "Ce type de fichier n'est pas accepté. Formats acceptés : PDF" in _text(executable)
    html_page = _deposit(david, token, file=_file(b"<!DOCTYPE html><html><script>alert(1)</script></html>"))
    assert "Ce type de fichier n'est pas accepté" in _text(html_page)
    empty = _deposit(david, token, file=_file(b""))
    assert "vide" in _text(empty)
    assert not _authored(personas.david, title="Compte rendu de consultation").exists()
    accepted = _deposit(david, token, file=_file(b"Note en texte brut.\n", name="note.pdf"))
    assert accepted.status_code == 302
    assert _authored(personas.david, title="Compte rendu de consultation").get().content_type == "text/plain"


def test_future_care_date_and_blank_title_are_refused(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.bernard))
    response = _deposit(david, token, care_date="2999-01-01", title="   ")
    text = _text(response)
    assert "La date des soins ne peut pas être dans le futur." in text
    assert "Ce champ est obligatoire." in text or "Indiquez le titre du document." in text
    response = _deposit(david, token, care_date="15/13/2025")
    assert "Saisissez une date valide" in _text(response)


def test_a_replayed_deposit_form_deposits_nothing_more(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.bernard))
    url = reverse("practitioners:deposit", args=[token])
    once = form_token(david.get(url))
    first = david.post(url, _fields(once))
    assert first.status_code == 302
    again = david.post(url, _fields(once), follow=True)
    assert "Ce formulaire a déjà été envoyé : aucun nouveau document n'a été déposé." in _text(again)
    assert again.redirect_chain[0][0] == first["Location"]
    assert _authored(personas.david, title="Compte rendu de consultation").count() == 1


def test_two_simultaneous_posts_of_one_form_deposit_once(personas):
    """The claim is atomic in the cache: a copy posted before the first one saved its session still loses."""
    from practitioners.session import FormToken, consume_form_token

    david = _pro(personas, "david")
    token = token_of(find(david, personas.bernard))
    once = form_token(david.get(reverse("practitioners:deposit", args=[token])))

    class Request:
        def __init__(self):
            self.session = david.session  # two copies of the same stored session, as two workers would load

    assert consume_form_token(Request(), once) == FormToken.FRESH
    assert consume_form_token(Request(), once) == FormToken.REPLAYED


def test_a_forged_or_expired_form_token_deposits_nothing(personas):
    david = _pro(personas, "david")
    token = token_of(find(david, personas.bernard))
    response = david.post(reverse("practitioners:deposit", args=[token]), _fields("forged-token"))
    assert response.status_code == 200
    assert "Ce formulaire a expiré" in _text(response)
    assert form_token(response) != "forged-token"  # a fresh token to send it again
    assert not _authored(personas.david, title="Compte rendu de consultation").exists()


# --- A8 hold, A9 minor's secret ---------------------------------------------------------------------------


def test_hold_then_release_by_the_author__A8(personas):
    david = _pro(personas, "david")
    token = open_record(david, personas.alice)
    _deposit(david, token, hold="on", title="Résultat à annoncer")
    document = _authored(personas.david, title="Résultat à annoncer").get()
    assert document.is_held
    record = david.get(reverse("practitioners:record", args=[token])).content.decode()
    assert "Invisible au patient" in record and "Rendre visible au patient" in record
    response = david.post(reverse("practitioners:release_hold", args=[token, document.pk]), follow=True)
    assert "Le document est désormais visible par le patient." in _text(response)
    document.refresh_from_db()
    assert not document.is_held
    assert TrailEntry.objects.filter(action="hold_release", document_id=document.pk).exists()


def test_only_the_author_or_the_treating_doctor_may_release__A8(personas):
    david = _pro(personas, "david")
    token = open_record(david, personas.alice)
    _deposit(david, token, hold="on", title="Résultat à annoncer")
    document = _authored(personas.david, title="Résultat à annoncer").get()
    emma = _pro(personas, "emma")
    emma_token = open_record(emma, personas.alice)
    assert emma.post(reverse("practitioners:release_hold", args=[emma_token, document.pk])).status_code == 404
    hugo_not_author = _pro(personas, "claire")
    claire_token = open_record(hugo_not_author, personas.alice)
    record = hugo_not_author.get(reverse("practitioners:record", args=[claire_token])).content.decode()
    assert "Rendre visible au patient" in record  # the treating doctor may (A8)
    ines = _pro(personas, "ines")
    ines_token = open_record(ines, personas.alice)
    response = ines.post(reverse("practitioners:release_hold", args=[ines_token, document.pk]), follow=True)
    assert "Seul l'auteur du document ou le médecin traitant" in _text(response)
    document.refresh_from_db()
    assert document.is_held


def test_minors_secret_is_offered_on_a_minors_record_only__A9(personas):
    claire = _pro(personas, "claire")
    alice_token = token_of(find(claire, personas.alice))
    assert "minors_secret" not in claire.get(reverse("practitioners:deposit", args=[alice_token])).content.decode()
    _deposit(claire, alice_token, minors_secret="on", title="Pas un secret")
    assert not _authored(personas.claire, title="Pas un secret").get().hidden_from_representatives
    fanny_token = token_of(find(claire, personas.fanny))
    assert "minors_secret" in claire.get(reverse("practitioners:deposit", args=[fanny_token])).content.decode()
    _deposit(claire, fanny_token, minors_secret="on", title="Consultation sous secret")
    assert _authored(personas.claire, title="Consultation sous secret").get().hidden_from_representatives


# --- A5, A10: deposit by identity traits -----------------------------------------------------------------


def _identity_fields(client, profile, *, nir=None, birth_name=None, **overrides):
    url = reverse("practitioners:deposit_by_identity")
    data = _fields(form_token(client.get(url)), **overrides)
    data.update(
        nir=nir or profile.nir,
        birth_date=profile.birth_date.isoformat(),
        birth_name=profile.birth_name if birth_name is None else birth_name,
    )
    return data


def _deposit_by_identity(client, profile, **kwargs):
    return client.post(reverse("practitioners:deposit_by_identity"), _identity_fields(client, profile, **kwargs))


UNKNOWN = make_nir("1850575114021")


def _activity_rows(client):
    html = client.get(reverse("practitioners:activity")).content.decode()
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    return re.sub(r"<td>\d\d/\d\d/\d{4} \d\d:\d\d</td>", "", body.removeprefix("<tbody>"))  # times aside


def test_blocked_practitioner_deposits_without_learning_that_the_profile_exists__A5_A10(personas):
    alice_hugo = _pro(personas, "hugo")
    to_alice = _deposit_by_identity(alice_hugo, personas.alice, title="Courrier de fin de remplacement")
    unknown_hugo = _pro(personas, "hugo")
    to_nobody = _deposit_by_identity(unknown_hugo, personas.alice, nir=UNKNOWN, title="Courrier de fin de remplacement")
    # The same answer: a redirect to the empty form with the same receipt.
    assert to_alice.status_code == to_nobody.status_code == 302
    assert to_alice["Location"] == to_nobody["Location"] == reverse("practitioners:deposit_by_identity")
    receipt_alice = _text(alice_hugo.get(to_alice["Location"]))
    receipt_nobody = _text(unknown_hugo.get(to_nobody["Location"]))
    assert "Transmission enregistrée." in receipt_alice
    assert re.sub(r'value="[^"]+"', "", receipt_alice) == re.sub(r'value="[^"]+"', "", receipt_nobody)
    assert "MARTIN" not in receipt_alice and "Alice" not in receipt_alice
    # …yet the document is in Alice's record (A10), by its author, and traced there.
    document = Document.objects.get(title="Courrier de fin de remplacement")
    assert (document.profile_id, document.author_practitioner_id) == (personas.alice.pk, personas.hugo.pk)
    assert TrailEntry.objects.filter(profile=personas.alice, action="deposit_document", outcome="allowed").exists()
    assert TrailEntry.objects.filter(
        profile_id=NATIONAL_CHAIN, actor_practitioner=personas.hugo, action="deposit_document", outcome="denied"
    ).exists()
    # Hugo's own activity reads the same in both cases (T3 without an oracle): newest first, the unknown NIR's
    # look-up and deposit, then Alice's.
    rows = _activity_rows(alice_hugo).split("</tr>")[:4]
    assert "Dépôt d&#x27;un document" in rows[0] and "Recherche d&#x27;un profil" in rows[1]
    assert rows[0] == rows[2] and rows[1] == rows[3]
    assert not any("Alice" in row or "MARTIN" in row for row in rows)


def test_a_practitioner_who_may_open_the_record_gets_a_named_confirmation__A10(personas):
    david = _pro(personas, "david")
    response = _deposit_by_identity(david, personas.alice, birth_name="martin")
    assert "/pro/patient/" in response["Location"]
    page = _text(david.get(response["Location"]))
    assert "a été déposé dans le dossier de Alice Marie MARTIN" in page
    assert Document.objects.filter(author_practitioner=personas.david, title="Compte rendu de consultation").exists()


@pytest.mark.parametrize("case", ["opposed", "closed", "wrong_name", "wrong_date"])
def test_no_deposit_where_the_traits_match_no_open_profile__A10(personas, case):
    hugo = _pro(personas, "hugo")
    profile = {"opposed": personas.camille, "closed": personas.denise}.get(case, personas.alice)
    kwargs = {"birth_name": "DURAND"} if case == "wrong_name" else {}
    data = _identity_fields(hugo, profile, **kwargs)
    if case == "wrong_date":
        data["birth_date"] = "1985-03-13"
    response = hugo.post(reverse("practitioners:deposit_by_identity"), data)
    assert response["Location"] == reverse("practitioners:deposit_by_identity")
    assert not Document.objects.filter(title="Compte rendu de consultation").exists()
    assert TrailEntry.objects.filter(
        actor_practitioner=personas.hugo, action="deposit_document", outcome="denied"
    ).exists()


def test_insurer_physician_may_deposit_nowhere__A3(personas):
    julien = _pro(personas, "julien")
    for nir in (None, UNKNOWN):
        response = _deposit_by_identity(julien, personas.alice, nir=nir)
        assert "Vous ne pouvez pas déposer de document dans un dossier." in _text(response)
    assert not TrailEntry.objects.filter(actor_practitioner=personas.julien).exists()  # refused before any look-up


def test_identity_deposit_checks_the_file_and_minors_secret_before_the_look_up__A9(personas):
    hugo = _pro(personas, "hugo")
    bad_file = _deposit_by_identity(hugo, personas.alice, file=_file(b"MZ\x90\x00" + bytes(300)))
    assert "Ce type de fichier n'est pas accepté" in _text(bad_file)
    adult_secret = _deposit_by_identity(hugo, personas.alice, minors_secret="on")
    assert "Le secret du mineur ne s'applique qu'au dossier d'un patient mineur." in _text(adult_secret)
    malformed = _deposit_by_identity(hugo, personas.alice, nir="12345")
    assert "Le NIR compte 15 caractères" in _text(malformed)
    assert not TrailEntry.objects.filter(actor_practitioner=personas.hugo, action="lookup_profile").exists()


def test_identity_deposit_is_throttled_like_the_look_up__A11(personas, settings):
    settings.CARNET_LOOKUP_ATTEMPTS = 2
    hugo = _pro(personas, "hugo")
    for _attempt in range(2):
        _deposit_by_identity(hugo, personas.alice, nir=UNKNOWN)
    response = _deposit_by_identity(hugo, personas.alice)
    assert "Trop de recherches infructueuses" in _text(response)
    assert not Document.objects.filter(title="Compte rendu de consultation").exists()


def test_identity_deposit_form_replay_deposits_once(personas):
    hugo = _pro(personas, "hugo")
    data = _identity_fields(hugo, personas.alice)
    url = reverse("practitioners:deposit_by_identity")
    body = data.pop("file").read()
    for _attempt in range(2):
        hugo.post(url, {**data, "file": _file(body)})
    assert Document.objects.filter(title="Compte rendu de consultation").count() == 1
    assert visible_documents(personas.claire, personas.alice).filter(title="Compte rendu de consultation").count() == 1


def test_hold_by_identity_keeps_the_document_from_the_patient__A8(personas):
    hugo = _pro(personas, "hugo")
    _deposit_by_identity(hugo, personas.alice, hold="on")
    assert Document.objects.get(title="Compte rendu de consultation").is_held
