"""The encrypted document store (rule D): what deposit and download actions call to keep document bodies.

``store_body`` checks the real content type from the first bytes (``records.content_types``), enforces the
size limit while streaming, encrypts under a fresh data key (``records.crypto``) and saves the ciphertext in
``storages["documents"]`` under a random, sharded key that carries no patient data. Callers store the body
**before** opening their transaction and call ``delete_body`` if it then fails, so a rolled-back deposit leaves
no orphan. ``read_body`` unwraps the data key at once (a wrong master key fails before any byte is sent) and
decrypts lazily, chunk by chunk, checking size and SHA-256 before the last chunk. Why the ciphertext goes
through a temporary file first: docs/architecture.md, Documents at rest.
"""

import secrets
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.storage import storages
from django.http import StreamingHttpResponse
from django.utils.formats import number_format
from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _

from . import content_types
from .crypto import (
    CHUNK_SIZE,
    BodyTooLarge,
    CorruptedBody,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
    read_chunks,
    unwrap_data_key,
    wrap_data_key,
)

if TYPE_CHECKING:
    from .models import Document

STORAGE_ALIAS = "documents"

# A10: what a patient may deposit (pdf/jpg/png/rtf/tif/txt); practitioners may also send CDA R2 XML (rule D).
PATIENT_TYPES = frozenset(
    {
        content_types.PDF,
        content_types.JPEG,
        content_types.PNG,
        content_types.TIFF,
        content_types.RTF,
        content_types.TEXT,
    }
)
PRACTITIONER_TYPES = PATIENT_TYPES | {content_types.CDA_XML}


@dataclass(frozen=True)
class StoredBody:
    storage_key: str
    wrapped_key: bytes
    master_key_id: str
    size: int
    sha256: str
    content_type: str


class RejectedFile(ValidationError):
    """The file cannot be deposited (empty, wrong type, too large). Nothing was kept."""


def _storage():
    return storages[STORAGE_ALIAS]


def new_storage_key() -> str:
    """A random key, sharded over 65,536 directories: ``ab/cd/abcd…`` (128 random bits, no patient data)."""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token[2:4]}/{token}"


def _size_limit_message(max_bytes: int) -> RejectedFile:
    megabytes = max_bytes / (1024 * 1024)
    decimals = 0 if megabytes == int(megabytes) else 1
    return RejectedFile(
        _("Le fichier dépasse la taille maximale autorisée (%(limit)s Mo)."),
        code="file_too_large",
        params={"limit": number_format(megabytes, decimals)},
    )


def store_body(fileobj, *, max_bytes: int, allowed_types: frozenset[str]) -> StoredBody:
    """Check, encrypt and store a document body; raise :class:`RejectedFile` and keep nothing if refused."""
    chunks = read_chunks(fileobj, CHUNK_SIZE, limit=max_bytes + 1)
    first = next(chunks, b"")
    if not first:
        raise RejectedFile(_("Le fichier est vide."), code="file_empty")
    content_type = content_types.detect_content_type(first)
    if content_type is None or content_type not in allowed_types:
        raise RejectedFile(
            _("Ce type de fichier n'est pas accepté. Formats acceptés : %(formats)s."),
            code="file_type",
            params={"formats": content_types.describe(allowed_types)},
        )
    body = _prepend([first], chunks)
    del first  # the generator owns the first chunk now and drops it once written: one chunk less in memory
    data_key = new_data_key()
    master_key_id, wrapped_key = wrap_data_key(data_key)
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as ciphertext:
        try:
            digest = encrypt_stream(body, ciphertext, data_key, max_bytes=max_bytes)
        except BodyTooLarge:
            raise _size_limit_message(max_bytes) from None
        ciphertext.seek(0)
        storage = _storage()
        wanted_key = new_storage_key()
        try:
            storage_key = storage.save(wanted_key, File(ciphertext, name=wanted_key))
        except BaseException:
            _delete_quietly(storage, wanted_key)
            raise
    return StoredBody(
        storage_key=storage_key,
        wrapped_key=wrapped_key,
        master_key_id=master_key_id,
        size=digest.size,
        sha256=digest.sha256,
        content_type=content_type,
    )


