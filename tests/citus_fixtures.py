"""Test support for Citus mode (``make test-citus``, CARNET_CITUS=1): the test database on every node.

Django creates its test database on the coordinator only. Citus needs a database of the same name, with the
extension, on every worker, and the workers registered in the coordinator's copy. So, before Django's set-up,
the test database is built on each node of the cluster that ``.ci/citus-cluster.sh`` registered in the main
database; Django then keeps it (``keepdb``) and migrates it, and ``citus_distribute`` lays the tables out.
"""

import os

import pytest

CITUS = os.environ.get("CARNET_CITUS") == "1"
TEST_SHARD_COUNT = 4  # enough to spread patients over both workers; each transactional flush truncates them all


def _connect(params: dict, dbname: str):
    import psycopg

    keys = ("host", "port", "user", "password")
    return psycopg.connect(dbname=dbname, autocommit=True, **{k: params[k] for k in keys if params.get(k)})


def build_test_database_on_every_node() -> None:
    """Drop and create the test database on the coordinator and its workers, with Citus and the workers known."""
    from django.conf import settings

    default = settings.DATABASES["default"]
    params = {
        "host": default["HOST"],
        "port": default["PORT"],
        "user": default["USER"],
        "password": default["PASSWORD"],
    }
    name = default.get("TEST", {}).get("NAME") or f"test_{default['NAME']}"
    with _connect(params, default["NAME"]) as main:
        workers = main.execute(
            "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0 AND noderole = 'primary' ORDER BY nodeport"
        ).fetchall()
    if len(workers) < 2:
        pytest.exit(f"Citus mode: the coordinator knows {len(workers)} worker(s); run .ci/citus-cluster.sh start", 2)
    for host, port in [(params["host"], params["port"]), *workers]:
        node = {**params, "host": host, "port": port}
        with _connect(node, "postgres") as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            server.execute(f'CREATE DATABASE "{name}"')
        with _connect(node, name) as database:
            database.execute("CREATE EXTENSION citus")
    with _connect(params, name) as coordinator:
        coordinator.execute("SELECT citus_set_coordinator_host(%s, %s)", [params["host"], int(params["port"])])
        for host, port in workers:
            coordinator.execute("SELECT citus_add_node(%s, %s)", [host, port])


if CITUS:

    @pytest.fixture(scope="session")
    def django_db_keepdb(request):
        """Citus mode: the test database is built beforehand on every node; Django keeps and migrates it."""
        build_test_database_on_every_node()
        return True

    @pytest.fixture(scope="session")
    def django_db_setup(django_db_setup, django_db_blocker):
        """Citus mode: after the migrations, distribute the tables as records.citus declares."""
        from django.core.management import call_command

        with django_db_blocker.unblock():
            call_command("citus_distribute", shard_count=TEST_SHARD_COUNT, verbosity=0)
