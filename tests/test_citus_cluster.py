"""Carnet on a real Citus cluster (``make test-citus`` only: collected when CARNET_CITUS=1).

The layout is the one records.citus declares, the keys are the ones Citus needs, a patient's hot-path statements
are routed to one shard, and the trail chain's lock is the same lock on every path (T2).
"""

import threading

import pytest
from django.db import connection, connections, transaction

from access_control.fast_sql import chain_tail_call
from access_control.models import Block, TrailEntry
from access_control.trail import purge_allowed, record_entry
from notifications.models import Notice
from records import citus
from records.models import Document, Profile
from tests.trail_fixtures import make_practitioner, make_profile

pytestmark = pytest.mark.django_db


def _rows(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def _tasks(plan: str) -> int:
    """The number of shard tasks in a Citus plan (``Task Count: n``)."""
    for line in plan.splitlines():
        if "Task Count:" in line:
            return int(line.split("Task Count:")[1].split()[0])
    raise AssertionError(f"not a distributed plan:\n{plan}")


def _explain(sql, params=()):
    return "\n".join(row[0] for row in _rows(f"EXPLAIN {sql}", params))


def test_the_cluster_holds_the_declared_layout():
    found = {
        name: (kind, column)
        for name, kind, column in _rows(
            "SELECT table_name::text, citus_table_type, distribution_column FROM citus_tables"
        )
    }
    for spec in (*citus.DISTRIBUTED, *citus.BY_NIR):
        assert found[spec.table] == ("distributed", spec.column), spec.table
    for table in citus.REFERENCE:
        assert found[table][0] == "reference", table
    for table in citus.LOCAL:
        assert found[table][0] == "local", table
    plain = _rows(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relname::text IN (SELECT table_name::text FROM citus_tables)"
    )
    assert plain == []


def test_sharded_tables_share_the_profile_colocation_group():
    by_nir = [spec.table for spec in citus.BY_NIR]
    groups = _rows(
        "SELECT DISTINCT colocation_id FROM citus_tables WHERE citus_table_type = 'distributed' "
        "AND NOT table_name::text = ANY(%s)",
        [by_nir],
    )
    assert len(groups) == 1


def test_every_key_of_a_sharded_table_holds_the_distribution_column():
    for spec in (*citus.DISTRIBUTED, *citus.BY_NIR):
        for name, columns in _rows(
            "SELECT c.conname, array_agg(a.attname::text) FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
            "WHERE c.conrelid = %s::regclass AND c.contype IN ('p', 'u') GROUP BY c.conname",
            [spec.table],
        ):
            assert spec.column in columns, (spec.table, name)


@pytest.mark.django_db(transaction=True)
def test_citus_distribute_twice_changes_nothing():
    from django.core.management import call_command

    before = _rows("SELECT table_name::text, citus_table_type, shard_count FROM citus_tables ORDER BY 1")
    call_command("citus_distribute", verbosity=0)
    assert _rows("SELECT table_name::text, citus_table_type, shard_count FROM citus_tables ORDER BY 1") == before


def test_the_database_keeps_joins_in_written_order_on_every_node():
    """citus_distribute's join_collapse_limit = 1 (docs/scaling.md, Planning) holds on the coordinator and workers."""
    setting = (
        "SELECT coalesce((SELECT s.setconfig::text FROM pg_db_role_setting s JOIN pg_database d "
        "ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole = 0), '')"
    )
    assert "join_collapse_limit=1" in _rows(setting)[0][0]
    workers = _rows("SELECT success, result FROM run_command_on_workers(%s)", [setting])
    assert workers and all(ok and "join_collapse_limit=1" in result for ok, result in workers)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda p: Profile.objects.filter(pk=p.pk), id="open the profile"),
        pytest.param(
            lambda p: (
                Document.objects.filter(profile_id=p.pk)
                .select_related("document_type", "author_practitioner")
                .order_by("-deposited_at")[:20]
            ),
            id="list the documents",
        ),
        pytest.param(lambda p: Document.objects.filter(profile_id=p.pk, pk=1), id="open a document"),
        pytest.param(lambda p: TrailEntry.objects.filter(profile_id=p.pk).order_by("-seq")[:50], id="trail page"),
        pytest.param(lambda p: Notice.objects.filter(profile_id=p.pk).order_by("-created_at"), id="notices"),
        pytest.param(lambda p: Block.objects.filter(profile_id=p.pk, practitioner_id=1), id="is blocked"),
    ],
)
def test_a_patients_reads_are_routed_to_one_shard(query):
    profile = make_profile()
    assert _tasks(query(profile).explain()) == 1


