"""Documents read in the page: PDF pages and images drawn on the server, under the door, traced once (T1).

Real PDFs (WeasyPrint), real PDFium in a real child process; the PNGs that come back are checked pixel by pixel.
"""

import io
import re
from dataclasses import replace

import pypdf
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image
from weasyprint import HTML

from access_control import actions as access
from access_control.models import TrailEntry
from notifications.models import Notice
from plumbing import page_render
from records import preview
from tests.portal_fixtures import signed_in, text, url
from tests.pro_fixtures import open_record
from tests.pro_fixtures import signed_in as pro_signed_in

pytestmark = pytest.mark.django_db


def weasy_pdf(title: str, pages: int = 2) -> bytes:
    """A real PDF: a black band across the top of every A4 page, then its title and page number."""
    body = "".join(
        f'<section><div class="band"></div><h1>{title}</h1><p>Page {n}</p></section>' for n in range(1, pages + 1)
    )
    style = (
        "@page { size: A4; margin: 0 } section { page-break-after: always; height: 297mm } "
        ".band { height: 30mm; background: #000 } h1 { margin: 10mm }"
    )
    return HTML(string=f"<html><head><style>{style}</style></head><body>{body}</body></html>").write_pdf()


def deposit(profile, actor, content: bytes, *, title: str, document_type: str = "11488-4"):
    return access.do_deposit_document(
        profile, actor=actor, fileobj=io.BytesIO(content), document_type=document_type, title=title
    )


def png(response) -> Image.Image:
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"] == "image/png"
    assert "no-store" in response["Cache-Control"].split(", ")
    assert response["X-Content-Type-Options"] == "nosniff"
    return Image.open(io.BytesIO(response.content))


