"""« Télécharger toutes mes données » : one ZIP, streamed as it is built (nothing held whole in memory).

Contents: ``documents/`` with every document the patient sees, decrypted (rule D: checked on read); ``trail.csv``
(the trail as the portal shows it, T3); ``index.json`` describing the profile, the documents (with the name of
their file in the archive), the health summary (every line ever added, removed ones with their removal date) and
the trail. ZIP entries are written with data descriptors, so the archive goes
to the client chunk by chunk; ZIP64 is forced for documents, whose size the writer does not check up front.
"""

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from access_control.queries import trail_for_patient
from plumbing import csv_safe

from .health_summary import export_of
from .storage import read_body

EXTENSIONS = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tif",
    "text/rtf": "rtf",
    "text/plain": "txt",
    "text/xml": "xml",
}
TRAIL_COLUMNS = [
    "date",
    "actor_kind",
    "actor_name",
    "actor_profession",
    "action",
    "document_id",
    "mode",
    "outcome",
    "detail",
]


class _Pipe(io.RawIOBase):
    """A write-only, unseekable sink whose bytes are taken out after each write (``drain``)."""

    def __init__(self):
        self._buffer = bytearray()
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer.extend(data)
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written  # zipfile records offsets; there is no seeking back

    def drain(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


def document_file_name(document) -> str:
    extension = EXTENSIONS.get(document.content_type, "bin")
    return f"documents/{document.care_date:%Y-%m-%d}-{document.pk}-{document.document_type.code}.{extension}"


def _document_index(document) -> dict:
    author = document.author_practitioner
    return {
        "id": document.pk,
        "file": document_file_name(document),
        "title": document.title,
        "type_code": document.document_type.code,
        "type_label": document.document_type.label_fr,
        "class_code": document.document_type.class_code,
        "care_date": document.care_date.isoformat(),
        "deposited_at": document.deposited_at.isoformat(),
        "author": author.display_name if author is not None else "patient",
        "author_profession": author.profession.label_fr if author is not None else "",
        "content_type": document.content_type,
        "size": document.size,
        "sha256": document.sha256,
        "masked": document.masked_at is not None,
    }


def _trail_csv(entries) -> bytes:
    out = io.StringIO()
    writer = csv_safe.writer(out)
    writer.writerow(TRAIL_COLUMNS)
    for entry in entries:
        writer.writerow(
            [
                entry.at.isoformat(),
                entry.actor_kind,
                entry.actor_name,
                entry.actor_profession,
                entry.action,
                entry.document_id or "",
                entry.mode,
                entry.outcome,
                entry.detail,
            ]
        )
    return out.getvalue().encode("utf-8")


def stream_export(profile, documents, *, as_legal_representative: bool) -> Iterator[bytes]:
    """The ZIP archive of ``profile``: ``documents`` is the queryset the patient sees (the access-control door)."""
    pipe = _Pipe()
    index: dict[str, Any] = {
        "generated_at": timezone.now().isoformat(),
        "profile": {
            "first_names": profile.first_names,
            "birth_name": profile.birth_name,
            "usual_name": profile.usual_name,
            "birth_date": profile.birth_date.isoformat(),
            "state": profile.state,
            "treating_doctor": profile.treating_doctor.display_name if profile.treating_doctor_id else None,
            "emergency_access_opt_out": profile.emergency_access_opt_out,
            "preferred_channel": profile.preferred_channel,
        },
        "documents": [],
        "health_summary": export_of(profile),
        "trail": "trail.csv",
    }
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for document in documents.iterator(chunk_size=200):
            with archive.open(document_file_name(document), mode="w", force_zip64=True) as target:
                for chunk in read_body(document):
                    target.write(chunk)
                    yield pipe.drain()
            index["documents"].append(_document_index(document))
            yield pipe.drain()
        entries = trail_for_patient(profile, as_legal_representative=as_legal_representative).order_by("seq")
        archive.writestr("trail.csv", _trail_csv(entries.iterator(chunk_size=2000)))
        yield pipe.drain()
        archive.writestr("index.json", json.dumps(index, ensure_ascii=False, indent=2).encode("utf-8"))
    yield pipe.drain()
