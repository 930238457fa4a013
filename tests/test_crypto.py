"""Encryption layer of the document store (rule D): master keys, data keys, streaming AEAD, sealed values."""

import base64
import io
import os
import stat

import pytest

from records import crypto
from records.crypto import CorruptedBody, MasterKeyError

CHUNK = 16  # small chunks make multi-chunk bodies and every tampering position cheap to test


def _b64(n: int) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def _encrypt(plain: bytes, key: bytes, chunk_size: int = CHUNK) -> tuple[bytes, crypto.PlainDigest]:
    out = io.BytesIO()
    digest = crypto.encrypt_stream(crypto.read_chunks(io.BytesIO(plain), chunk_size), out, key, chunk_size=chunk_size)
    return out.getvalue(), digest


def _decrypt(blob: bytes, key: bytes, **expected) -> bytes:
    return b"".join(crypto.decrypt_stream(io.BytesIO(blob), key, **expected))


def _split(blob: bytes, chunk_size: int = CHUNK) -> tuple[bytes, list[bytes]]:
    header, rest = blob[: crypto.HEADER_BYTES], blob[crypto.HEADER_BYTES :]
    step = chunk_size + crypto.TAG_BYTES
    return header, [rest[i : i + step] for i in range(0, len(rest), step)]


# --- parse_master_keys ----------------------------------------------------------------------------------


def test_parse_master_keys_reads_current_key_first__D():
    first, second = os.urandom(32), os.urandom(32)
    value = f"k2:{base64.b64encode(first).decode()}, k1:{base64.b64encode(second).decode()}"
    assert crypto.parse_master_keys(value) == [("k2", first), ("k1", second)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "no master key"),
        ("   ", "no master key"),
        ("nocolon", "has no ':'"),
        (f":{_b64(32)}", "key id '' is invalid"),
        (f"bad id:{_b64(32)}", "key id 'bad id' is invalid"),
        (f"{'x' * 33}:{_b64(32)}", "is invalid"),
        ("k1:not base64!", "not valid base64"),
        (f"k1:{_b64(16)}", "is 16 bytes long"),
        (f"k1:{_b64(64)}", "is 64 bytes long"),
        (f"k1:{_b64(32)},", "entry 2 is empty"),
        (f"k1:{_b64(32)},k1:{_b64(32)}", "appears twice"),
    ],
)
def test_parse_master_keys_refuses_bad_input_clearly__D(value, message):
    with pytest.raises(MasterKeyError, match=message):
        crypto.parse_master_keys(value)


def test_master_key_is_read_from_settings_at_call_time__D(settings):
    settings.CARNET_MASTER_KEY = f"later:{_b64(32)}"
    assert crypto.current_master_key()[0] == "later"


def test_unknown_master_key_id_names_the_configured_ones__D(settings):
    with pytest.raises(MasterKeyError, match=r"'gone' is not configured \(configured: test1\)"):
        crypto.master_key("gone")


def test_debug_without_key_creates_a_private_development_key__D(settings, tmp_path):
    settings.DEBUG = True
    settings.CARNET_MASTER_KEY = None
    settings.VAR_DIR = tmp_path / "var"
    key_id, key = crypto.current_master_key()
    path = tmp_path / "var" / crypto.DEV_KEY_FILE
    assert key_id == crypto.DEV_KEY_ID and len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [crypto.DEV_KEY_FILE]  # no draft left behind
    assert crypto.current_master_key() == (key_id, key)  # reused, not regenerated


def test_production_without_key_refuses_to_encrypt__D(settings, tmp_path):
    settings.DEBUG = False
    settings.CARNET_MASTER_KEY = None
    settings.VAR_DIR = tmp_path
    with pytest.raises(MasterKeyError, match="CARNET_MASTER_KEY is not set"):
        crypto.wrap_data_key(crypto.new_data_key())
    assert not (tmp_path / crypto.DEV_KEY_FILE).exists()


# --- data keys ------------------------------------------------------------------------------------------


def test_data_key_wraps_and_unwraps_with_named_master_key__D():
    data_key = crypto.new_data_key()
    key_id, wrapped = crypto.wrap_data_key(data_key)
    assert key_id == "test1" and data_key not in wrapped
    assert crypto.unwrap_data_key(memoryview(wrapped), key_id) == data_key


def test_unwrap_with_wrong_master_key_is_a_clear_error__D(settings):
    key_id, wrapped = crypto.wrap_data_key(crypto.new_data_key())
    settings.CARNET_MASTER_KEY = f"test1:{_b64(32)}"  # same id, different key: a misconfiguration
    with pytest.raises(MasterKeyError, match="does not unwrap with master key 'test1'"):
        crypto.unwrap_data_key(wrapped, key_id)