def test_a_patients_writes_are_routed_to_one_shard():
    profile, doctor = make_profile(), make_practitioner()
    plan = _explain(
        "INSERT INTO access_control_block (profile_id, practitioner_id, created_at) VALUES (%s, %s, now())",
        [profile.pk, doctor.pk],
    )
    assert _tasks(plan) == 1
    plan = _explain("UPDATE records_document SET masked_at = now() WHERE profile_id = %s AND id = 1", [profile.pk])
    assert _tasks(plan) == 1


def test_the_chain_tail_in_a_routed_statement_runs_on_the_shard__T2():
    profile, doctor = make_profile(), make_practitioner()
    call, params = chain_tail_call(profile.pk)
    sql = f"SELECT pf.id, {call} FROM records_profile pf WHERE pf.id = %s"  # noqa: S608
    assert _tasks(_explain(sql, [*params, profile.pk])) == 1
    with transaction.atomic():
        record_entry(profile=profile, action="consult", actor=doctor)
    with transaction.atomic():
        ((_, tail),) = _rows(sql, [*params, profile.pk])
    assert tail.startswith("1 ")


@pytest.mark.django_db(transaction=True)
def test_a_bare_call_and_a_routed_call_take_the_same_chain_lock__T2():
    """A bare call runs on the coordinator, a call inside a routed statement on the worker: one lock for both."""
    profile, doctor = make_profile(), make_practitioner()
    call, params = chain_tail_call(profile.pk)
    holding, release, waited, errors = threading.Event(), threading.Event(), [], []

    def hold():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT {call}", params)
                holding.set()
                release.wait(10)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def routed():
        try:
            with transaction.atomic():
                _rows(f"SELECT pf.id, {call} FROM records_profile pf WHERE pf.id = %s", [*params, profile.pk])  # noqa: S608
                record_entry(profile=profile, action="consult", actor=doctor)
            waited.append(True)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    reader = threading.Thread(target=routed)
    reader.start()
    reader.join(0.5)
    assert reader.is_alive(), "the routed call did not wait for the chain's lock"
    release.set()
    holder.join(10)
    reader.join(10)
    assert errors == [] and waited == [True]
    assert list(TrailEntry.objects.filter(profile=profile).values_list("seq", flat=True)) == [1]


def _trail_of_one_profile():
    profile, doctor = make_profile(), make_practitioner()
    for _ in range(2):
        with transaction.atomic():
            record_entry(profile=profile, action="consult", actor=doctor)
    return profile


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE access_control_trailentry SET action = 'x' WHERE profile_id = %s",
        "DELETE FROM access_control_trailentry WHERE profile_id = %s",
        "UPDATE access_control_trailentry SET action = 'x' WHERE profile_id = %s OR profile_id <> %s",
    ],
    ids=["update on its shard", "delete on its shard", "update on every shard"],
)
def test_the_shards_refuse_to_change_the_trail__T2(statement):
    profile = _trail_of_one_profile()
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        _rows(statement, [profile.pk] * statement.count("%s"))
    assert TrailEntry.objects.filter(profile=profile).count() == 2


def test_the_shards_refuse_to_empty_the_trail__T2():
    _trail_of_one_profile()
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        _rows("TRUNCATE access_control_trailentry")


def test_the_purge_reaches_the_shards_triggers__T4():
    """purge_allowed() is a SET LOCAL, which Citus passes to the shards (citus.propagate_set_commands)."""
    purged, kept = _trail_of_one_profile(), _trail_of_one_profile()
    delete = "DELETE FROM access_control_trailentry WHERE profile_id = %s"
    with transaction.atomic(), purge_allowed(), connection.cursor() as cursor:
        cursor.execute(delete, [purged.pk])
        assert cursor.rowcount == 2
    assert not TrailEntry.objects.filter(profile=purged).exists()
    # The permission ended with its block.
    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(delete, [kept.pk])
    assert TrailEntry.objects.filter(profile=kept).count() == 2
