"""The encrypted document store (rule D, A10): content types from bytes, size limits, reads, key rotation."""

import base64
import datetime
import gc
import hashlib
import io
import os
import sys
import tracemalloc
from pathlib import Path

import pypdf
import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone
from PIL import Image

from notifications.models import Notice
from records import content_types, crypto, storage
from records.crypto import CorruptedBody, MasterKeyError
from records.models import Document, DocumentType, Profile
from records.storage import PATIENT_TYPES, PRACTITIONER_TYPES, RejectedFile

MIB = 1024 * 1024
LIMIT = 5 * MIB

CDA = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    b'<typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>'
    b'<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/></ClinicalDocument>'
)


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(out, fmt)
    return out.getvalue()


def _pdf() -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(595, 842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle


def _stored_files() -> list[Path]:
    root = Path(django_settings.STORAGES["documents"]["OPTIONS"]["location"])
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def _body_path(storage_key: str) -> Path:
    return Path(django_settings.STORAGES["documents"]["OPTIONS"]["location"]) / storage_key


@pytest.fixture
def profile(db):
    return Profile.objects.create(
        nir="137047624348415",
        birth_name="MARTIN",
        first_names="Alice",
        birth_date=datetime.date(1970, 4, 7),
        sex=Profile.Sex.FEMALE,
        state=Profile.State.ACTIVE,
    )


@pytest.fixture
def deposit(profile):
    """Store a body and record it as a patient's document, as the deposit action will."""

    def _deposit(data: bytes, name: str = "document.pdf") -> Document:
        stored = storage.store_body(_named(data, name), max_bytes=LIMIT, allowed_types=PATIENT_TYPES)
        return Document.objects.create(
            profile=profile,
            document_type=DocumentType.objects.get(code="DOCPAT01"),
            title="Mes analyses",
            care_date=datetime.date(2025, 1, 15),
            author_kind=Document.AuthorKind.PATIENT,
            deposited_at=timezone.now(),
            size=stored.size,
            content_type=stored.content_type,
            original_name=name,
            sha256=stored.sha256,
            storage_key=stored.storage_key,
            wrapped_key=stored.wrapped_key,
            master_key_id=stored.master_key_id,
        )

    return _deposit


def _read(document: Document) -> bytes:
    document.refresh_from_db()
    return b"".join(storage.read_body(document))


# --- content type from the bytes (D, A10) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_pdf(), content_types.PDF),
        (_image("PNG"), content_types.PNG),
        (_image("JPEG"), content_types.JPEG),
        (_image("TIFF"), content_types.TIFF),
        (b"{\\rtf1\\ansi\\deff0 {\\fonttbl {\\f0 Times;}} Compte rendu}", content_types.RTF),
        ("Tension 12/8, à revoir dans 3 mois.\n".encode(), content_types.TEXT),
        ("Tension 12/8, à revoir dans 3 mois.\n".encode("latin-1"), content_types.TEXT),
    ],
)
def test_accepted_formats_are_detected_from_bytes__A10(db, data, expected):
    stored = storage.store_body(_named(data, "sans-extension"), max_bytes=LIMIT, allowed_types=PATIENT_TYPES)
    assert stored.content_type == expected
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert len(_stored_files()) == 1


@pytest.mark.parametrize(
    "data",
    [
        b"<!DOCTYPE html><html><head><title>Facture</title></head><body><script>x()</script></body></html>",
        open(sys.executable, "rb").read(4096),  # an ELF executable  # noqa: SIM115
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200,  # a Windows executable
        b"PK\x03\x04" + b"\x00" * 100,  # a zip archive
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>x()</script></svg>',
        os.urandom(4096),
    ],
    ids=["html", "elf", "exe", "zip", "svg", "random"],
)
def test_disguised_file_named_pdf_is_refused_and_nothing_kept__D(db, data):
    with pytest.raises(RejectedFile) as refused:
        storage.store_body(_named(data, "compte-rendu.pdf"), max_bytes=LIMIT, allowed_types=PATIENT_TYPES)
    assert refused.value.code == "file_type"
    assert "Ce type de fichier n'est pas accepté" in refused.value.messages[0]
    assert "PDF, JPEG, PNG, TIFF, RTF" in refused.value.messages[0]
    assert _stored_files() == []