def test_rewrap_moves_data_key_to_current_master_key__D(settings):
    data_key = crypto.new_data_key()
    old_id, wrapped = crypto.wrap_data_key(data_key)
    settings.CARNET_MASTER_KEY = f"test2:{_b64(32)},{settings.CARNET_MASTER_KEY}"
    new_id, rewrapped = crypto.rewrap_data_key(wrapped, old_id)
    assert new_id == "test2"
    settings.CARNET_MASTER_KEY = settings.CARNET_MASTER_KEY.split(",")[0]
    assert crypto.unwrap_data_key(rewrapped, new_id) == data_key


# --- streaming round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK, 3 * CHUNK + 5])
def test_stream_round_trip__D(size):
    key = crypto.new_data_key()
    plain = os.urandom(size)
    blob, digest = _encrypt(plain, key)
    assert digest.size == size
    assert _decrypt(blob, key, expected_size=size, expected_sha256=digest.sha256) == plain
    assert size < 8 or plain not in blob  # a byte or two may occur in ciphertext by chance


@pytest.mark.parametrize("size", [0, 1, crypto.CHUNK_SIZE, 2 * crypto.CHUNK_SIZE, 2 * crypto.CHUNK_SIZE + 7])
def test_stream_round_trip_with_default_chunks__D(size):
    key = crypto.new_data_key()
    plain = os.urandom(size)
    blob, digest = _encrypt(plain, key, crypto.CHUNK_SIZE)
    chunks = list(crypto.decrypt_stream(io.BytesIO(blob), key, expected_sha256=digest.sha256))
    assert b"".join(chunks) == plain
    assert all(len(chunk) <= crypto.CHUNK_SIZE for chunk in chunks)


def test_each_file_gets_its_own_nonce_prefix__D():
    key = crypto.new_data_key()
    first, _ = _encrypt(b"same bytes", key)
    second, _ = _encrypt(b"same bytes", key)
    assert first != second


def test_short_reads_are_rechunked_exactly__D():
    class Trickle(io.RawIOBase):
        def __init__(self, data):
            self.data = data

        def readable(self):
            return True

        def read(self, size=-1):
            step = 3 if size < 0 else min(3, size)
            piece, self.data = self.data[:step], self.data[step:]
            return piece

    plain = os.urandom(100)
    chunks = list(crypto.read_chunks(Trickle(plain), CHUNK))
    assert b"".join(chunks) == plain
    assert [len(c) for c in chunks] == [CHUNK] * 6 + [4]


def test_size_cap_stops_reading__D():
    source = io.BytesIO(b"x" * 1000)
    key = crypto.new_data_key()
    with pytest.raises(crypto.BodyTooLarge):
        crypto.encrypt_stream(
            crypto.read_chunks(source, CHUNK, limit=51), io.BytesIO(), key, chunk_size=CHUNK, max_bytes=50
        )
    assert source.tell() == 51


# --- tamper detection -----------------------------------------------------------------------------------


@pytest.fixture
def sealed_body():
    key = crypto.new_data_key()
    plain = os.urandom(3 * CHUNK + 5)
    blob, digest = _encrypt(plain, key)
    return key, plain, blob, digest


def test_flipping_any_bit_is_detected__D(sealed_body):
    key, _, blob, _ = sealed_body
    for position in range(len(blob)):
        for bit in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[position] ^= bit
            with pytest.raises(CorruptedBody):
                _decrypt(bytes(tampered), key)


def test_truncating_anywhere_is_detected__D(sealed_body):
    key, _, blob, _ = sealed_body
    for length in range(len(blob)):
        with pytest.raises(CorruptedBody):
            _decrypt(blob[:length], key)


@pytest.mark.parametrize("size", [3 * CHUNK, 3 * CHUNK + 5])
def test_dropping_the_last_chunk_is_detected__D(size):
    key = crypto.new_data_key()
    blob, _ = _encrypt(os.urandom(size), key)
    header, chunks = _split(blob)
    with pytest.raises(CorruptedBody, match="failed authentication"):
        _decrypt(header + b"".join(chunks[:-1]), key)


def test_swapping_two_chunks_is_detected__D(sealed_body):
    key, _, blob, _ = sealed_body
    header, chunks = _split(blob)
    chunks[0], chunks[1] = chunks[1], chunks[0]
    with pytest.raises(CorruptedBody, match="chunk 0"):
        _decrypt(header + b"".join(chunks), key)


