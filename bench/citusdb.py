"""The benchmarks' own databases on a Citus cluster, and whether Citus routes a statement to one shard.

A Citus database needs the extension on every node and the workers registered in the coordinator's copy; the
nodes are those the coordinator knows in the database the URL names (``.ci/citus-cluster.sh start`` registers
them). ``routed`` reads a statement's distributed plan: one task means one shard (router or fast path).
"""

import re
from urllib.parse import urlsplit

from pgdb import bench_url, log

TASKS = re.compile(r"Task Count: (\d+)")


def _connect(url: str, **kwargs):
    import psycopg

    return psycopg.connect(url, autocommit=True, **kwargs)


def _node_url(url: str, host: str, port: int, database: str) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return parts._replace(netloc=netloc, path="/" + database).geturl()


def recreate_citus_database(base_url: str, name: str) -> list[tuple[str, int]]:
    """Drop and create ``name`` on the coordinator of ``base_url`` and on its workers, with Citus; the workers."""
    with _connect(base_url) as main:
        workers = main.execute(
            "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' ORDER BY nodeport"
        ).fetchall()
    if not workers:
        raise SystemExit(f"{base_url}: the coordinator knows no worker; run .ci/citus-cluster.sh start")
    parts = urlsplit(base_url)
    coordinator = (parts.hostname or "127.0.0.1", parts.port or 5432)
    for host, port in [coordinator, *workers]:
        with _connect(_node_url(base_url, host, port, "postgres")) as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            server.execute(f'CREATE DATABASE "{name}"')
        with _connect(_node_url(base_url, host, port, name)) as database:
            database.execute("CREATE EXTENSION citus")
    with _connect(bench_url(base_url, name)) as db:
        db.execute("SELECT citus_set_coordinator_host(%s, %s)", list(coordinator))
        for host, port in workers:
            db.execute("SELECT citus_add_node(%s, %s)", [host, port])
    log(f"  {name}: coordinator {coordinator[0]}:{coordinator[1]}, workers {', '.join(f'{h}:{p}' for h, p in workers)}")
    return workers


def task_counts(plan: str) -> list[int]:
    """The ``Task Count`` of every distributed scan in an EXPLAIN text (none: a coordinator-only plan)."""
    return [int(n) for n in TASKS.findall(plan)]


def routed(plan: str) -> bool:
    """Whether the plan runs on one shard: distributed scans, each of one task, and no distributed subplan."""
    counts = task_counts(plan)
    return bool(counts) and all(n == 1 for n in counts) and "Distributed Subplan" not in plan