def assert_is_the_page(image: Image.Image) -> None:
    """The rendering of ``weasy_pdf``'s page: A4 proportions, the black band on top, white below it."""
    assert image.size[0] == preview.LIMITS.width
    assert abs(image.size[1] / image.size[0] - 297 / 210) < 0.01
    rgb = image.convert("RGB")
    assert rgb.getpixel((image.size[0] // 2, 20)) == (0, 0, 0)  # inside the band
    assert rgb.getpixel((image.size[0] // 2, image.size[1] - 20)) == (255, 255, 255)  # blank foot
    dark = sum(rgb.convert("L").histogram()[:128])
    assert dark > image.size[0] * 100  # the band (30 mm of 297) and the text: a real drawing, not an empty box


def opened_entries(profile, document):
    return TrailEntry.objects.filter(profile=profile, document_id=document.pk, action="open_document")


# --- Patient portal ----------------------------------------------------------------------------------------------


def test_patient_sees_pdf_pages_drawn_on_the_server_and_one_trail_entry__T1(client, personas):
    document = deposit(personas.alice, personas.david, weasy_pdf("Compte rendu de cardiologie"), title="CR cardio")
    signed_in(client, personas.alice)
    notices_before = Notice.objects.filter(profile=personas.alice).count()
    page = client.get(url("document", document.pk))
    html = page.content.decode()
    assert "<iframe" not in html
    urls = re.findall(r'<img class="preview-page" src="([^"]+)" loading="lazy"', html)
    assert urls == [url("document_page", document.pk, 1), url("document_page", document.pk, 2)]
    assert 'alt="CR cardio, page 1 sur 2"' in html
    assert url("document_download", document.pk) in html  # the download stays
    for page_url in urls:
        assert_is_the_page(png(client.get(page_url)))
    # T1: the page is the consultation; its page images add no entry and no notice.
    assert list(opened_entries(personas.alice, document).values_list("detail", "outcome")) == [("view", "allowed")]
    assert Notice.objects.filter(profile=personas.alice).count() == notices_before


def test_a_page_image_fetched_on_its_own_is_a_traced_opening__T1(client, personas):
    document = deposit(personas.alice, personas.david, weasy_pdf("Ordonnance", pages=1), title="Ordonnance")
    signed_in(client, personas.alice)
    assert_is_the_page(png(client.get(url("document_page", document.pk, 1))))
    assert_is_the_page(png(client.get(url("document_page", document.pk, 1))))
    assert opened_entries(personas.alice, document).count() == 1


def test_another_records_page_images_are_404_and_traced_as_denied__T1(client, personas):
    other = deposit(personas.bernard, personas.david, weasy_pdf("Bilan", pages=1), title="Bilan de Bernard")
    signed_in(client, personas.alice)
    response = client.get(url("document_page", other.pk, 1))
    assert response.status_code == 404
    assert not response.content.startswith(b"\x89PNG")
    assert TrailEntry.objects.filter(profile=personas.alice, document_id=other.pk, outcome="denied").count() == 1


def test_a_held_document_has_no_page_images_for_the_patient__A8(client, personas):
    held = access.do_deposit_document(
        personas.alice, actor=personas.david, fileobj=io.BytesIO(weasy_pdf("IRM", pages=1)),
        document_type="11488-4", title="IRM à annoncer", hold=True,
    )  # fmt: skip
    signed_in(client, personas.alice)
    assert client.get(url("document_page", held.pk, 1)).status_code == 404


def test_an_encrypted_pdf_says_so_and_offers_the_download(client, personas):
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(weasy_pdf("Secret", pages=1)))
    writer.encrypt("mot-de-passe")
    locked = io.BytesIO()
    writer.write(locked)
    document = deposit(
        personas.alice, personas.alice.user, locked.getvalue(), title="PDF chiffré", document_type="DOCPAT03"
    )
    signed_in(client, personas.alice)
    page = client.get(url("document", document.pk))
    assert page.status_code == 200
    assert "protégé par un mot de passe" in text(page)
    assert url("document_download", document.pk) in page.content.decode()
    assert not opened_entries(personas.alice, document).exists()  # nothing was shown: nothing read
    response = client.get(url("document_page", document.pk, 1))
    assert response.status_code == 404 and "protégé par un mot de passe" in response.content.decode()


def test_a_damaged_pdf_says_so_in_english_too(client, personas):
    damaged = weasy_pdf("Abîmé", pages=1)[:400]  # the header survives: deposited as a PDF, unreadable
    document = deposit(personas.alice, personas.alice.user, damaged, title="PDF abîmé", document_type="DOCPAT03")
    signed_in(client, personas.alice)
    assert "illisible ou endommagé" in text(client.get(url("document", document.pk)))
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    page = client.get(url("document", document.pk))
    assert "unreadable or damaged" in text(page)


def test_a_photo_is_re_encoded_without_its_metadata(client, personas):
    photo = Image.new("RGB", (2400, 1600), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "Appareil-Photo-Marque"  # Make
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPS position
    raw = io.BytesIO()
    photo.save(raw, format="JPEG", exif=exif, comment=b"commentaire prive")
    assert b"Appareil-Photo-Marque" in raw.getvalue()
    document = deposit(personas.alice, personas.alice.user, raw.getvalue(), title="Photo", document_type="DOCPAT04")
    signed_in(client, personas.alice)
    client.get(url("document", document.pk))
    response = client.get(url("document_page", document.pk, 1))
    assert response["Content-Type"] == "image/jpeg" and "no-store" in response["Cache-Control"]
    assert b"Appareil-Photo-Marque" not in response.content and b"commentaire prive" not in response.content
    image = Image.open(io.BytesIO(response.content))
    assert not image.getexif() and image.size == (preview.LIMITS.width, 827)
    assert image.getpixel((10, 10)) == pytest.approx((30, 120, 200), abs=3)


def test_a_decompression_bomb_is_refused_without_a_500(client, personas):
    bomb = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(bomb, format="PNG")  # 48 KB on disk, 144 megapixels decoded
    document = deposit(personas.alice, personas.alice.user, bomb.getvalue(), title="Bombe", document_type="DOCPAT04")
    signed_in(client, personas.alice)
    assert "trop volumineux" in text(client.get(url("document", document.pk)))
    assert client.get(url("document_page", document.pk, 1)).status_code == 404


def test_a_rendering_that_takes_too_long_is_stopped(client, personas, monkeypatch):
    document = deposit(personas.alice, personas.david, weasy_pdf("Long", pages=1), title="Long")
    monkeypatch.setattr(preview, "LIMITS", replace(preview.LIMITS, timeout=0.001))
    signed_in(client, personas.alice)
    assert "a pris trop de temps" in text(client.get(url("document", document.pk)))


def test_a_huge_page_is_drawn_within_the_pixel_limit():
    huge = pypdf.PdfWriter()
    huge.add_blank_page(width=14_400, height=14_400)  # 5 m a side, PDF's largest page
    out = io.BytesIO()
    huge.write(out)
    image = page_render.render_page(out.getvalue(), "application/pdf", 1, preview.LIMITS)
    assert image.width * image.height <= preview.LIMITS.max_pixels
    assert image.width == image.height > 1000


def test_only_the_first_pages_of_a_long_document_are_drawn(client, personas):
    document = deposit(personas.alice, personas.david, weasy_pdf("Dossier", pages=preview.MAX_PAGES + 3), title="Long")
    signed_in(client, personas.alice)
    page = client.get(url("document", document.pk))
    assert page.content.decode().count('class="preview-page"') == preview.MAX_PAGES
    assert f"Seules les {preview.MAX_PAGES} premières pages sur {preview.MAX_PAGES + 3}" in text(page)
    assert client.get(url("document_page", document.pk, preview.MAX_PAGES + 1)).status_code == 404


# --- Practitioner portal -----------------------------------------------------------------------------------------


def test_practitioner_sees_pdf_pages_with_one_trail_entry_and_no_extra_notice__T1_N1(personas):
    document = deposit(personas.alice, personas.claire, weasy_pdf("Lettre de liaison"), title="Lettre de liaison")
    david = pro_signed_in(Client(), personas.david)
    token = open_record(david, personas.alice)
    notices = Notice.objects.filter(profile=personas.alice).count()
    viewer = david.get(reverse("practitioners:document", args=[token, document.pk]))
    urls = re.findall(r'<img class="preview-page" src="([^"]+)"', viewer.content.decode())
    assert len(urls) == 2 and 'alt="Lettre de liaison, page 2 sur 2"' in viewer.content.decode()
    for page_url in urls:
        assert_is_the_page(png(david.get(page_url)))
    entries = TrailEntry.objects.filter(actor_practitioner=personas.david, document_id=document.pk)
    assert list(entries.values_list("action", "outcome")) == [("open_document", "allowed")]
    assert Notice.objects.filter(profile=personas.alice).count() == notices


def test_a_masked_documents_page_images_stay_hidden__A4(personas):
    document = deposit(personas.alice, personas.claire, weasy_pdf("Synthèse", pages=1), title="Synthèse masquée")
    access.do_mask_document(document, actor=personas.alice.user)
    david = pro_signed_in(Client(), personas.david)
    token = open_record(david, personas.alice)
    response = david.get(reverse("practitioners:document_page", args=[token, document.pk, 1]))
    assert response.status_code == 404 and not response.content.startswith(b"\x89PNG")
    claire = pro_signed_in(Client(), personas.claire)  # the author and treating doctor still sees it (A4, A6)
    token = open_record(claire, personas.alice)
    assert_is_the_page(png(claire.get(reverse("practitioners:document_page", args=[token, document.pk, 1]))))


def test_a_block_stops_the_page_images_at_once__A5(personas):
    document = deposit(personas.alice, personas.claire, weasy_pdf("Bilan", pages=1), title="Bilan")
    david = pro_signed_in(Client(), personas.david)
    token = open_record(david, personas.alice)
    david.get(reverse("practitioners:document", args=[token, document.pk]))
    page_url = reverse("practitioners:document_page", args=[token, document.pk, 1])
    assert david.get(page_url).status_code == 200
    access.do_block_practitioner(personas.alice, personas.david, actor=personas.alice.user)
    assert david.get(page_url).status_code == 404


def test_a_multi_page_tiff_is_shown_page_by_page(client, personas):
    """TIFF, which browsers do not display, gets one image per frame (a scanned letter of two pages)."""
    frames = [Image.new("L", (850, 1100), shade) for shade in (0, 200)]
    scan = io.BytesIO()
    frames[0].save(scan, format="TIFF", save_all=True, append_images=frames[1:])
    document = deposit(personas.alice, personas.alice.user, scan.getvalue(), title="Scan", document_type="DOCPAT03")
    signed_in(client, personas.alice)
    page = client.get(url("document", document.pk))
    assert page.content.decode().count('class="preview-page"') == 2
    first, second = (png(client.get(url("document_page", document.pk, n))) for n in (1, 2))
    assert first.convert("L").getpixel((5, 5)) == 0 and second.convert("L").getpixel((5, 5)) == 200
    assert first.size == (850, 1100)  # smaller than the drawing width: never enlarged
