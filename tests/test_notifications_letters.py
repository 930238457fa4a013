"""Postal letters (N4): WeasyPrint PDFs checked by extracting their text, encrypted at rest, daily batches."""
# ruff: noqa: F811  (pytest fixtures imported from tests.notify_fixtures are redefined as arguments)

import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone
from pypdf import PdfReader

from access_control.models import AccessMode
from notifications.address import MAX_CHARS, MAX_LINES, address_lines
from notifications.batches import batch_file_chunks, close_letter_batch, close_letter_batches, letter_pdf
from notifications.channels.base import UndeliverableError
from notifications.delivery import deliver
from notifications.models import BatchFile, Letter, Notice, PrintBatch
from notifications.outbox import queue_notice
from notifications.queries import letter_pdf_for_patient, notices_for_profile
from records.crypto import seal
from records.models import Profile, User
from tests.notify_fixtures import (  # noqa: F401  (fixtures)
    SECRET_TITLE,
    alice,
    bernard,
    claire,
    consult,
    david,
    emma,
    nir_with_key,
    pdf_text,
    secret_document,
)

pytestmark = pytest.mark.django_db


def _letter_for(notice) -> Letter:
    assert deliver(notice.pk) == Notice.Status.SENT
    return Letter.objects.get(notice=notice)


def test_consultation_letter_text_has_address_practitioner_and_no_title__N4_N6(bernard, david):
    document = secret_document(bernard, david)
    letter = _letter_for(consult(bernard, david, document=document))

    text = pdf_text(letter_pdf(letter))
    for line in ("M. Bernard PETIT", "Résidence Les Tilleuls", "12 avenue Jean Jaurès", "69007 LYON"):
        assert line in text
    assert "Dr David Lambert" in text and "Médecin" in text
    assert SECRET_TITLE not in text and "coloscopie" not in text
    assert letter.reference in text
    assert "activer" in text  # how to restrict access when never activated (N6)
    assert letter.page_count == 1 and letter.postal_code == "69007" and letter.country == "FR"


def test_letter_recipient_block_sits_in_the_window__N4(bernard, david):
    letter = _letter_for(consult(bernard, david))
    page = PdfReader(io.BytesIO(letter_pdf(letter))).pages[0]
    positions = []

    def visitor(text, cm, tm, font, size):
        if "PETIT" in text or "69007" in text:
            # Page coordinates: the text matrix's origin through the current transformation matrix.
            positions.append((tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5]))

    page.extract_text(visitor_text=visitor)
    mm = 72 / 25.4
    height = float(page.mediabox.height)
    assert round(float(page.mediabox.width) / mm) == 210 and round(height / mm) == 297  # A4
    assert positions
    for x, y in positions:
        assert 108 <= x / mm <= 112  # DL window: 110 mm from the left edge
        assert 44 <= (height - y) / mm <= 90  # inside the window's height band


def test_letter_is_encrypted_at_rest__N4_D(bernard, david):
    letter = _letter_for(consult(bernard, david))
    stored = storages["documents"].open(letter.storage_key, "rb").read()
    assert b"%PDF" not in stored and b"PETIT" not in stored
    assert letter_pdf(letter).startswith(b"%PDF")


def test_pre_opening_letter_carries_the_code_and_the_42_days__L1_L2(bernard):
    bernard.state = Profile.State.PENDING
    bernard.save(update_fields=["state"])
    with transaction.atomic():
        notice = queue_notice(bernard, Notice.Kind.PRE_OPENING, sealed_payload=seal(b"H4W-Z9K-2PL"))
    text = pdf_text(letter_pdf(_letter_for(notice)))
    assert "H4W-Z9K-2PL" in text and "42 jours" in text and "opposer" in text
    notice.refresh_from_db()
    assert notice.sealed_payload is None


def test_letter_redelivery_files_one_letter__N5(bernard, david):
    notice = consult(bernard, david)
    _letter_for(notice)
    Notice.objects.filter(pk=notice.pk).update(status=Notice.Status.PENDING)
    assert deliver(notice.pk) == Notice.Status.SENT
    assert Letter.objects.filter(notice=notice).count() == 1
    assert PrintBatch.objects.get().letter_count == 1


def test_address_lines_follow_nf_z10_011__N4(bernard):
    bernard.address_complement = "Appartement 12, 3e étage, porte gauche"
    bernard.address_locality = "Lieu-dit Les Trois Chênes"
    bernard.city = "Saint-Étienne-de-Saint-Geoirs"
    bernard.country = "BE"
    lines = address_lines(bernard)
    assert len(lines) <= MAX_LINES and all(len(line) <= MAX_CHARS for line in lines)
    assert lines[0] == "M. Bernard PETIT" and lines[-1] == "BELGIQUE"
    assert "69007 SAINT-ETIENNE-DE-SAINT-GEOIRS" in lines
    bernard.address_street = bernard.address_locality = ""
    with pytest.raises(UndeliverableError):
        address_lines(bernard)


def _patient(n: int) -> Profile:
    return Profile.objects.create(
        nir=nir_with_key(f"1{n:02d}0175{n:06d}"[:13]),
        birth_name=f"Durand{n}",
        first_names="Paul",
        birth_date=date(1970, 1, 1),
        sex=Profile.Sex.MALE,
        address_street=f"{n} rue Victor Hugo",
        postal_code=f"{13000 + n:05d}",
        city="Marseille",
        state=Profile.State.OPEN,
    )