def test_cda_is_accepted_from_practitioners_only__D(db):
    stored = storage.store_body(io.BytesIO(CDA), max_bytes=LIMIT, allowed_types=PRACTITIONER_TYPES)
    assert stored.content_type == content_types.CDA_XML
    without_declaration = CDA.split(b"\n", 1)[1]
    assert content_types.detect_content_type(without_declaration) == content_types.CDA_XML
    with pytest.raises(RejectedFile):
        storage.store_body(io.BytesIO(CDA), max_bytes=LIMIT, allowed_types=PATIENT_TYPES)


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><ClinicalDocument xmlns="urn:other"/>',
        b'<?xml version="1.0"?><note><to>Tove</to></note>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><ClinicalDocument xmlns="urn:hl7-org:v3"/>',
    ],
    ids=["wrong-namespace", "other-xml", "dtd"],
)
def test_xml_that_is_not_a_plain_cda_is_refused__D(data):
    assert content_types.detect_content_type(data) is None


def test_empty_file_is_refused__A10(db):
    with pytest.raises(RejectedFile) as refused:
        storage.store_body(io.BytesIO(b""), max_bytes=LIMIT, allowed_types=PATIENT_TYPES)
    assert refused.value.code == "file_empty"


# --- size limit while streaming (A10) -------------------------------------------------------------------


class CountingReader(io.RawIOBase):
    """An endless PDF-looking stream that counts what is read from it."""

    def __init__(self):
        self.consumed = 0

    def readable(self):
        return True

    def read(self, size=-1):
        assert size > 0, "the store must never ask for the whole file"
        chunk = (b"%PDF-1.7\n" if self.consumed == 0 else b"") + b"0" * size
        chunk = chunk[:size]
        self.consumed += len(chunk)
        return chunk


@pytest.mark.parametrize("max_bytes", [LIMIT, 3 * MIB + 1, 1000])
def test_over_limit_is_refused_without_reading_on_or_keeping_anything__A10(db, max_bytes):
    source = CountingReader()
    with pytest.raises(RejectedFile) as refused:
        storage.store_body(source, max_bytes=max_bytes, allowed_types=PATIENT_TYPES)
    assert refused.value.code == "file_too_large"
    assert source.consumed == max_bytes + 1
    assert _stored_files() == []


