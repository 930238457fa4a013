"""Carnet's layout on a Citus cluster: which table is distributed by patient, replicated, or kept on the coordinator.

Citus mode is opt-in and applied after ``migrate`` by ``manage.py citus_distribute`` (docs/scaling.md). The
migrations and the models stay those of plain PostgreSQL and SQLite; what Citus needs on top (the distribution
column in every primary key and unique constraint, no foreign key it cannot check on one node) is rewritten here,
on the Citus database only. Tables are named, not imported: this module lists tables of other apps without
depending on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

COLOCATION_ANCHOR = "records_profile"


@dataclass(frozen=True)
class Distributed:
    """A per-patient table, sharded on ``column`` (the profile's id), colocated with ``records_profile``."""

    table: str
    column: str = "profile_id"


# Every row of these belongs to one profile; a patient's hot paths touch one shard of each.
DISTRIBUTED: tuple[Distributed, ...] = (
    Distributed("records_profile", "id"),
    Distributed("records_document"),
    Distributed("records_healthsummary"),
    Distributed("records_healthsummaryentry"),
    Distributed("access_control_block"),
    Distributed("access_control_categorymask"),
    Distributed("access_control_occupationalauthorisation"),
    Distributed("access_control_treatingrightsgrant"),
    Distributed("access_control_trailentry"),
    Distributed("access_control_review"),
    Distributed("notifications_notice"),
    Distributed("notifications_readmark"),
    Distributed("accounts_appconnection"),  # a patient's connected apps (issue 17)
)

# Sharded by something else than the profile, in a colocation group of their own: the NIR index (I1), whose key
# keeps a NIR unique across the country and whose look-ups by NIR are routed to one shard (records.nir_index).
BY_NIR: tuple[Distributed, ...] = (Distributed("records_nirindex", "nir"),)

# Small national tables read by every shard's joins: a copy on every node.
REFERENCE: tuple[str, ...] = (
    "django_content_type",
    "auth_permission",
    "auth_group",
    "auth_group_permissions",
    "records_documenttype",
    "practitioners_profession",
    "practitioners_practitioner",
    "access_control_documentcategory",
    "access_control_documentcategory_document_types",
    "access_control_accessrule",
)

# On the coordinator only (Citus local tables, so that they may keep their foreign keys to reference tables):
# sign-in and sessions, staff work, the print batches and the worker's heartbeat. None of them is read by a
# shard's query.
LOCAL: tuple[str, ...] = (
    "django_migrations",
    "records_user",
    "records_user_groups",
    "records_user_user_permissions",
    "django_session",
    "django_admin_log",
    "otp_email_emaildevice",
    "otp_static_staticdevice",
    "otp_static_statictoken",
    "otp_totp_totpdevice",
    "access_control_apitoken",
    "notifications_printbatch",
    "notifications_letter",
    "notifications_batchfile",
    "notifications_notice_trail_entries",
    "records_workerheartbeat",
    "accounts_providerdevice",  # a sign-in device, like the otp_* tables (issue 17)
    "accounts_franceconnectlink",  # a patient account's FranceConnect subject, with records_user
    # Connected apps' authorisation server (issue 17): the registered apps, their codes and tokens, and which
    # connection each code or token serves. Read on sign-in and token paths only, like the API tokens.
    "oauth2_provider_application",
    "oauth2_provider_grant",
    "oauth2_provider_accesstoken",
    "oauth2_provider_refreshtoken",
    "oauth2_provider_idtoken",
    "oauth2_provider_devicegrant",
    "accounts_applisting",
    "accounts_appconnectiontoken",
)

# Unique constraints that Citus can only enforce with the distribution column in them. Each becomes
# UNIQUE (<columns>, <distribution column>): unique within a patient, no longer across patients.
WIDENED_UNIQUE: dict[str, tuple[tuple[str, ...], ...]] = {
    "records_profile": (("nir",), ("user_id",)),
    "records_document": (("storage_key",),),
    "access_control_trailentry": (("hash",),),
    "notifications_notice": (("dedupe_key",),),
}

# Foreign keys dropped on Citus: between a sharded table and a table that is not colocated with it (another
# profile's shard, or a coordinator table), which no single node can check. (table, referencing column).
DROPPED_FOREIGN_KEYS: tuple[tuple[str, str], ...] = (
    ("records_profile", "legal_representative_id"),  # the representative's profile may be on another shard
    ("records_profile", "user_id"),  # accounts stay on the coordinator
    ("access_control_review", "reviewed_by_id"),
    ("notifications_letter", "notice_id"),  # letters stay with their print batch, on the coordinator
    ("notifications_notice_trail_entries", "notice_id"),
    ("notifications_notice_trail_entries", "trailentry_id"),
    ("notifications_readmark", "user_id"),  # accounts stay on the coordinator
    ("accounts_appconnection", "user_id"),  # accounts stay on the coordinator
    ("accounts_appconnection", "application_id"),  # registered apps stay on the coordinator
    ("accounts_appconnectiontoken", "connection_id"),  # tokens stay on the coordinator, the connection is sharded
    ("records_nirindex", "profile_id"),  # sharded by the NIR, not with the profile
)


def placement_of(table: str) -> str:
    """``distributed``, ``reference`` or ``local``: where the layout puts one table."""
    if any(d.table == table for d in (*DISTRIBUTED, *BY_NIR)):
        return "distributed"
    if table in REFERENCE:
        return "reference"
    if table in LOCAL:
        return "local"
    raise KeyError(table)


def all_tables() -> Iterable[str]:
    """Every table the layout places."""
    yield from (d.table for d in DISTRIBUTED)
    yield from (d.table for d in BY_NIR)
    yield from REFERENCE
    yield from LOCAL


# T2 on Citus. The advisory lock of migration 0006 lives on the node that runs the function, and a statement
# routed to a shard runs it on that shard's worker while a bare call inside a transaction runs it on the
# coordinator: two writers of one chain could hold "the" lock on two nodes. The row lock on the chain's profile
# is on its shard whoever takes it, so it serialises the chain's writers on every path. FOR NO KEY UPDATE does
# not block the FOR KEY SHARE locks of foreign-key checks (documents, notices inserted for the same profile).
# Run inside a query on a shard (``access_control.api.open_record`` puts the call in its select list), the
# function may not start a distributed query: there it reads the colocated shards of this worker directly.
# The national chain (key 0, docs/adr/0008-national-trail-chain.md) has no profile row: it takes the advisory
# lock of migration 0006 on the coordinator, where all its writers call the function.
CHAIN_TAIL_FUNCTION = """
CREATE OR REPLACE FUNCTION carnet_trail_chain_tail(chain_profile bigint) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    profile_table text := 'records_profile';
    trail_table text := 'access_control_trailentry';
    shard bigint;
    tail text;
BEGIN
    IF chain_profile IS NULL THEN
        RAISE EXCEPTION 'no trail chain without a key: the national chain is 0 (docs/adr/0008-national-trail-chain.md)'
            USING ERRCODE = 'not_null_violation';
    END IF;
    shard := get_shard_id_for_distribution_column('records_profile', chain_profile);
    IF to_regclass(shard_name('records_profile'::regclass, shard)) IS NOT NULL THEN
        IF chain_profile = 0 THEN
            RAISE EXCEPTION 'the national trail chain is locked on the coordinator, not inside a shard query';
        END IF;
        profile_table := shard_name('records_profile'::regclass, shard);
        trail_table := shard_name('access_control_trailentry'::regclass,
            get_shard_id_for_distribution_column('access_control_trailentry', chain_profile));
    END IF;
    IF chain_profile = 0 THEN
        -- The national chain has no profile row to lock; its writers all call this on the coordinator (a bare
        -- call, never inside a routed statement), so the coordinator's advisory lock serialises them.
        PERFORM pg_advisory_xact_lock(31809, 0);
    ELSE
        EXECUTE format('SELECT 1 FROM %s WHERE id = $1 FOR NO KEY UPDATE', profile_table) USING chain_profile;
    END IF;
    EXECUTE format('SELECT seq::text || '' '' || hash FROM %s WHERE profile_id = $1 ORDER BY seq DESC LIMIT 1',
        trail_table) INTO tail USING chain_profile;
    RETURN tail;
END;
$$
"""


def _one(cursor, sql: str, params: Iterable = ()) -> object:
    cursor.execute(sql, list(params))
    row = cursor.fetchone()
    return row[0] if row else None


def is_citus(cursor) -> bool:
    """Whether the database the cursor is connected to has the Citus extension."""
    return bool(_one(cursor, "SELECT 1 FROM pg_extension WHERE extname = 'citus'"))


def _placement(cursor, table: str) -> str | None:
    """How Citus holds the table now: ``distributed``, ``reference``, ``local``, or None (a plain table)."""
    value = _one(cursor, "SELECT citus_table_type FROM citus_tables WHERE table_name = %s::regclass", [table])
    return None if value is None else str(value)


def _constraints(cursor, table: str, kind: str) -> list[tuple[str, list[str]]]:
    """(name, columns) of the table's constraints of one kind (p, u or f)."""
    cursor.execute(
        "SELECT c.conname, array_agg(a.attname ORDER BY k.ord) FROM pg_constraint c "
        "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
        "WHERE c.conrelid = %s::regclass AND c.contype = %s GROUP BY c.conname ORDER BY c.conname",
        [table, kind],
    )
    return [(name, list(columns)) for name, columns in cursor.fetchall()]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _drop_foreign_keys(cursor, log) -> None:
    for table, column in DROPPED_FOREIGN_KEYS:
        for name, columns in _constraints(cursor, table, "f"):
            if columns == [column]:
                cursor.execute(f"ALTER TABLE {_quote(table)} DROP CONSTRAINT {_quote(name)}")
                log(f"{table}: dropped foreign key {column}")


def _rewrite_keys(cursor, spec: Distributed, log) -> None:
    """Put the distribution column in the primary key and in the widened unique constraints."""
    table, column = spec.table, spec.column
    for name, columns in _constraints(cursor, table, "p"):
        if column not in columns:
            cursor.execute(f"ALTER TABLE {_quote(table)} DROP CONSTRAINT {_quote(name)}")
            cursor.execute(
                f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(name)} PRIMARY KEY ({_quote('id')}, {_quote(column)})"
            )
            log(f"{table}: primary key (id, {column})")
    for widened in WIDENED_UNIQUE.get(table, ()):
        for name, columns in _constraints(cursor, table, "u"):
            if columns == list(widened):
                new = ", ".join(_quote(c) for c in (*widened, column))
                cursor.execute(f"ALTER TABLE {_quote(table)} DROP CONSTRAINT {_quote(name)}")
                cursor.execute(f"ALTER TABLE {_quote(table)} ADD CONSTRAINT {_quote(name)} UNIQUE ({new})")
                log(f"{table}: unique ({', '.join((*widened, column))})")