def test_batch_merges_n_letters_with_a_manifest__N4(david, emma):
    patients = [_patient(n) for n in range(1, 6)]
    for patient in patients:
        deliver(consult(patient, david).pk)
    # A second practitioner gives one patient a two-access... still one page per letter.
    deliver(consult(patients[0], emma).pk)
    letters = list(Letter.objects.order_by("pk"))
    assert len(letters) == 6 and len({letter.batch_id for letter in letters}) == 1
    pages_each = letters[0].page_count

    batch = close_letter_batch(letters[0].batch_id)

    assert batch.status == PrintBatch.Status.CLOSED and batch.letter_count == 6
    merged = PdfReader(io.BytesIO(b"".join(batch_file_chunks(batch, BatchFile.Part.PDF))))
    assert len(merged.pages) == 6 * pages_each == batch.page_count
    rows = list(csv.reader(io.StringIO(b"".join(batch_file_chunks(batch, "manifest")).decode("utf-8"))))
    assert rows[0] == ["reference", "pages", "postal_code", "country"]
    assert [row[0] for row in rows[1:]] == [letter.reference for letter in letters]
    assert {row[2] for row in rows[1:]} == {f"{13000 + n:05d}" for n in range(1, 6)}
    for part in batch.files.all():
        assert b"%PDF" not in storages["documents"].open(part.storage_key, "rb").read()


def test_letters_after_closing_go_to_the_next_day_batch__N4(bernard, david, emma):
    deliver(consult(bernard, david).pk)
    first = PrintBatch.objects.get()
    close_letter_batch(first.pk)
    deliver(consult(bernard, emma).pk)
    second = Letter.objects.order_by("-pk").first().batch
    assert second.pk != first.pk and second.day == first.day + timedelta(days=1)
    assert second.status == PrintBatch.Status.OPEN
    assert close_letter_batches(up_to=first.day) == []  # tomorrow's batch stays open today
    assert close_letter_batches(up_to=second.day) == [second.pk]


def test_patient_lists_notices_and_downloads_own_letters_only__N7(bernard, david, alice, django_assert_max_num_queries):
    letter = _letter_for(consult(bernard, david, mode=AccessMode.NORMAL))
    consult(alice, david)
    bernard.user = User.objects.create_user(username="bernard", password="x" * 12)
    bernard.save(update_fields=["user"])

    with django_assert_max_num_queries(3):
        notices = list(notices_for_profile(bernard))
        assert [n.letter.reference for n in notices] == [letter.reference]
        assert [e.actor_name for e in notices[0].trail_entries.all()] == ["Dr David Lambert"]

    download = letter_pdf_for_patient(bernard.user, letter.pk)
    assert download.content.startswith(b"%PDF") and letter.reference in download.filename
    with pytest.raises(Letter.DoesNotExist):
        letter_pdf_for_patient(alice.user, letter.pk)


def test_letter_template_has_no_flex_layout__N4():
    root = Path(__file__).resolve().parent.parent / "templates" / "notifications"
    for name in ("letter.html", "letter.css"):
        source = (root / name).read_text(encoding="utf-8")
        assert not re.search(r"display\s*:\s*(inline-)?(flex|grid)", source)


def _embedded_fonts(pdf: bytes) -> set[str]:
    fonts = PdfReader(io.BytesIO(pdf)).pages[0]["/Resources"]["/Font"].values()
    return {str(font.get_object()["/BaseFont"]).split("+", 1)[1] for font in fonts}


def test_letter_embeds_its_latin_fonts_and_falls_back_outside_them__N4(bernard, david):
    """The letter's own Latin cuts of DejaVu (templates/notifications/fonts) carry a French letter alone; a name
    in another script falls back to the system's DejaVu Sans and stays in the text."""
    assert _embedded_fonts(letter_pdf(_letter_for(consult(bernard, david)))) == {
        "Carnet-Letter-Sans",
        "Carnet-Letter-Sans-Bold",
    }
    bernard.first_names = "Дмитрий"
    bernard.save(update_fields=["first_names"])
    with transaction.atomic():
        notice = queue_notice(bernard, Notice.Kind.PRE_OPENING, sealed_payload=seal(b"H4W-Z9K-2PL"))
    pdf = letter_pdf(_letter_for(notice))
    assert "Дмитрий PETIT" in pdf_text(pdf)
    assert {"Carnet-Letter-Sans", "Carnet-Letter-Mono", "DejaVu-Sans"} <= _embedded_fonts(pdf)


def test_harfbuzz_check_warns_when_the_library_is_missing(monkeypatch):
    from notifications import checks

    assert checks.check_harfbuzz_subset(None) == []  # installed on this machine and in CI
    monkeypatch.setattr(checks.ctypes.util, "find_library", lambda name: None)
    assert [w.id for w in checks.check_harfbuzz_subset(None)] == ["carnet.W010"]


def test_old_batches_are_closed_by_the_beat_job__N4(bernard, david):
    from notifications.tasks import close_letter_batches as beat_job

    deliver(consult(bernard, david).pk)
    batch = PrintBatch.objects.get()
    PrintBatch.objects.filter(pk=batch.pk).update(day=timezone.localdate() - timedelta(days=2))
    assert beat_job() == [batch.pk]
    assert PrintBatch.objects.get().status == PrintBatch.Status.CLOSED


def test_the_batch_manifest_neutralises_formula_cells__N4(david):
    """A postal code is free text from an import or the desk: a spreadsheet must read it as text."""
    patient = _patient(1)
    Profile.objects.filter(pk=patient.pk).update(postal_code="=1+2", country="FR")
    deliver(consult(Profile.objects.get(pk=patient.pk), david).pk)
    batch = close_letter_batch(Letter.objects.get().batch_id)
    rows = list(csv.reader(io.StringIO(b"".join(batch_file_chunks(batch, "manifest")).decode("utf-8"))))
    assert rows[1][2] == "'=1+2"
