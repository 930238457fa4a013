"""The patient's notification centre (issue 18, item 4) and the trail's tabs.

Notices, new documents and professionals' accesses are listed with unread markers and a count in the portal bar;
opening one marks it read for that user only, beside the append-only trail (T1). Items come through the doors:
a held document (A8) or another profile's item never shows.
"""

import io
import re

import pytest

from access_control import actions as access
from access_control.api import open_record
from access_control.models import AccessMode, TrailEntry
from notifications.models import Notice, ReadMark
from records.models import Document
from records.personas import minimal_pdf
from tests.portal_fixtures import _fresh_cache, signed_in, text, url  # noqa: F401

pytestmark = pytest.mark.django_db


def _count(response) -> int:
    """The unread count shown in the portal bar (0 when no badge)."""
    found = re.search(r'class="badge count">(\d+)<', response.content.decode())
    return int(found.group(1)) if found else 0


def _unread_links(response) -> list[str]:
    html = response.content.decode()
    return re.findall(r'<li class="unread[^"]*">\s*<a href="([^"]+)"', html)


def test_centre_lists_notices_documents_and_accesses_with_a_count__N1(client, personas):
    assert open_record(personas.ines, personas.alice, mode=AccessMode.CENTRE_15).allowed
    signed_in(client, personas.alice)
    page = client.get(url("notification_centre"))
    content = " ".join(re.sub(r"<[^>]+>", "", text(page)).split())
    assert "Consultation de votre dossier — Dr Inès Garnier" in content
    assert "Bilan sanguin annuel — Dr Claire Dubois" in content  # a new document, by its author
    assert "Accès en urgence" in content  # the notice of the emergency access (N3)
    assert 'class="badge emergency"' in page.content.decode()
    assert "Radio du genou (photo)" not in content  # her own upload is not news to her
    unread = _unread_links(page)
    assert len(unread) == _count(page) > 0
    assert _count(client.get(url("dashboard"))) == len(unread)  # on every portal page


def test_opening_an_item_marks_it_read_for_this_user_only__T1(client, personas):
    signed_in(client, personas.alice)
    page = client.get(url("notification_centre"))
    before, entries = _count(page), TrailEntry.objects.count()
    document = Document.objects.get(profile=personas.alice, title="Vaccination antigrippale")
    link = url("notification", "document", document.pk)
    assert link in _unread_links(page)
    response = client.get(link)
    assert response.status_code == 302 and response["Location"] == url("document", document.pk)
    page = client.get(url("notification_centre"))
    assert link not in _unread_links(page) and link in page.content.decode()
    assert _count(page) == before - 1
    assert client.get(link).status_code == 302  # opening again changes nothing
    assert ReadMark.objects.filter(user=personas.alice_user, kind="document", item_id=document.pk).count() == 1
    assert TrailEntry.objects.count() == entries  # reading the centre writes nothing to the trail


def test_mark_all_read_empties_the_count(client, personas):
    signed_in(client, personas.alice)
    assert _count(client.get(url("notification_centre"))) > 0
    response = client.post(url("notifications_read"))
    assert response.status_code == 302
    page = client.get(url("notification_centre"))
    assert _count(page) == 0 and _unread_links(page) == []
    assert "Tout marquer comme lu" not in text(page)
    access.do_deposit_document(
        personas.alice, actor=personas.david, fileobj=io.BytesIO(minimal_pdf("ECG", ["x"])),
        document_type="11488-4", title="ECG d'effort",
    )  # fmt: skip
    assert len(_unread_links(client.get(url("notification_centre")))) == 1  # news is unread again


def test_held_documents_stay_out_of_the_centre__A8(client, personas):
    held = access.do_deposit_document(
        personas.alice, actor=personas.david, fileobj=io.BytesIO(minimal_pdf("IRM", ["x"])),
        document_type="11488-4", title="Résultat d'IRM à annoncer", hold=True,
    )  # fmt: skip
    signed_in(client, personas.alice)
    assert "Résultat d'IRM" not in text(client.get(url("notification_centre")))
    assert client.get(url("notification", "document", held.pk)).status_code == 404
    assert not ReadMark.objects.filter(item_id=held.pk, kind="document").exists()


def test_items_of_another_profile_or_kind_are_404(client, personas):
    other = Document.objects.filter(profile=personas.etienne).first()
    notice = Notice.objects.exclude(profile=personas.alice).first()
    signed_in(client, personas.alice)
    assert client.get(url("notification", "document", other.pk)).status_code == 404
    assert client.get(url("notification", "notice", notice.pk)).status_code == 404
    assert client.get(url("notification", "letter", 1)).status_code == 404
    assert not ReadMark.objects.exists()


def test_centre_pins_its_queries(client, personas, django_assert_num_queries):
    signed_in(client, personas.alice)
    client.get(url("notification_centre"))  # warm the session and the count
    # session, user, OTP device, profile, managed profiles; notices, documents, accesses, read marks; the session
    # save (savepoint, update, release).
    with django_assert_num_queries(12):
        client.get(url("notification_centre"))
    for _ in range(40):
        assert open_record(personas.david, personas.alice).allowed
    with django_assert_num_queries(12):
        page = client.get(url("notification_centre"))
    assert len(_unread_links(page)) <= 3 * 30


def test_trail_opens_on_the_professionals_accesses__T3(client, personas):
    assert open_record(personas.david, personas.alice).allowed
    signed_in(client, personas.alice)
    content = text(client.get(url("trail")))
    assert "Dr David Lambert" in content
    assert "Masquage d'un document" not in content  # her own actions are under the second tab
    assert '?who=practitioners" aria-current="page"' in content
    mine = text(client.get(url("trail") + "?who=mine"))
    assert "Masquage d'un document" in mine and "Dr David Lambert" not in mine
    everything = text(client.get(url("trail") + "?who="))
    assert "Masquage d'un document" in everything and "Dr David Lambert" in everything
    csv = client.get(url("trail_csv")).getvalue().decode()
    assert "Lambert" in csv and "Masquage" not in csv  # the download follows the tab
