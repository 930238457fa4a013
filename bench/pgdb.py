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
