"""Throughput and memory of the document store's encryption (rule D), disk to disk.

Writes a random file of --mb MiB in a temporary directory, then measures, over the same bytes:
- copy: a plain 1 MiB-buffered file copy (the I/O floor);
- encrypt: what store_body does after the type check: fresh data key, key wrap, chunked AES-256-GCM stream
  with SHA-256 of the plaintext, written to a file;
- decrypt: what read_body does: key unwrap, chunk-by-chunk authenticated decryption with the size and
  SHA-256 check, written to a file (and compared with the source digest);
- raw_aesgcm: one-shot AESGCM.encrypt over 1 MiB buffers read from the file, output discarded (the
  cryptographic ceiling).
Each figure is the best of --repeat runs. Files stay in the page cache, so this measures CPU cost, not the
disk. Prints one JSON line at the end. Django settings are configured in-process (a throwaway master key);
no database is used.

    .venv/bin/python bench/crypto.py [--mb 200] [--repeat 3]
"""

import argparse
import base64
import hashlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django.conf import settings  # noqa: E402

settings.configure(
    DEBUG=False,
    CARNET_MASTER_KEY="bench:" + base64.b64encode(os.urandom(32)).decode(),
    VAR_DIR=tempfile.gettempdir(),
)

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from records import crypto  # noqa: E402

MIB = 1024 * 1024


def _best(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    imports_rss = _peak_rss_mib()  # Python + django.conf + cryptography, before any work
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="body size in MiB (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure, best kept (default 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="carnet-bench-crypto-") as directory:
        root = Path(directory)
        source, sealed, opened, copied = (root / name for name in ("plain", "sealed", "opened", "copy"))
        digest = hashlib.sha256()
        with source.open("wb") as handle:
            for _ in range(args.mb):
                block = os.urandom(MIB)
                digest.update(block)
                handle.write(block)
        size = args.mb * MIB
        state: dict = {}

        def copy() -> None:
            with source.open("rb") as src, copied.open("wb") as dst:
                shutil.copyfileobj(src, dst, MIB)

        def encrypt() -> None:
            data_key = crypto.new_data_key()
            state["key_id"], state["wrapped"] = crypto.wrap_data_key(data_key)
            with source.open("rb") as src, sealed.open("wb") as dst:
                state["digest"] = crypto.encrypt_file(src, dst, data_key)

        def decrypt() -> None:
            data_key = crypto.unwrap_data_key(state["wrapped"], state["key_id"])
            check = hashlib.sha256()
            with sealed.open("rb") as src, opened.open("wb") as dst:
                for chunk in crypto.decrypt_stream(
                    src, data_key, expected_size=size, expected_sha256=state["digest"].sha256
                ):
                    dst.write(chunk)
                    check.update(chunk)  # the consumer's own view, compared with the source below
            state["check"] = check.hexdigest()

        def raw_aesgcm() -> None:
            aead = AESGCM(AESGCM.generate_key(bit_length=256))
            nonce = os.urandom(12)
            with source.open("rb") as src:
                while block := src.read(MIB):
                    aead.encrypt(nonce, block, None)  # throwaway key: nonce reuse is harmless here

        copy_s = _best(args.repeat, copy)
        encrypt_s = _best(args.repeat, encrypt)
        decrypt_s = _best(args.repeat, decrypt)
        raw_s = _best(args.repeat, raw_aesgcm)
        if state["digest"].sha256 != digest.hexdigest() or state["check"] != digest.hexdigest():
            raise SystemExit("round trip mismatch")
        overhead = sealed.stat().st_size - size

    mib = size / MIB
    result = {
        "bytes": size,
        "encrypt_mib_s": round(mib / encrypt_s, 1),
        "decrypt_mib_s": round(mib / decrypt_s, 1),
        "raw_aesgcm_mib_s": round(mib / raw_s, 1),
        "copy_mib_s": round(mib / copy_s, 1),
        "ratio_to_raw": round(raw_s / encrypt_s, 3),
        "peak_rss_mib": _peak_rss_mib(),
    }
    print(
        f"ciphertext overhead: {overhead} bytes for {size} bytes; peak RSS after imports: {imports_rss} MiB",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
