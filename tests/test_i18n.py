"""The English translation: one complete catalogue, compiled, with its placeholders intact, served on request.

French is the source and default language; ``locale/en/LC_MESSAGES/django.po`` is the only catalogue (the apps
keep none of their own). ``make messages`` refreshes it; these tests fail when an entry is left untranslated or
fuzzy, when the committed ``django.mo`` lags behind the ``.po``, or when a translation loses or invents a
placeholder or an HTML tag.
"""

import html
import re
from collections import Counter
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.utils import translation

from tests.signin_fixtures import verified_client

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES" / "django.po"
COMPILED = CATALOGUE.with_suffix(".mo")
# Python %-placeholders (named or not), str.format fields and HTML tags: a translation keeps exactly these.
PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdifr]|%[sdifr]|\{\w*\}|</?[a-zA-Z][^>]*>")


@pytest.fixture(scope="module")
def catalogue() -> polib.POFile:
    return polib.pofile(str(CATALOGUE))


def _label(entry: polib.POEntry) -> str:
    where = entry.occurrences[0][0] if entry.occurrences else "?"
    return f"{where}: {entry.msgid[:70]!r}"


def _placeholders(text: str) -> Counter:
    return Counter(PLACEHOLDER.findall(text))


def _translations(entries) -> dict:
    """msgid (and plural) → translation(s), the way a compiled catalogue holds them."""
    result = {}
    for entry in entries:
        if entry.msgid == "" or entry.obsolete:
            continue
        key = (entry.msgctxt, entry.msgid, entry.msgid_plural or None)
        if entry.msgid_plural:
            result[key] = tuple(entry.msgstr_plural[index] for index in sorted(entry.msgstr_plural))
        else:
            result[key] = entry.msgstr
    return result


def test_there_is_one_catalogue_the_projects():
    app_catalogues = sorted(
        str(path.relative_to(settings.BASE_DIR))
        for app in ("records", "practitioners", "access_control", "notifications", "config")
        for path in (Path(settings.BASE_DIR) / app).glob("locale/*/LC_MESSAGES/*.po")
    )
    assert app_catalogues == []
    assert [Path(settings.BASE_DIR) / "locale"] == settings.LOCALE_PATHS
    assert CATALOGUE.is_file() and COMPILED.is_file()


def test_every_entry_is_translated_and_none_is_fuzzy(catalogue):
    entries = [entry for entry in catalogue if not entry.obsolete]
    assert len(entries) > 900  # the whole UI, not a stub
    assert [_label(entry) for entry in catalogue.untranslated_entries()] == []
    assert [_label(entry) for entry in catalogue.fuzzy_entries()] == []
    assert catalogue.metadata["Language"] == "en"
    assert catalogue.metadata["Plural-Forms"] == "nplurals=2; plural=(n != 1);"
    assert not catalogue.metadata_is_fuzzy


def test_the_compiled_catalogue_matches_the_po(catalogue):
    compiled = _translations(polib.mofile(str(COMPILED)))
    source = _translations(catalogue.translated_entries())
    assert sorted(set(source) - set(compiled), key=str) == [], "run compilemessages: entries missing from the .mo"
    assert sorted(set(compiled) - set(source), key=str) == [], "run compilemessages: stale entries in the .mo"
    changed = [key[1][:70] for key in source if source[key] != compiled[key]]
    assert changed == [], "run compilemessages: translations differ between .po and .mo"


def test_translations_keep_the_placeholders_and_tags_of_the_source(catalogue):
    mismatches, checked = [], 0
    for entry in catalogue.translated_entries():
        if entry.msgid_plural:
            pairs = [
                (entry.msgid if index == 0 else entry.msgid_plural, text) for index, text in entry.msgstr_plural.items()
            ]
        else:
            pairs = [(entry.msgid, entry.msgstr)]
        for source, text in pairs:
            checked += bool(_placeholders(source))
            if _placeholders(source) != _placeholders(text):
                mismatches.append(f"{_label(entry)} → {text[:70]!r}")
            if source.strip() != source and text.strip() == text:
                mismatches.append(f"{_label(entry)}: surrounding white space lost")
    assert mismatches == []
    assert checked > 100  # the check saw the placeholders: %(date)s, %(count)d, <code>…