def test_size_limit_message_says_the_limit_in_megabytes__A10(db):
    with pytest.raises(RejectedFile) as refused:
        storage.store_body(io.BytesIO(b"a" * (LIMIT + 1)), max_bytes=LIMIT, allowed_types=PATIENT_TYPES)
    assert "5 Mo" in refused.value.messages[0]
    with pytest.raises(RejectedFile) as refused:
        storage.store_body(io.BytesIO(b"a" * (LIMIT + 1)), max_bytes=LIMIT // 2, allowed_types=PATIENT_TYPES)
    assert "2,5 Mo" in refused.value.messages[0]


def test_body_of_exactly_the_limit_is_accepted__A10(deposit):
    data = b"a" * LIMIT
    assert _read(deposit(data)) == data


# --- round trips, keys and tampering through the store (D) ----------------------------------------------


# One-byte and empty bodies round-trip in test_crypto; libmagic types nothing shorter than 2 bytes.
@pytest.mark.parametrize("size", [2, 2 * MIB, 2 * MIB + 12345])
def test_store_and_read_round_trip__D(deposit, size):
    data = b"%PDF-1.7\n" + os.urandom(size - 9) if size > 9 else b"ok"
    document = deposit(data)
    assert _read(document) == data
    assert document.size == size
    assert data[:64] not in _body_path(document.storage_key).read_bytes()


def test_storage_keys_are_random_and_sharded__D(deposit):
    first, second = deposit(b"note un"), deposit(b"note un")
    assert first.storage_key != second.storage_key
    for key in (first.storage_key, second.storage_key):
        shard_a, shard_b, name = key.split("/")
        assert (shard_a, shard_b) == (name[:2], name[2:4]) and len(name) == 32
        int(name, 16)
    assert first.wrapped_key != second.wrapped_key  # a fresh data key per document


def test_flipped_bit_on_disk_is_detected_on_read__D(deposit):
    document = deposit(b"%PDF-1.7\n" + os.urandom(MIB + 100))
    path = _body_path(document.storage_key)
    body = bytearray(path.read_bytes())
    body[len(body) // 2] ^= 0x10
    path.write_bytes(bytes(body))
    with pytest.raises(CorruptedBody):
        _read(document)


def test_truncated_body_is_detected_on_read__D(deposit):
    document = deposit(b"%PDF-1.7\n" + os.urandom(2 * MIB))
    path = _body_path(document.storage_key)
    path.write_bytes(path.read_bytes()[: crypto.HEADER_BYTES + MIB + crypto.TAG_BYTES])  # last chunk dropped
    with pytest.raises(CorruptedBody):
        _read(document)


def test_checksum_mismatch_is_detected_and_last_chunk_withheld__D(deposit):
    document = deposit(b"note courte")
    Document.objects.filter(pk=document.pk).update(sha256="0" * 64)
    document.refresh_from_db()
    chunks = storage.read_body(document)
    with pytest.raises(CorruptedBody, match="SHA-256"):
        next(chunks)


def test_missing_body_is_reported_as_corrupted__D(deposit):
    document = deposit(b"note courte")
    storage.delete_body(document.storage_key)
    assert _stored_files() == []
    with pytest.raises(CorruptedBody, match="missing"):
        _read(document)


def test_wrong_master_key_is_a_clear_error_before_any_byte__D(deposit, settings):
    document = deposit(b"note courte")
    settings.CARNET_MASTER_KEY = "test1:" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(MasterKeyError, match="does not unwrap with master key 'test1'"):
        storage.read_body(document)
    settings.CARNET_MASTER_KEY = "test2:" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(MasterKeyError, match="'test1' is not configured"):
        storage.read_body(document)


# --- key rotation (D) -----------------------------------------------------------------------------------


def _new_key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def test_generate_master_key_prints_a_usable_key__D(capsys):
    call_command("generate_master_key", "--id", "k2026")
    value = capsys.readouterr().out.strip()
    [(key_id, key)] = crypto.parse_master_keys(value)
    assert key_id == "k2026" and len(key) == 32
    with pytest.raises(CommandError):
        call_command("generate_master_key", "--id", "bad id")


def test_rotation_rewraps_keys_without_touching_bodies__D(deposit, profile, settings, capsys):
    documents = [deposit(f"note {i}".encode()) for i in range(7)]
    bodies = {d.pk: _body_path(d.storage_key).read_bytes() for d in documents}
    mtimes = {d.pk: _body_path(d.storage_key).stat().st_mtime_ns for d in documents}
    notice = Notice.objects.create(
        kind=Notice.Kind.PRE_OPENING,
        profile=profile,
        channel=Notice.Channel.LETTER,
        dedupe_key="pre_opening:test",
        created_at=timezone.now(),
        deliver_after=timezone.now(),
        sealed_payload=crypto.seal(b"K7Q2-M9XA"),
    )
    old = settings.CARNET_MASTER_KEY
    settings.CARNET_MASTER_KEY = f"{_new_key('test2')},{old}"

    call_command("rotate_master_key", "--batch-size", "3")
    out = capsys.readouterr().out
    assert "records.Document: 7 data keys re-wrapped, 0 already on test2, 0 failed" in out
    assert "notifications.Notice: 1 sealed values re-sealed" in out

    settings.CARNET_MASTER_KEY = settings.CARNET_MASTER_KEY.split(",")[0]  # the old key is removed
    for document in documents:
        document.refresh_from_db()
        assert document.master_key_id == "test2"
        assert _read(document) == f"note {documents.index(document)}".encode()
        assert _body_path(document.storage_key).read_bytes() == bodies[document.pk]
        assert _body_path(document.storage_key).stat().st_mtime_ns == mtimes[document.pk]
    notice.refresh_from_db()
    assert crypto.unseal(notice.sealed_payload) == b"K7Q2-M9XA"

    call_command("rotate_master_key")  # idempotent
    out = capsys.readouterr().out
    assert "records.Document: 0 data keys re-wrapped, 7 already on test2, 0 failed" in out
    assert "notifications.Notice: 0 sealed values re-sealed, 1 already on test2, 0 failed" in out


def test_rotation_dry_run_changes_nothing__D(deposit, settings, capsys):
    document = deposit(b"note")
    settings.CARNET_MASTER_KEY = f"{_new_key('test2')},{settings.CARNET_MASTER_KEY}"
    call_command("rotate_master_key", "--dry-run")
    assert "1 would be data keys re-wrapped" in capsys.readouterr().out
    document.refresh_from_db()
    assert document.master_key_id == "test1"


def test_rotation_reports_rows_whose_key_is_missing__D(deposit, settings, capsys):
    readable = deposit(b"note")
    orphan = deposit(b"autre note")
    Document.objects.filter(pk=orphan.pk).update(master_key_id="gone")
    settings.CARNET_MASTER_KEY = f"{_new_key('test2')},{settings.CARNET_MASTER_KEY}"
    with pytest.raises(CommandError, match="1 row"):
        call_command("rotate_master_key")
    readable.refresh_from_db()
    orphan.refresh_from_db()
    assert (readable.master_key_id, orphan.master_key_id) == ("test2", "gone")
    assert f"records.Document #{orphan.pk}" in capsys.readouterr().err


# --- bounded memory (D) ---------------------------------------------------------------------------------


def test_50_mb_body_streams_in_bounded_memory__D(deposit, tmp_path):
    size = 50 * MIB
    source = tmp_path / "scan.pdf"
    digest = hashlib.sha256()
    with source.open("wb") as handle:
        handle.write(b"%PDF-1.7\n")
        digest.update(b"%PDF-1.7\n")
        block = os.urandom(MIB)
        for _ in range(50):
            handle.write(block)
            digest.update(block)
        handle.write(b"%%EOF\n")
        digest.update(b"%%EOF\n")
    del block
    gc.collect()

    tracemalloc.start()
    try:
        with source.open("rb") as handle:
            stored = storage.store_body(handle, max_bytes=60 * MIB, allowed_types=PATIENT_TYPES)
        _, store_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        document = Document(
            storage_key=stored.storage_key,
            wrapped_key=stored.wrapped_key,
            master_key_id=stored.master_key_id,
            size=stored.size,
            sha256=stored.sha256,
        )
        read_digest = hashlib.sha256()
        for chunk in storage.read_body(document):
            read_digest.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stored.size == size + 15
    assert read_digest.hexdigest() == stored.sha256 == digest.hexdigest()
    print(f"peak traced allocation: store {store_peak / MIB:.2f} MiB, read {read_peak / MIB:.2f} MiB")
    assert store_peak < 6 * MIB
    assert read_peak < 6 * MIB


# --- the S3 back end (production), in-process through moto ----------------------------------------------


@pytest.fixture
def s3_documents(settings):
    from moto import mock_aws

    with mock_aws():
        import boto3

        client = boto3.client("s3", region_name="eu-west-3", aws_access_key_id="t", aws_secret_access_key="t")
        client.create_bucket(Bucket="carnet-documents", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
        settings.STORAGES = {
            **settings.STORAGES,
            "documents": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {
                    "bucket_name": "carnet-documents",
                    "region_name": "eu-west-3",
                    "access_key": "t",
                    "secret_key": "t",
                    "default_acl": "private",
                    "file_overwrite": False,
                },
            },
        }
        yield lambda: sorted(o["Key"] for o in client.list_objects_v2(Bucket="carnet-documents").get("Contents", []))


def test_s3_round_trip_reads_the_object_as_a_stream__D(s3_documents, deposit, monkeypatch):
    from storages.backends.s3 import S3File

    data = b"%PDF-1.7\n" + os.urandom(2 * MIB + 777)
    document = deposit(data)
    assert s3_documents() == [document.storage_key]

    def whole_object_download(self):
        raise AssertionError("S3File downloads the whole object into memory before the first byte")

    monkeypatch.setattr(S3File, "file", property(whole_object_download))
    assert _read(document) == data


def test_s3_refused_file_leaves_no_object__A10(s3_documents, db):
    with pytest.raises(RejectedFile):
        storage.store_body(CountingReader(), max_bytes=MIB, allowed_types=PATIENT_TYPES)
    with pytest.raises(RejectedFile):
        storage.store_body(io.BytesIO(b"<html><body>x</body></html>"), max_bytes=MIB, allowed_types=PATIENT_TYPES)
    assert s3_documents() == []


def test_s3_deleted_body_reads_as_missing__D(s3_documents, deposit):
    document = deposit(b"note courte")
    storage.delete_body(document.storage_key)
    assert s3_documents() == []
    with pytest.raises(CorruptedBody, match="missing"):
        _read(document)
