"""Encryption at rest for the document store (rule D): master keys, data keys, streaming AEAD, sealing.

- Master keys: ``CARNET_MASTER_KEY = "id:base64key[,id:base64key…]"``; the first wraps new data keys, the
  others only unwrap what they wrapped until ``rotate_master_key`` has moved everything. Read at call time.
- Data keys (one random 256-bit key per body) are wrapped with AES key wrap (RFC 3394).
- Bodies: a chunked AES-256-GCM stream (STREAM construction), a header then chunks of ``CHUNK_SIZE`` bytes,
  nonce = per-file prefix ‖ chunk counter, associated data = header ‖ chunk index ‖ is-final flag. Any
  tampering, truncation or reordering raises :class:`CorruptedBody`; plaintext is returned only after its
  chunk's tag is verified, and memory stays at a couple of chunks.
- ``seal``/``unseal``: AES-256-GCM for small secrets, naming the master key id so they survive a rotation.

Only ``cryptography`` primitives are used. Why envelope encryption and key wrap: docs/architecture.md,
Documents at rest.
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import struct
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from django.conf import settings

KEY_BYTES = 32
CHUNK_SIZE = 1024 * 1024  # 1 MiB of plaintext per chunk
MAX_CHUNK_SIZE = 16 * 1024 * 1024  # refuse headers announcing larger chunks (bounded memory on bad input)
TAG_BYTES = 16
DEV_KEY_FILE = "dev-master-key"
DEV_KEY_ID = "dev"

_KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

# Body format, version 1: b"CRNT" | version (1 byte) | chunk size (u32 BE) | nonce prefix (8 bytes).
_BODY_MAGIC = b"CRNT"
_BODY_VERSION = 1
_HEADER = struct.Struct(">4sBI8s")
HEADER_BYTES = _HEADER.size
_MAX_CHUNKS = 2**32  # the nonce counter is 32 bits

_WRAP_VERSION = b"\x01"  # wrapped data key: version | AES-KW(master key, data key) (40 bytes)
_SEAL_VERSION = 1  # sealed value: version | id length | id | nonce (12) | AES-GCM ciphertext+tag


class MasterKeyError(ValueError):
    """The master key configuration is missing or invalid, or a key needed to unwrap is not configured."""


class CorruptedBody(ValueError):
    """Encrypted data failed authentication or its integrity check: altered, truncated, or not ours."""


class BodyTooLarge(ValueError):
    """The plaintext exceeded the ``max_bytes`` given to :func:`encrypt_stream` (reading stopped there)."""


# --- Master keys ----------------------------------------------------------------------------------------


def parse_master_keys(value: str) -> list[tuple[str, bytes]]:
    """Parse ``"id:base64key[,id:base64key…]"`` into ``[(id, key), …]``, current key first."""
    if value is None or not value.strip():
        raise MasterKeyError("no master key given (expected 'id:base64key[,id:base64key…]').")
    keys: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for position, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            raise MasterKeyError(f"entry {position} is empty (stray comma?).")
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep:
            raise MasterKeyError(f"entry {position} has no ':' (expected 'id:base64key').")
        if not _KEY_ID_RE.match(key_id):
            raise MasterKeyError(
                f"entry {position}: key id {key_id!r} is invalid (1 to 32 characters among A-Z a-z 0-9 _ -)."
            )
        if key_id in seen:
            raise MasterKeyError(f"entry {position}: key id {key_id!r} appears twice.")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyError(f"key {key_id!r} is not valid base64.") from None
        if len(key) != KEY_BYTES:
            raise MasterKeyError(f"key {key_id!r} is {len(key)} bytes long; a master key is {KEY_BYTES} bytes.")
        seen.add(key_id)
        keys.append((key_id, key))
    return keys


@lru_cache(maxsize=8)
def _parsed(value: str) -> tuple[tuple[str, bytes], ...]:
    return tuple(parse_master_keys(value))


def _dev_master_key() -> str:
    """DEBUG only: a development key kept in VAR_DIR/dev-master-key (mode 0600), created on first use."""
    path = Path(settings.VAR_DIR) / DEV_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a private name, then linked into place: a concurrent process either wins the
        # link or reads the complete winner, never a half-written file.
        draft = path.with_name(f".{DEV_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(format_master_key(DEV_KEY_ID, secrets.token_bytes(KEY_BYTES)) + "\n")
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another process got there first: use its key
        finally:
            draft.unlink()
    return path.read_text(encoding="ascii").strip()


def configured_master_keys() -> tuple[tuple[str, bytes], ...]:
    """The configured master keys, current first, read from settings at call time."""
    value = settings.CARNET_MASTER_KEY
    if not value:
        if not settings.DEBUG:
            raise MasterKeyError(
                "CARNET_MASTER_KEY is not set: documents cannot be encrypted or read. "
                "Generate one with `python manage.py generate_master_key`."
            )
        value = _dev_master_key()
    return _parsed(value)


def current_master_key() -> tuple[str, bytes]:
    """``(id, key)`` of the master key that wraps new data keys (the first configured)."""
    return configured_master_keys()[0]


def master_key(key_id: str) -> bytes:
    """The master key with this id; a clear :class:`MasterKeyError` if it is not configured (any more)."""
    keys = configured_master_keys()
    for candidate_id, key in keys:
        if candidate_id == key_id:
            return key
    known = ", ".join(candidate_id for candidate_id, _ in keys)
    raise MasterKeyError(
        f"master key {key_id!r} is not configured (configured: {known}). Keep an old key after the current "
        "one in CARNET_MASTER_KEY until `rotate_master_key` has re-wrapped everything it protects."
    )


def format_master_key(key_id: str, key: bytes) -> str:
    if not _KEY_ID_RE.match(key_id) or len(key) != KEY_BYTES:
        raise MasterKeyError(f"cannot format key {key_id!r}: bad id or not {KEY_BYTES} bytes.")
    return f"{key_id}:{base64.b64encode(key).decode('ascii')}"


# --- Data keys ------------------------------------------------------------------------------------------


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def wrap_data_key(data_key: bytes) -> tuple[str, bytes]:
    """Wrap a data key with the current master key. Returns ``(master_key_id, wrapped_key)``."""
    if len(data_key) != KEY_BYTES:
        raise ValueError(f"a data key is {KEY_BYTES} bytes.")
    key_id, key = current_master_key()
    return key_id, _WRAP_VERSION + aes_key_wrap(key, data_key)


def unwrap_data_key(wrapped_key: bytes, master_key_id: str) -> bytes:
    """Unwrap a data key wrapped by the master key ``master_key_id``."""
    wrapped_key = bytes(wrapped_key)  # PostgreSQL hands BinaryField values back as memoryview
    key = master_key(master_key_id)
    if wrapped_key[:1] != _WRAP_VERSION or len(wrapped_key) != 1 + KEY_BYTES + 8:
        raise CorruptedBody("the wrapped data key has an unknown format or length.")
    try:
        return aes_key_unwrap(key, wrapped_key[1:])
    except InvalidUnwrap:
        raise MasterKeyError(
            f"the data key does not unwrap with master key {master_key_id!r}: the key configured under this "
            "id is not the one that wrapped it, or the wrapped key was altered."
        ) from None


def rewrap_data_key(wrapped_key: bytes, master_key_id: str) -> tuple[str, bytes]:
    """Key rotation: unwrap with the old master key, wrap with the current one. Bodies are untouched."""
    return wrap_data_key(unwrap_data_key(wrapped_key, master_key_id))


# --- Streaming chunked AEAD -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlainDigest:
    """Size and SHA-256 (hex) of the plaintext that went through :func:`encrypt_stream`."""

    size: int
    sha256: str


def read_chunks(fileobj: BinaryIO, chunk_size: int = CHUNK_SIZE, *, limit: int | None = None) -> Iterator[bytes]:
    """Read ``fileobj`` in chunks of exactly ``chunk_size`` bytes (the last may be shorter, never empty).

    With ``limit``, stop after ``limit`` bytes in total: a caller enforcing a size cap never reads more than
    the cap plus one byte, whatever the file's length.
    """
    remaining = limit
    while remaining is None or remaining > 0:
        want = chunk_size if remaining is None else min(chunk_size, remaining)
        chunk = _read_exactly(fileobj, want)
        if not chunk:
            return
        if remaining is not None:
            remaining -= len(chunk)
        yield chunk
        if len(chunk) < want:
            return


def _read_exactly(fileobj: IO[bytes], size: int) -> bytes:
    """Read ``size`` bytes, looping over short reads; fewer only at end of file."""
    data = fileobj.read(size)
    if data is None:
        raise OSError("non-blocking file objects are not supported.")
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = fileobj.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class _Sha256:
    """SHA-256 of a stream, computed on a helper thread once the stream is longer than one chunk.

    hashlib and AES-GCM both release the GIL on large buffers, so hashing chunk n while chunk n is encrypted
    and written (or read and decrypted) overlaps the two costs: SHA-256 is the slowest stage of the pipeline
    (about as slow as AES-GCM, file reads and writes together). At most one update is in flight, which keeps
    the order and holds no buffer the caller does not already hold. Single-chunk bodies (most documents) are
    hashed inline: no thread.
    """

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        self._chunks = 0

    def update(self, data: bytes) -> None:
        self._wait()
        self._chunks += 1
        if self._chunks == 1:
            self._digest.update(data)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="carnet-sha256")
        self._pending = self._pool.submit(self._digest.update, data)

    def hexdigest(self) -> str:
        self._wait()
        return self._digest.hexdigest()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()


def _chunk_nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _chunk_aad(header: bytes, index: int, final: bool) -> bytes:
    # The header carries the format version, chunk size and nonce prefix; index and final flag stop
    # reordering, duplication and truncation at a chunk boundary.
    return header + struct.pack(">QB", index, 1 if final else 0)


def encrypt_stream(
    chunks: Iterable[bytes],
    dst: BinaryIO,
    data_key: bytes,
    *,
    chunk_size: int = CHUNK_SIZE,
    max_bytes: int | None = None,
) -> PlainDigest:
    """Encrypt plaintext ``chunks`` (as from :func:`read_chunks`) into ``dst``; return size and SHA-256.

    Every chunk but the last must be exactly ``chunk_size`` bytes. The final flag needs one chunk of
    look-ahead, so at most two plaintext chunks and one ciphertext chunk are alive at a time. An empty input
    still produces one (empty) final chunk, so an emptied file cannot pass for an empty document.
    Raises :class:`BodyTooLarge` as soon as more than ``max_bytes`` have been seen.
    """
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk size must be between 1 and {MAX_CHUNK_SIZE} bytes.")
    aead = AESGCM(data_key)
    prefix = secrets.token_bytes(8)
    header = _HEADER.pack(_BODY_MAGIC, _BODY_VERSION, chunk_size, prefix)
    dst.write(header)
    digest = _Sha256()
    try:
        size = 0
        index = 0
        iterator = iter(chunks)
        current = next(iterator, b"")
        while True:
            following = next(iterator, None)
            final = following is None
            if len(current) > chunk_size or (not final and len(current) != chunk_size):
                raise ValueError("every chunk but the last must be exactly chunk_size bytes.")
            size += len(current)
            if max_bytes is not None and size > max_bytes:
                raise BodyTooLarge(f"more than {max_bytes} bytes.")
            if index >= _MAX_CHUNKS:
                raise ValueError("body too long for the chunk counter.")
            digest.update(current)
            dst.write(aead.encrypt(_chunk_nonce(prefix, index), current, _chunk_aad(header, index, final)))
            if following is None:
                return PlainDigest(size=size, sha256=digest.hexdigest())
            current = following
            index += 1
    finally:
        digest.close()


def decrypt_stream(
    src: IO[bytes],
    data_key: bytes,
    *,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
) -> Iterator[bytes]:
    """Decrypt a body written by :func:`encrypt_stream`, yielding authenticated plaintext chunks.

    Each chunk is yielded only after its tag verified. A chunk is decrypted as final exactly when nothing
    follows it, so a stream cut at a chunk boundary, or extended past its final chunk, fails. With
    ``expected_size``/``expected_sha256`` the final chunk is held back until the whole body matched them, so a
    consumer never receives a complete body that fails the integrity check (rule D).
    """
    header = _read_exactly(src, HEADER_BYTES)
    if len(header) != HEADER_BYTES:
        raise CorruptedBody("the body is shorter than its header.")
    magic, version, chunk_size, prefix = _HEADER.unpack(header)
    if magic != _BODY_MAGIC or version != _BODY_VERSION:
        raise CorruptedBody("the body has an unknown format or version.")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise CorruptedBody("the body header announces an impossible chunk size.")
    aead = AESGCM(data_key)
    sealed_size = chunk_size + TAG_BYTES
    check = expected_sha256 is not None
    digest = _Sha256()
    try:
        size = 0
        index = 0
        current = _read_exactly(src, sealed_size)
        while True:
            if len(current) < TAG_BYTES:
                raise CorruptedBody(f"chunk {index} is truncated or missing.")
            following = _read_exactly(src, sealed_size) if len(current) == sealed_size else b""
            final = not following
            try:
                plain = aead.decrypt(_chunk_nonce(prefix, index), current, _chunk_aad(header, index, final))
            except InvalidTag:
                raise CorruptedBody(
                    f"chunk {index} failed authentication (altered, reordered, truncated or wrong key)."
                ) from None
            size += len(plain)
            if check:
                digest.update(plain)
            if final:
                if expected_size is not None and size != expected_size:
                    raise CorruptedBody(f"the body is {size} bytes, its record says {expected_size}.")
                if expected_sha256 is not None and not hmac.compare_digest(digest.hexdigest(), expected_sha256):
                    raise CorruptedBody("the body's SHA-256 does not match its record.")
                if plain:
                    yield plain
                return
            yield plain
            current = following
            index += 1
    finally:
        digest.close()


def encrypt_file(src: BinaryIO, dst: BinaryIO, data_key: bytes, *, chunk_size: int = CHUNK_SIZE) -> PlainDigest:
    """Convenience: encrypt a whole file object into another."""
    return encrypt_stream(read_chunks(src, chunk_size), dst, data_key, chunk_size=chunk_size)


# --- Small sealed secrets -------------------------------------------------------------------------------


def seal(data: bytes) -> bytes:
    """Encrypt a small secret with the current master key; the result names the key id it used."""
    key_id, key = current_master_key()
    prefix = bytes([_SEAL_VERSION, len(key_id)]) + key_id.encode("ascii")
    nonce = secrets.token_bytes(12)
    return prefix + nonce + AESGCM(key).encrypt(nonce, bytes(data), prefix)


def sealed_key_id(blob: bytes) -> str:
    """The id of the master key that sealed ``blob`` (without opening it)."""
    blob = bytes(blob)
    if len(blob) < 2 or blob[0] != _SEAL_VERSION or len(blob) < 2 + blob[1] + 12 + TAG_BYTES:
        raise CorruptedBody("the sealed value has an unknown format or is truncated.")
    try:
        return blob[2 : 2 + blob[1]].decode("ascii")
    except UnicodeDecodeError:
        raise CorruptedBody("the sealed value names an invalid key id.") from None


def unseal(blob: bytes) -> bytes:
    """Open a value made by :func:`seal` (with whichever configured master key sealed it)."""
    blob = bytes(blob)
    key_id = sealed_key_id(blob)
    key = master_key(key_id)
    split = 2 + len(key_id)
    nonce, ciphertext = blob[split : split + 12], blob[split + 12 :]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, blob[:split])
    except InvalidTag:
        raise CorruptedBody(
            f"the sealed value does not open with master key {key_id!r}: wrong key under this id, or altered."
        ) from None


def reseal(blob: bytes) -> bytes:
    """Key rotation for sealed values: open with the key that sealed it, seal with the current one."""
    return seal(unseal(blob))


# --- Rotation registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrappedKeyField:
    """A model column holding a wrapped data key, with the column naming its master key."""

    model: str  # "app_label.ModelName"
    key_field: str = "wrapped_key"
    id_field: str = "master_key_id"


@dataclass(frozen=True)
class SealedField:
    """A model column holding a value made by :func:`seal` (self-describing its key id)."""

    model: str
    field: str


_ROTATION_REGISTRY: list[WrappedKeyField | SealedField] = []


def register_wrapped_keys(model: str, *, key_field: str = "wrapped_key", id_field: str = "master_key_id") -> None:
    """Make ``rotate_master_key`` re-wrap this model's data keys (call from an AppConfig.ready())."""
    entry = WrappedKeyField(model, key_field, id_field)
    if entry not in _ROTATION_REGISTRY:
        _ROTATION_REGISTRY.append(entry)


def register_sealed_field(model: str, field: str) -> None:
    """Make ``rotate_master_key`` re-seal this model's sealed values (call from an AppConfig.ready())."""
    entry = SealedField(model, field)
    if entry not in _ROTATION_REGISTRY:
        _ROTATION_REGISTRY.append(entry)


def rotation_registry() -> tuple[WrappedKeyField | SealedField, ...]:
    return tuple(_ROTATION_REGISTRY)


register_wrapped_keys("records.Document")
# A pending pre-opening notice keeps its provisional code sealed for weeks (L1, N7): re-seal it too, or
# removing the old master key would make those notices undeliverable.
register_sealed_field("notifications.Notice", "sealed_payload")