def test_duplicating_or_appending_a_chunk_is_detected__D(sealed_body):
    key, _, blob, _ = sealed_body
    header, chunks = _split(blob)
    for forged in (
        [chunks[0], chunks[0], *chunks[1:]],
        [*chunks, chunks[-1]],
        [*chunks[:-1], chunks[-2], chunks[-1]],
    ):
        with pytest.raises(CorruptedBody):
            _decrypt(header + b"".join(forged), key)
    with pytest.raises(CorruptedBody):
        _decrypt(blob + b"\x00", key)


def test_plaintext_before_a_bad_chunk_is_authenticated_plaintext_only__D(sealed_body):
    key, plain, blob, _ = sealed_body
    tampered = bytearray(blob)
    tampered[-1] ^= 1  # last tag
    received = []
    with pytest.raises(CorruptedBody):
        for chunk in crypto.decrypt_stream(io.BytesIO(bytes(tampered)), key):
            received.append(chunk)
    assert b"".join(received) == plain[: 3 * CHUNK]  # the verified chunks, never the forged one


def test_chunks_of_another_file_under_the_same_key_are_refused__D():
    key = crypto.new_data_key()
    first, _ = _encrypt(os.urandom(2 * CHUNK), key)
    second, _ = _encrypt(os.urandom(2 * CHUNK), key)
    header, chunks = _split(first)
    _, others = _split(second)
    with pytest.raises(CorruptedBody):
        _decrypt(header + chunks[0] + others[1], key)


def test_wrong_data_key_is_detected__D(sealed_body):
    _, _, blob, _ = sealed_body
    with pytest.raises(CorruptedBody):
        _decrypt(blob, crypto.new_data_key())


def test_header_announcing_a_huge_chunk_is_refused_before_reading__D(sealed_body):
    key, _, blob, _ = sealed_body
    forged = bytearray(blob)
    forged[5:9] = (2**31).to_bytes(4, "big")
    with pytest.raises(CorruptedBody, match="impossible chunk size"):
        _decrypt(bytes(forged), key)


def test_sha256_mismatch_holds_back_the_final_chunk__D(sealed_body):
    key, plain, blob, digest = sealed_body
    received = []
    with pytest.raises(CorruptedBody, match="SHA-256"):
        for chunk in crypto.decrypt_stream(io.BytesIO(blob), key, expected_sha256="0" * 64):
            received.append(chunk)
    assert b"".join(received) == plain[: 3 * CHUNK]
    with pytest.raises(CorruptedBody, match="bytes, its record says"):
        _decrypt(blob, key, expected_size=digest.size + 1)


# --- sealed small secrets -------------------------------------------------------------------------------


def test_seal_round_trip_names_its_master_key__D():
    blob = crypto.seal(b"K7Q2-M9XA")
    assert b"K7Q2-M9XA" not in blob
    assert crypto.sealed_key_id(blob) == "test1"
    assert crypto.unseal(memoryview(blob)) == b"K7Q2-M9XA"


def test_sealed_value_opens_after_a_new_key_is_put_first__D(settings):
    blob = crypto.seal(b"code")
    settings.CARNET_MASTER_KEY = f"test2:{_b64(32)},{settings.CARNET_MASTER_KEY}"
    assert crypto.unseal(blob) == b"code"
    resealed = crypto.reseal(blob)
    assert crypto.sealed_key_id(resealed) == "test2"
    settings.CARNET_MASTER_KEY = settings.CARNET_MASTER_KEY.split(",")[0]
    assert crypto.unseal(resealed) == b"code"
    with pytest.raises(MasterKeyError, match="'test1' is not configured"):
        crypto.unseal(blob)


def test_altered_or_wrongly_keyed_sealed_value_is_refused__D(settings):
    blob = crypto.seal(b"code")
    tampered = bytearray(blob)
    tampered[-3] ^= 4
    with pytest.raises(CorruptedBody):
        crypto.unseal(bytes(tampered))
    relabelled = bytearray(blob)
    relabelled[2:7] = b"test2"
    settings.CARNET_MASTER_KEY = f"test2:{_b64(32)},{settings.CARNET_MASTER_KEY}"
    with pytest.raises(CorruptedBody):
        crypto.unseal(bytes(relabelled))
    settings.CARNET_MASTER_KEY = f"test1:{_b64(32)}"
    with pytest.raises(CorruptedBody, match="does not open with master key 'test1'"):
        crypto.unseal(blob)
    with pytest.raises(CorruptedBody):
        crypto.unseal(b"\x01")
