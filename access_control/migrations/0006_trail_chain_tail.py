"""T2 on PostgreSQL: lock a trail chain and read its tail in one call, ``carnet_trail_chain_tail(profile_id)``.

Writers of a chain must read its last (seq, hash) only once they hold the chain's lock, with a snapshot taken
after the lock: otherwise two writers could chain onto the same entry. Under READ COMMITTED a plain statement
has one snapshot, taken before any lock it acquires, so the lock and the read used to be two round trips. A
VOLATILE function takes a fresh snapshot for each query it runs: its read comes after its own lock, and the
call can sit in the select list of a statement that reads other things (``access_control.api.open_record``).

The lock is the transaction-scoped advisory lock of ``access_control.trail`` (namespace 0x7C41 = 31809, the
profile id modulo 2**31, 0 for the profile-less chain). The tail comes back as ``"<seq> <hash>"``, or NULL
for an empty chain. SQLite has no such function: it serialises write transactions, and ``record_entry``
reads the tail itself there.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION carnet_trail_chain_tail(chain_profile bigint) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tail text;
BEGIN
    PERFORM pg_advisory_xact_lock(31809, (coalesce(chain_profile, 0) % 2147483648)::integer);
    IF chain_profile IS NULL THEN
        SELECT seq::text || ' ' || hash INTO tail FROM access_control_trailentry
        WHERE profile_id IS NULL ORDER BY seq DESC LIMIT 1;
    ELSE
        SELECT seq::text || ' ' || hash INTO tail FROM access_control_trailentry
        WHERE profile_id = chain_profile ORDER BY seq DESC LIMIT 1;
    END IF;
    RETURN tail;
END;
$$
"""

DROP = "DROP FUNCTION IF EXISTS carnet_trail_chain_tail(bigint)"


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("access_control", "0005_api_tokens"),
    ]

    operations = [migrations.RunPython(install, remove)]
