"""Benchmark: server time of the practitioner portal's "open record" on the seeded personas.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/portal.py [--requests 50]

Creates a throwaway test database (Django's ``test_`` prefix on the database DATABASE_URL names), builds the
personas (``records.personas.build_personas``), signs Dr David Lambert in with Django's test client, then times
with ``time.perf_counter`` around each request, in process (no network, no browser):

* ``open``: POST of the patient page with the care-team attestation — ``access_control.api.open_record``, the
  trail entry (T1) and the consultation notice (N1, folded after the first), then the redirect;
* ``record``: GET of the record page — the visible documents of Alice's record (7 of 8), filters, pagination;
* ``document``: GET of a document page — ``open_document`` (traced) for the lab report.

The last line is one JSON object with the median and p90 of each, in milliseconds, and the median CPU time of
this process (Django's share; PostgreSQL's work is in the wall time only).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test.utils import override_settings, setup_databases, setup_test_environment, teardown_databases

    documents = tempfile.mkdtemp(prefix="carnet-bench-")
    overrides = override_settings(
        SECURE_SSL_REDIRECT=False,
        CARNET_MASTER_KEY="bench1:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            "documents": {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": documents},
            },
        },
        CARNET_NOTICE_CHANNEL_OVERRIDE="dev",
    )
    overrides.enable()
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False)
    try:
        print(json.dumps(_measure(args.requests)))
    finally:
        teardown_databases(databases, verbosity=0)
        overrides.disable()


CPU: dict[str, list[float]] = {}


def _timed(call, name: str = "") -> float:
    start, cpu = time.perf_counter(), time.process_time()
    response = call()
    elapsed = (time.perf_counter() - start) * 1000
    CPU.setdefault(name, []).append((time.process_time() - cpu) * 1000)
    assert response.status_code in (200, 302), response.status_code
    return elapsed


def _summary(values: list[float], cpu: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)], 2),
        "cpu_median_ms": round(statistics.median(cpu), 2),  # this process only (Django), not PostgreSQL's
    }


def _measure(requests: int) -> dict:
    import re
    from unittest import mock

    from django.test import Client
    from django.urls import reverse

    from records.personas import build_personas
    from tests.signin_fixtures import verified_client

    personas = build_personas()
    client = verified_client(Client(), personas.david.user)
    found = client.post(
        reverse("practitioners:find"),
        {"nir": personas.alice.nir, "birth_date": personas.alice.birth_date.isoformat()},
    )
    token = re.search(r"/pro/patient/([^/]+)/", found["Location"]).group(1)
    patient_url = reverse("practitioners:patient", args=[token])
    record_url = reverse("practitioners:record", args=[token])
    results: dict[str, list[float]] = {"open": [], "record": [], "document": []}
    with mock.patch("notifications.outbox.enqueue_delivery"):  # no broker here: the notice row is what we time
        for _ in range(requests):
            results["open"].append(_timed(lambda: client.post(patient_url, {"attests_care_team": "on"}), "open"))
        html = client.get(record_url).content.decode()
        document_id = re.search(r'/documents/(\d+)/">Bilan sanguin annuel<', html).group(1)
        document_url = reverse("practitioners:document", args=[token, document_id])
        for _ in range(requests):
            results["record"].append(_timed(lambda: client.get(record_url), "record"))
            results["document"].append(_timed(lambda: client.get(document_url), "document"))
    summary = {name: _summary(values, CPU[name]) for name, values in results.items()}
    print(f"{requests} requests each, Dr David Lambert on Alice Martin's record", file=sys.stderr)
    return {"requests": requests, **summary}


if __name__ == "__main__":
    main()
