"""Polish from the walk (issue 18, item 6), what a client request can check: the remembered text size, the
admin desk's labels, the staff opposition form, the masked NIR and the practitioner's recent patients.

What only a browser shows (tabs on one row, the phone header) is in ``tests/test_browser_polish.py``.
"""

import pytest
from django.test import Client

from plumbing.text_size import COOKIE

pytestmark = pytest.mark.django_db


def test_the_text_size_is_remembered_in_a_cookie_without_javascript(client):
    response = client.post("/taille-du-texte/", {"size": "larger", "next": "/connexion/"})
    assert response.status_code == 302 and response["Location"] == "/connexion/"
    assert response.cookies[COOKIE].value == "larger" and response.cookies[COOKIE]["max-age"] == 365 * 24 * 3600
    page = client.get("/connexion/").content.decode()
    assert '<html lang="fr" class="text-larger">' in page
    assert 'value="larger" class="size-larger" aria-pressed="true"' in page


def test_the_text_size_refuses_unknown_sizes_and_foreign_pages(client):
    response = client.post("/taille-du-texte/", {"size": "huge", "next": "https://evil.example/"})
    assert response["Location"] == "/" and COOKIE not in response.cookies
    assert client.get("/taille-du-texte/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/taille-du-texte/", {"size": "large"}).status_code == 403  # a form of ours only