def _prepend(box: list[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield box.pop()
    yield from rest


def read_body(document) -> Iterator[bytes]:
    """Decrypted body of ``document`` in chunks; :class:`CorruptedBody` if it fails any check (rule D).

    The data key is unwrapped now (``MasterKeyError`` if its master key is missing or wrong); the body is
    opened and read only as the iterator is consumed.
    """
    data_key = unwrap_data_key(document.wrapped_key, document.master_key_id)
    return _decrypted(document.storage_key, data_key, document.size, document.sha256)


def _decrypted(storage_key: str, data_key: bytes, size: int, sha256: str) -> Iterator[bytes]:
    try:
        handle = open_ciphertext(_storage(), storage_key)
    except FileNotFoundError:
        raise CorruptedBody("the document body is missing from the store.") from None
    with closing(handle):
        yield from decrypt_stream(handle, data_key, expected_size=size, expected_sha256=sha256)


def open_ciphertext(storage, storage_key: str) -> BinaryIO:
    """A stream of the stored ciphertext that reads as it goes (``FileNotFoundError`` if absent).

    On the file system that is the file. django-storages' S3 ``open()`` would first download the whole
    object into a SpooledTemporaryFile which, with the default ``AWS_S3_MAX_MEMORY_SIZE = 0``, never spills to
    disk: a 200 MB body in memory before the first byte. For S3 we read the object's HTTP body instead, chunk
    by chunk as it arrives.
    """
    bucket = getattr(storage, "bucket", None) if _is_s3(storage) else None
    if bucket is None:
        return storage.open(storage_key, "rb")
    from botocore.exceptions import ClientError
    from storages.utils import clean_name

    try:
        return bucket.Object(storage._normalize_name(clean_name(storage_key))).get()["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            raise FileNotFoundError(storage_key) from None
        raise


def _is_s3(storage) -> bool:
    return any(cls.__module__ == "storages.backends.s3" for cls in type(storage).__mro__)


def delete_body(storage_key: str) -> None:
    """Remove a stored body (own deposits deleted by the patient, purges, rolled-back deposits)."""
    _storage().delete(storage_key)


def _delete_quietly(storage, storage_key: str) -> None:
    try:
        if storage.exists(storage_key):
            storage.delete(storage_key)
    except Exception:  # noqa: S110  the original error matters more than a failed clean-up
        pass


# Types a browser renders without running anything of the document's: served inline when asked. Anything else
# (CDA XML, TIFF, RTF, or a type this list does not know) is always an attachment, so that no document ever
# renders as an active page (XML with scripts or stylesheets, SVG, HTML) on Carnet's own origin.
INLINE_SAFE_TYPES = frozenset({content_types.PDF, content_types.JPEG, content_types.PNG, content_types.TEXT})
# A sandbox without scripts, plugins, forms or same-origin rights, and no sub-resource: a document opened
# directly still cannot act as Carnet. PDF keeps the browser's viewer (Chromium refuses PDFs under "sandbox").
SANDBOX_POLICY = "sandbox; default-src 'none'"
FRAMED_PDF_POLICY = "frame-ancestors 'self'"


def body_response(
    document: "Document", *, as_attachment: bool = True, filename: str | None = None
) -> StreamingHttpResponse:
    """The decrypted body streamed as an HTTP response, inline only for the types of ``INLINE_SAFE_TYPES``.

    It is an attachment unless ``as_attachment`` is false and the type is inline-safe. Every door serves bodies
    through here: never sniffed (``nosniff``), never active (a sandboxing CSP), framed only by Carnet's own
    viewer pages.
    """
    content_type = document.content_type
    inline = not as_attachment and content_type in INLINE_SAFE_TYPES
    if content_type.startswith("text/") or content_type.endswith("xml"):
        content_type += "; charset=utf-8"
    response = StreamingHttpResponse(read_body(document), content_type=content_type)
    response["Content-Length"] = str(document.size)
    # Never None: content_disposition_header gives None only without a file name.
    response["Content-Disposition"] = content_disposition_header(not inline, filename or f"document-{document.pk}")  # type: ignore[assignment]
    response["X-Content-Type-Options"] = "nosniff"
    if inline and document.content_type == content_types.PDF:
        response["Content-Security-Policy"] = FRAMED_PDF_POLICY
    else:
        response["Content-Security-Policy"] = SANDBOX_POLICY + ("; frame-ancestors 'self'" if inline else "")
    return response
