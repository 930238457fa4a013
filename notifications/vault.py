"""Letters and print-batch files at rest: encrypted like documents (rule D, N4), in the document store.

Same envelope scheme as ``records.storage``: a fresh data key per file, wrapped by the master key
(``records.crypto``), the body sealed as a chunked AES-256-GCM stream and saved in ``storages["documents"]``
under a random key. Letters are small and produced by the thousand, so they are encrypted from memory; the
merged batch PDF is streamed from a temporary file. Rotation re-wraps these data keys too (registered in
``NotificationsConfig.ready``).
"""

import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages

from records.crypto import decrypt_stream, encrypt_stream, new_data_key, read_chunks, unwrap_data_key, wrap_data_key
from records.storage import STORAGE_ALIAS, new_storage_key

PREFIX = "notices"


@dataclass(frozen=True)
class SealedFile:
    storage_key: str
    wrapped_key: bytes
    master_key_id: str
    size: int
    sha256: str


def store_file(fileobj: BinaryIO) -> SealedFile:
    """Encrypt ``fileobj`` (read from its current position) and save it; returns what is needed to read it."""
    data_key = new_data_key()
    master_key_id, wrapped_key = wrap_data_key(data_key)
    storage = storages[STORAGE_ALIAS]
    with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as ciphertext:
        digest = encrypt_stream(read_chunks(fileobj), ciphertext, data_key)
        ciphertext.seek(0)
        wanted = f"{PREFIX}/{new_storage_key()}"
        storage_key = storage.save(wanted, File(ciphertext, name=wanted))
    return SealedFile(storage_key, wrapped_key, master_key_id, digest.size, digest.sha256)


def store_bytes(data: bytes) -> SealedFile:
    return store_file(io.BytesIO(data))


def read_file(*, storage_key: str, wrapped_key: bytes, master_key_id: str, size: int, sha256: str) -> Iterator[bytes]:
    """The decrypted file, chunk by chunk, checked (size, SHA-256) before its last chunk is yielded."""
    data_key = unwrap_data_key(wrapped_key, master_key_id)
    return _decrypted(storage_key, data_key, size, sha256)


def _decrypted(storage_key: str, data_key: bytes, size: int, sha256: str) -> Iterator[bytes]:
    with storages[STORAGE_ALIAS].open(storage_key, "rb") as handle:
        yield from decrypt_stream(handle, data_key, expected_size=size, expected_sha256=sha256)


def read_bytes(*, storage_key: str, wrapped_key: bytes, master_key_id: str, size: int, sha256: str) -> bytes:
    return b"".join(
        read_file(
            storage_key=storage_key, wrapped_key=wrapped_key, master_key_id=master_key_id, size=size, sha256=sha256
        )
    )


def delete_file(storage_key: str) -> None:
    if storage_key:
        storages[STORAGE_ALIAS].delete(storage_key)
