"""Daily print batches of postal letters (N4), closed into one merged PDF and a CSV manifest.

Letters are filed into the open batch of the day; the manifest (letter reference, pages, postal code, country)
is for the mail house. At most one batch per day (``PrintBatch.day`` is unique); a letter filed after its day's
batch closed goes to the next day's. Closing is two steps: (1) mark the batch closed under its row lock, so that
no letter can join it afterwards; (2) merge and store the files. A crash between the two leaves a closed batch
without files, which the next ``close_letter_batches`` run builds (it is also the beat job at
CARNET_LETTER_BATCH_HOUR). Merging concatenates the letters' rendered PDFs (pypdf), never lays out a giant HTML.
"""

import io
import logging
import tempfile
from collections.abc import Iterator
from datetime import date, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from plumbing import csv_safe

from . import vault
from .content import notice_reference
from .models import BatchFile, Letter, Notice, PrintBatch

logger = logging.getLogger(__name__)

MANIFEST_HEADER = ["reference", "pages", "postal_code", "country"]


def _lock_open_batch(day: date) -> PrintBatch:
    """The open batch of ``day`` (or of the first later day whose batch is still open), locked."""
    while True:
        batch = PrintBatch.objects.select_for_update().filter(day=day, status=PrintBatch.Status.OPEN).first()
        if batch is not None:
            return batch
        existing, created = PrintBatch.objects.get_or_create(day=day)
        if not created and existing.status == PrintBatch.Status.CLOSED:
            day += timedelta(days=1)


def file_letter(notice: Notice, pdf: bytes, *, page_count: int, postal_code: str, country: str) -> Letter:
    """Store the letter's PDF encrypted and file it in the open batch of today. Idempotent per notice."""
    sealed = vault.store_bytes(pdf)
    try:
        with transaction.atomic():
            existing = Letter.objects.filter(notice_id=notice.pk).first()
            if existing is not None:
                vault.delete_file(sealed.storage_key)
                return existing
            batch = _lock_open_batch(timezone.localdate())
            letter = Letter.objects.create(
                notice=notice,
                batch=batch,
                reference=notice_reference(notice),
                page_count=page_count,
                postal_code=postal_code,
                country=country,
                created_at=timezone.now(),
                storage_key=sealed.storage_key,
                wrapped_key=sealed.wrapped_key,
                master_key_id=sealed.master_key_id,
                size=sealed.size,
                sha256=sealed.sha256,
            )
            PrintBatch.objects.filter(pk=batch.pk).update(
                letter_count=F("letter_count") + 1, page_count=F("page_count") + page_count
            )
    except BaseException:
        vault.delete_file(sealed.storage_key)
        raise
    return letter


def letter_pdf(letter: Letter) -> bytes:
    return b"".join(_read(letter))


def _read(sealed_row: Letter | BatchFile) -> Iterator[bytes]:
    return vault.read_file(
        storage_key=sealed_row.storage_key,
        wrapped_key=bytes(sealed_row.wrapped_key),  # a BinaryField may be a memoryview
        master_key_id=sealed_row.master_key_id,
        size=sealed_row.size,
        sha256=sealed_row.sha256,
    )


def batch_file_chunks(batch: PrintBatch, part: str) -> Iterator[bytes]:
    """The decrypted merged PDF (``part="pdf"``) or manifest (``"manifest"``) of a closed batch, in chunks."""
    return _read(BatchFile.objects.get(batch=batch, part=part))


def close_letter_batch(batch_id: int) -> PrintBatch:
    """Close one batch and build its merged PDF and manifest (both encrypted). Safe to call again."""
    with transaction.atomic():
        batch = PrintBatch.objects.select_for_update().get(pk=batch_id)
        if batch.status == PrintBatch.Status.OPEN:
            batch.status = PrintBatch.Status.CLOSED
            batch.closed_at = timezone.now()
            batch.save(update_fields=["status", "closed_at"])
    # From here on no letter can join the batch: its list is final.
    with transaction.atomic():
        batch = PrintBatch.objects.select_for_update().get(pk=batch_id)
        if batch.files.exists():
            return batch
        _build_files(batch)
    logger.info("Print batch %s closed: %s letters, %s pages.", batch.pk, batch.letter_count, batch.page_count)
    return batch


def _build_files(batch: PrintBatch) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    manifest = io.StringIO()
    rows = csv_safe.writer(manifest, lineterminator="\n")
    rows.writerow(MANIFEST_HEADER)
    letters = pages = 0
    for letter in batch.letters.order_by("pk").iterator(chunk_size=500):
        reader = PdfReader(io.BytesIO(letter_pdf(letter)))
        writer.append(reader)
        rows.writerow([letter.reference, letter.page_count, letter.postal_code, letter.country])
        letters += 1
        pages += len(reader.pages)
    stored: list[str] = []
    try:
        with tempfile.TemporaryFile() as merged:
            if letters:
                writer.write(merged)
            merged.seek(0)
            pdf = vault.store_file(merged)
        stored.append(pdf.storage_key)
        csv_file = vault.store_bytes(manifest.getvalue().encode("utf-8"))
        stored.append(csv_file.storage_key)
        for part, sealed in ((BatchFile.Part.PDF, pdf), (BatchFile.Part.MANIFEST, csv_file)):
            BatchFile.objects.create(
                batch=batch,
                part=part,
                storage_key=sealed.storage_key,
                wrapped_key=sealed.wrapped_key,
                master_key_id=sealed.master_key_id,
                size=sealed.size,
                sha256=sealed.sha256,
            )
        batch.letter_count, batch.page_count = letters, pages
        batch.save(update_fields=["letter_count", "page_count"])
    except BaseException:
        for key in stored:
            vault.delete_file(key)
        raise


def close_letter_batches(up_to: date | None = None) -> list[int]:
    """Close every batch of ``up_to`` (default today) and before, and finish any closed without its files."""
    day = up_to or timezone.localdate()
    ids = list(PrintBatch.objects.filter(day__lte=day, status=PrintBatch.Status.OPEN).values_list("pk", flat=True))
    ids += list(
        PrintBatch.objects.filter(status=PrintBatch.Status.CLOSED, files__isnull=True).values_list("pk", flat=True)
    )
    for batch_id in sorted(set(ids)):
        close_letter_batch(batch_id)
    return sorted(set(ids))
