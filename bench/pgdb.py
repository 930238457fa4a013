"""The benchmarks' own PostgreSQL databases, created next to the one DATABASE_URL names (bench/README.md)."""

import sys
from urllib.parse import urlsplit, urlunsplit


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_url(base_url: str, name: str) -> str:
    """``base_url`` pointed at the database ``name`` on the same server; PostgreSQL only."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"{sys.argv[0]} needs DATABASE_URL to point at PostgreSQL.")
    return urlunsplit(parts._replace(path="/" + name))


def recreate_database(base_url: str, name: str) -> None:
    """Drop (closing its connections) and create the database ``name`` on ``base_url``'s server."""
    import psycopg

    admin = bench_url(base_url, urlsplit(base_url).path.lstrip("/") or "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


FOLLOW_UP_TYPES = ["11502-2", "57833-6", "11488-4", "34112-3", "11490-0", "60591-5"]


def deposit_follow_ups(cast, count: int) -> None:
    """``count`` follow-up reports by Dr Claire Dubois in Alice Martin's record (the API benches' long listing)."""
    import io

    from access_control.actions import do_deposit_document
    from records.personas import minimal_pdf

    for number in range(count):
        do_deposit_document(
            cast.alice,
            actor=cast.claire,
            fileobj=io.BytesIO(minimal_pdf(f"Compte rendu {number}", ["Texte."])),
            document_type=FOLLOW_UP_TYPES[number % len(FOLLOW_UP_TYPES)],
            title=f"Compte rendu de suivi n° {number}",
        )
