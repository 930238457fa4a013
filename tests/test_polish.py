"""Polish from the walk (issue 18, item 6), what a client request can check: the remembered text size, the
admin desk's labels, the staff opposition form, the masked NIR and the practitioner's recent patients.

What only a browser shows (tabs on one row, the phone header) is in ``tests/test_browser_polish.py``.
"""

import re
from html import unescape

import pytest
from django.test import Client

from access_control import actions as access
from access_control import api
from access_control.models import TrailEntry
from access_control.rules import Action
from plumbing.text_size import COOKIE
from records.identifiers import mask_nir
from tests.portal_fixtures import _fresh_cache, signed_in, text, url  # noqa: F401
from tests.pro_fixtures import signed_in as pro_signed_in
from tests.pro_fixtures import token_of, without_csrf

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


def test_the_nir_is_masked_but_for_what_its_holder_recognises():
    assert mask_nir("295057511409912") == "2 95 05 •• ••• ••• 12"
    assert mask_nir("1 85 12 2A 123 456 78") == "1 85 12 •• ••• ••• 78"


def test_the_patient_sees_their_own_nir_partly_masked_on_their_profile(client, personas):
    alice = personas.alice
    signed_in(client, alice)
    content = text(client.get(url("my_data")))
    assert "Mon profil" in content and alice.display_name in content
    assert mask_nir(alice.nir) in content
    assert alice.nir not in content and alice.nir[5:13] not in content  # place of birth and order never shown


# --- The practitioner's recent patients (issue 18) --------------------------------------------------------


def test_the_practitioner_home_lists_recent_patients_newest_first_in_pinned_queries__T3(
    personas, django_assert_num_queries
):
    david = personas.david
    assert api.open_record(david, personas.bernard).allowed
    assert api.open_record(david, personas.alice).allowed
    assert api.open_record(david, personas.bernard).allowed
    pro = pro_signed_in(Client(), david)
    pro.get("/pro/")
    with django_assert_num_queries(11):
        content = unescape(pro.get("/pro/").content.decode())
    recent = re.findall(r'action="/pro/recents/(\d+)/ouvrir/"', content)
    assert recent == [str(personas.bernard.pk), str(personas.alice.pk)]
    assert personas.bernard.display_name in content and personas.alice.nir not in content
    # More openings, the same number of queries.
    for _n in range(5):
        assert api.open_record(david, personas.alice).allowed
    with django_assert_num_queries(11):
        pro.get("/pro/")


def test_reopening_a_recent_patient_asks_for_the_attestation_again__A1_T1(personas):
    david = personas.david
    assert api.open_record(david, personas.alice).allowed
    pro = pro_signed_in(Client(), david)
    openings = TrailEntry.objects.filter(actor_practitioner=david, action=Action.OPEN_RECORD).count()
    response = pro.post(f"/pro/recents/{personas.alice.pk}/ouvrir/")
    token = token_of(response)
    page = pro.get(f"/pro/patient/{token}/")
    assert page.status_code == 200 and 'name="attests_care_team"' in page.content.decode()
    assert TrailEntry.objects.filter(actor_practitioner=david, action=Action.OPEN_RECORD).count() == openings
    assert pro.get(f"/pro/recents/{personas.alice.pk}/ouvrir/").status_code == 405


def test_a_recent_patient_who_blocked_the_practitioner_is_gone_and_looks_unknown__A5(personas):
    david, alice = personas.david, personas.alice
    assert api.open_record(david, alice).allowed
    access.do_block_practitioner(alice, david, actor=personas.alice_user)
    pro = pro_signed_in(Client(), david)
    assert f"/pro/recents/{alice.pk}/ouvrir/" not in pro.get("/pro/").content.decode()
    blocked = pro.post(f"/pro/recents/{alice.pk}/ouvrir/")
    never_opened = pro.post(f"/pro/recents/{personas.gerard.pk}/ouvrir/")
    unknown = pro.post("/pro/recents/987654321/ouvrir/")
    assert blocked.status_code == never_opened.status_code == unknown.status_code == 404
    same = without_csrf(blocked.content).replace(str(alice.pk).encode(), b"987654321")
    assert same == without_csrf(unknown.content)  # the same page but for the path it echoes