def test_translations_keep_the_projects_vocabulary(catalogue):
    # "masquer" is "hide" in the English UI (the rules and the code keep "mask"); "dossier" is a record.
    wrong = [
        f"{_label(entry)} → {text[:70]!r}"
        for entry in catalogue.translated_entries()
        for text in ([entry.msgstr] if not entry.msgid_plural else entry.msgstr_plural.values())
        if re.search(r"\b(mask|masked|masking|unmask\w*|file record|dossier)\b", text, re.IGNORECASE)
    ]
    assert wrong == []


def test_gettext_returns_english_under_english_and_french_by_default():
    with translation.override("en"):
        assert translation.gettext("Connexion à votre espace santé") == "Sign in to your health space"
        assert translation.gettext("Notice de pré-ouverture") == "Pre-opening notice"
        assert translation.gettext("Bris de glace") == "Break-glass (emergency)"
        assert (
            translation.ngettext("%(count)d document masqué.", "%(count)d documents masqués.", 3) % {"count": 3}
            == "3 documents hidden."
        )
    with translation.override("fr"):
        assert translation.gettext("Connexion à votre espace santé") == "Connexion à votre espace santé"
    assert settings.LANGUAGE_CODE == "fr"


def _text(response) -> str:
    return html.unescape(response.content.decode())


PAGES = [  # path, English text, French text
    ("/", "Carnet, your health space", "Carnet, votre espace santé"),
    ("/", "Health professional space", "Espace professionnel de santé"),
    ("/connexion/", "Sign in to your health space", "Connexion à votre espace santé"),
    ("/connexion/", "Activate my health space", "Activer mon espace santé"),
    ("/pro/connexion/", "Sign-in for health professionals", "Connexion des professionnels de santé"),
    ("/pro/connexion/", "Are you a patient?", "Vous êtes patient ?"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "english", "french"), PAGES)
def test_pages_are_french_by_default(client, path, english, french):
    response = client.get(path)
    assert response.status_code == 200
    page = _text(response)
    assert '<html lang="fr">' in page
    assert french in page and english not in page


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "english", "french"), PAGES)
def test_pages_are_english_for_a_browser_asking_for_english(client, path, english, french):
    response = client.get(path, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert response.status_code == 200
    page = _text(response)
    assert '<html lang="en">' in page
    assert english in page and french not in page


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "english", "french"), PAGES)
def test_the_language_cookie_wins_over_the_browser(client, path, english, french):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = _text(client.get(path, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9"))
    assert '<html lang="en">' in page and english in page and french not in page

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    page = _text(client.get(path, HTTP_ACCEPT_LANGUAGE="en"))
    assert '<html lang="fr">' in page and french in page and english not in page


@pytest.mark.django_db
def test_the_language_switch_sets_the_cookie_and_the_next_page_is_english(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/connexion/"})
    assert response.status_code == 302 and response["Location"] == "/connexion/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    page = _text(client.get("/connexion/"))
    assert "Sign in to your health space" in page and "Connexion à votre espace santé" not in page


@pytest.mark.django_db
def test_a_form_error_is_english_under_english(client):
    response = client.post(
        "/connexion/", {"email": "nobody@courriel.example", "password": "not-the-password"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    page = _text(response)
    assert "Incorrect e-mail address or password." in page
    assert "Adresse électronique ou mot de passe incorrect." not in page


@pytest.mark.django_db
def test_a_signed_in_patients_pages_show_reference_labels_in_english(client, personas):
    """Document types, professions and categories are data with both labels: English pages show label_en."""
    verified_client(client, personas.alice.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    documents = _text(client.get("/documents/"))
    assert "My documents" in documents and "Hide the selected documents" in documents
    assert "Consultation note" in documents and "CR ou fiche de consultation ou de visite" not in documents
    assert "Doctor" in documents and "Médecin" not in documents
    trail = _text(client.get("/trace/"))
    assert "Access history of my record" in trail and "Document added: " in trail and "Document added : " not in trail

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"
    documents = _text(client.get("/documents/"))
    assert "CR ou fiche de consultation ou de visite" in documents and "Médecin" in documents
    assert "Dépôt d'un document : " in _text(client.get("/trace/"))


def test_language_switcher_names_each_language_in_itself(client):
    """Whatever the page's language, the buttons read "Français" and "English" (a reader must find their own)."""
    for language in ("fr", "en"):
        client.cookies["django_language"] = language
        html = client.get("/").content.decode()
        assert 'lang="fr"' in html and ">Français</button>" in html
        assert 'lang="en"' in html and ">English</button>" in html
        assert "Anglais" not in html