def _reference_keys(cursor, spec: Distributed, references: list[tuple[str, str, str]], log) -> None:
    """Add back the foreign keys from a sharded table to the reference tables (dropped before sharding)."""
    existing = {tuple(columns) for _name, columns in _constraints(cursor, spec.table, "f")}
    for column, target, target_column in references:
        if (column,) in existing:
            continue
        name = f"{spec.table[:30]}_{column[:24]}_citus_fk"
        cursor.execute(
            f"ALTER TABLE {_quote(spec.table)} ADD CONSTRAINT {_quote(name)} FOREIGN KEY ({_quote(column)}) "
            f"REFERENCES {_quote(target)} ({_quote(target_column)}) DEFERRABLE INITIALLY DEFERRED"
        )
        log(f"{spec.table}: foreign key {column} -> {target}")


def apply_layout(cursor, foreign_keys: dict[str, list[tuple[str, str, str]]], *, shard_count: int = 32, log=print):
    """Place every table as this module declares; a table already placed is left as it is (idempotent).

    ``foreign_keys`` maps each table to its (column, referenced table, referenced column) foreign keys, as
    the models declare them (``citus_distribute`` reads them from the app registry). Runs as a superuser on
    the coordinator's database, after ``migrate``, outside a transaction block.

    Order matters. Making a table a reference table turns every plain table joined to it by foreign keys into
    a coordinator table, the per-patient ones included. So the per-patient tables are sharded first, with
    their foreign keys to future reference tables set aside, and get them back at the end.
    """
    if not is_citus(cursor):
        raise RuntimeError("The database has no Citus extension: CREATE EXTENSION citus first (docs/scaling.md).")
    # The trail's append-only triggers (migration 0003) go to the shards with the table (T2).
    cursor.execute("SET citus.enable_unsafe_triggers TO on")
    cursor.execute(f"SET citus.shard_count TO {int(shard_count)}")
    # purge_allowed() sets carnet.trail_purge with SET LOCAL: the shards' triggers must see it too (T4).
    database = _one(cursor, "SELECT current_database()")
    cursor.execute(f"ALTER DATABASE {_quote(str(database))} SET citus.propagate_set_commands TO 'local'")
    cursor.execute("SET citus.propagate_set_commands TO 'local'")
    # A transaction that read or wrote several shards over parallel connections may not then write a coordinator
    # or reference table (records_user, the access matrix): one connection per worker lets any action mix them.
    # The hot paths are routed to one shard, so only batches and staff reports lose parallelism.
    cursor.execute(f"ALTER DATABASE {_quote(str(database))} SET citus.multi_shard_modify_mode TO 'sequential'")
    cursor.execute("SET citus.multi_shard_modify_mode TO 'sequential'")
    # Citus plans a routed statement twice, on the coordinator and again on the worker, and never keeps either
    # plan (its distribution column is a parameter). The visibility condition (access_control.fast_sql), a chain
    # of joins and EXISTS, took ~1.7 ms a plan; kept in its written order (join_collapse_limit = 1, the profile's
    # documents first) ~0.8 ms, for the same run time (docs/scaling.md, Planning). Citus passes the database's
    # setting to the workers' database, so both plans are the shorter ones.
    cursor.execute(f"ALTER DATABASE {_quote(str(database))} SET join_collapse_limit TO 1")
    _drop_foreign_keys(cursor, log)
    for spec in (*DISTRIBUTED, *BY_NIR):
        placement = _placement(cursor, spec.table)
        if placement == "distributed":
            continue
        if placement is not None:
            raise RuntimeError(f"{spec.table} is already a Citus {placement} table; the layout wants it sharded.")
        for name, columns in _constraints(cursor, spec.table, "f"):
            if columns != ["profile_id"] or spec.table == COLOCATION_ANCHOR:
                cursor.execute(f"ALTER TABLE {_quote(spec.table)} DROP CONSTRAINT {_quote(name)}")
        _rewrite_keys(cursor, spec, log)
        colocation = "default" if spec.table == COLOCATION_ANCHOR else COLOCATION_ANCHOR
        if spec in BY_NIR:
            colocation = "none"
        cursor.execute(
            "SELECT create_distributed_table(%s, %s, colocate_with => %s)", [spec.table, spec.column, colocation]
        )
        log(f"{spec.table}: distributed on {spec.column}")
    for table in REFERENCE:
        if _placement(cursor, table) != "reference":
            cursor.execute("SELECT create_reference_table(%s)", [table])
            log(f"{table}: reference table")
    for table in LOCAL:
        if _placement(cursor, table) is None:
            cursor.execute("SELECT citus_add_local_table_to_metadata(%s)", [table])
            log(f"{table}: local to the coordinator")
    for spec in DISTRIBUTED:
        references = [fk for fk in foreign_keys.get(spec.table, []) if fk[1] in REFERENCE]
        _reference_keys(cursor, spec, references, log)
    for table in all_tables():
        _catch_up_sequence(cursor, table, log)
    cursor.execute(CHAIN_TAIL_FUNCTION)


def _catch_up_sequence(cursor, table: str, log) -> None:
    """Move the id sequence of a placed table past its rows (placing a table leaves its sequence restarted)."""
    sequence = _one(
        cursor,
        "SELECT pg_get_serial_sequence(%s, 'id') FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attname = 'id' AND NOT attisdropped",
        [table, table],
    )
    if sequence is None:
        return
    highest = _one(cursor, f"SELECT max(id) FROM {_quote(table)}")  # noqa: S608 -- a table of the layout
    current = _one(cursor, f"SELECT last_value FROM {sequence}")  # noqa: S608 -- named by pg_get_serial_sequence
    if highest is not None and int(highest) > int(current):  # type: ignore[call-overload]
        cursor.execute("SELECT setval(%s, %s)", [sequence, highest])
        log(f"{table}: id sequence moved past {highest}")
