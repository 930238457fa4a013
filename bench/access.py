"""Benchmark: opening a record and listing its visible documents, against a hand-written floor and a naive baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/access.py [--quick]

Creates its own database (``carnet_bench`` next to the one DATABASE_URL names), migrates it, loads a synthetic
national-mix dataset with psycopg COPY straight into the real tables (document types per the 2024 traffic mix:
biology 39 %, prescriptions 23 %, imaging 9 %…; heavy patients with 200 documents each; masks, category masks,
blocks, treating doctors, rights granted like the treating doctor's, suspended practitioners and closed profiles
sprinkled in), CLUSTERs the documents table on its (profile, -deposited_at) covering index, then for random
practitioner–heavy-patient pairs measures in one run, interleaved in random order:

* ours: ``access_control.api.open_record`` (normal mode) + ``visible_document_ids``, the whole record's listing
  from SQL compiled once per connection (``RecordListing``, which the REST and FHIR pages of a whole record read);
* ours_queryset: the same opening + ``visible_documents`` forced to a list of ids, the queryset compiled on every
  call (what the portal's record page and filtered listings run), reported beside it (``queryset_ratio``);
* floor: the same work by hand through psycopg in one transaction: chain lock, one query for the decision,
  the chain's last hash and the visible ids, one statement for the trail insert + notice upsert + link;
* naive: per-object checks: load the record's documents, then a ``has_perm(practitioner, document)`` per
  document, each with its own look-ups (profile/treating doctor, block, matrix, category masks), same writes.

All of them must return the same ids for every pair. The after-commit hand-off of a new notice to the broker is
replaced by a no-op (it is not database work, and the floor has none). The last line is one JSON object:
``{"documents", "p50_ms", "p99_ms", "floor_ratio", "queryset_ratio", "naive_speedup"}``.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pgdb import bench_url, log, recreate_database  # bench/pgdb.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Document types by share of the 2024 traffic (document-types.md "Real traffic mix"): biology 117 M,
# drug prescriptions 69 M, imaging 26 M of ~300 M; the remaining 29 % spread over the other frequent types.
TYPE_MIX = {
    "11502-2": 39.0,  # biology reports
    "57833-6": 19.0,  # drug prescriptions
    "57832-8": 1.5,
    "PRESC-BIO": 1.0,
    "PRESC-KINE": 0.8,
    "PRESC-INF": 0.7,
    "18748-4": 9.0,  # imaging reports
    "11490-0": 4.0,
    "11488-4": 4.0,
    "34112-3": 3.0,
    "60593-1": 3.0,
    "REMB": 3.0,
    "15507-7": 2.0,
    "11369-6": 1.0,
    "87273-9": 1.0,
    "60591-5": 1.5,
    "34874-8": 1.0,
    "89601-9": 1.0,
    "68599-0": 0.5,  # psychiatric synthesis (category "santé mentale", A12)
    "89233-1": 0.5,  # pregnancy (category "grossesse", A12)
    "DOCPAT03": 1.0,
    "DOCPAT05": 0.5,
    "DOCPAT01": 0.5,
    "ATTEST-RESID": 0.5,  # read by no doctor (A2)
}
# Senders (2024): biologists 37 %, city doctors 35 %, hospitals 17 %, radiologists 8 %, pharmacists 3 %.
PROFESSION_MIX = {"10": 70, "21": 12, "60": 10, "70": 4, "50": 2, "40": 2}
HEAVY_DOCUMENTS = 200
HEAVY_SHARE = 0.4
LIGHT_MEAN = 10
FIRST_NAMES = ["Alice", "Bernard", "Camille", "Denise", "Étienne", "Fanny", "Gérard", "Hélène", "Inès", "Jules"]
LAST_NAMES = ["Martin", "Petit", "Leroy", "Moreau", "Roux", "Lefebvre", "Dubois", "Lambert", "Girard", "Mercier"]


# --- database --------------------------------------------------------------------------------------------


def row_values(model, provided: dict, now: datetime) -> tuple[list[str], list]:
    """Column names and values for one row: ours where given, else the field's default (for COPY and the floor)."""
    columns, values = [], []
    for field in model._meta.concrete_fields:
        if field.attname in provided:
            value = provided[field.attname]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        elif field.primary_key:
            continue
        else:
            value = field.get_default()
            if value is None and not field.null:
                raise SystemExit(f"bench: no value for {model.__name__}.{field.attname}")
        columns.append(field.column)
        values.append(value)
    return columns, values


def copy_rows(conn, model, rows, now: datetime) -> int:
    """COPY dict rows into the model's table; every row gives the same keys (defaults fill the others)."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return 0
    columns, first_values = row_values(model, first, now)
    fields = [f for f in model._meta.concrete_fields if f.column in columns]
    plan = [(field.attname, value) for field, value in zip(fields, first_values, strict=True)]
    given = [attname for attname, _ in plan if attname in first]
    fixed = {attname: value for attname, value in plan if attname not in first}
    count = 1
    with conn.cursor() as cursor, cursor.copy(f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write_row(first_values)
        for provided in rows:
            copy.write_row([provided[a] if a in given else fixed[a] for a, _ in plan])
            count += 1
    return count


# --- synthetic data --------------------------------------------------------------------------------------


def nir_for(n: int) -> str:
    body = f"{1 + n % 2}{80 + n % 20:02d}{1 + n % 12:02d}75{n % 1000:03d}{(n // 1000) % 1000:03d}"[:13]
    return body + f"{97 - int(body) % 97:02d}"


def load(conn, documents: int, rng: random.Random) -> dict:
    """Load the synthetic dataset; returns what the measurement needs (heavy profiles, blocks, authors)."""
    from access_control.models import Block, CategoryMask, DocumentCategory, TrailEntry, TreatingRightsGrant
    from access_control.trail import GENESIS_HASH, entry_hash
    from practitioners.models import Practitioner, Profession
    from records.models import Document, DocumentType, Profile

    now = datetime.now(UTC)
    professions = {p.code: p for p in Profession.objects.all()}
    types = {t.code: t for t in DocumentType.objects.all()}
    mix = [(types[code], weight) for code, weight in TYPE_MIX.items() if code in types]
    categories = list(DocumentCategory.objects.all())

    # Practitioners.
    n_practitioners = max(1000, documents // 200)
    codes = rng.choices(list(PROFESSION_MIX), weights=list(PROFESSION_MIX.values()), k=n_practitioners)
    practitioners = []
    for pk, code in enumerate(codes, start=1):
        practitioners.append(
            {
                "id": pk,
                "rpps": f"1{pk:010d}",
                "title": "Dr" if code == "10" else "",
                "last_name": rng.choice(LAST_NAMES),
                "first_name": rng.choice(FIRST_NAMES),
                "profession_id": professions[code].pk,
                "status": "suspended" if rng.random() < 0.01 else "active",
                "is_samu_regulator": code == "10" and rng.random() < 0.01,
                "is_insurer_physician": code == "10" and rng.random() < 0.002,
                "is_occupational_physician": code == "10" and rng.random() < 0.005,
            }
        )
    copy_rows(conn, Practitioner, practitioners, now)
    doctors = [p["id"] for p in practitioners if p["profession_id"] == professions["10"].pk]
    senders = [p["id"] for p in practitioners if p["status"] == "active"]

    # Profiles: heavy ones (200 documents) and light ones (~10).
    n_heavy = max(1, int(documents * HEAVY_SHARE) // HEAVY_DOCUMENTS)
    light_documents = documents - n_heavy * HEAVY_DOCUMENTS
    n_light = max(1, light_documents // LIGHT_MEAN)
    profiles = []
    for pk in range(1, n_heavy + n_light + 1):
        state = "closed" if rng.random() < 0.02 else ("active" if rng.random() < 0.2 else "open")
        profiles.append(
            {
                "id": pk,
                "nir": nir_for(pk),
                "birth_name": rng.choice(LAST_NAMES),
                "first_names": rng.choice(FIRST_NAMES),
                "birth_date": date(1940, 1, 1) + timedelta(days=rng.randrange(30000)),
                "sex": rng.choice("MF"),
                "address_street": f"{pk % 200 + 1} rue de la République",
                "postal_code": f"{pk % 95 + 1:02d}000",
                "city": "VILLE",
                "state": state,
                "opened_at": now - timedelta(days=400),
                "treating_doctor_id": rng.choice(doctors) if rng.random() < 0.6 else None,
                "emergency_access_opt_out": rng.random() < 0.01,
            }
        )
    copy_rows(conn, Profile, profiles, now)
    heavy = list(range(1, n_heavy + 1))

    # Documents, profile by profile.
    per_profile = dict.fromkeys(heavy, HEAVY_DOCUMENTS)
    for pk in rng.choices(range(n_heavy + 1, n_heavy + n_light + 1), k=light_documents):
        per_profile[pk] = per_profile.get(pk, 0) + 1
    doc_types = rng.choices([t for t, _ in mix], weights=[w for _, w in mix], k=documents)
    authors: dict[int, list[int]] = {}
    trail_plan: list[tuple[int, int, int]] = []  # (profile, document, author) of the deposits to trace

    def document_rows():
        pk = 0
        for profile_id, count in per_profile.items():
            for _ in range(count):
                pk += 1
                doc_type = doc_types[pk - 1]
                by_patient = doc_type.code.startswith("DOCPAT")
                author = None if by_patient else rng.choice(senders)
                deposited = now - timedelta(seconds=rng.randrange(3 * 365 * 86400))
                if author is not None and profile_id <= n_heavy:
                    authors.setdefault(profile_id, []).append(author)
                if author is not None and rng.random() < 0.25:
                    trail_plan.append((profile_id, pk, author))
                yield {
                    "id": pk,
                    "profile_id": profile_id,
                    "document_type_id": doc_type.pk,
                    "title": doc_type.label_fr[:200],
                    "care_date": deposited.date(),
                    "author_kind": "patient" if by_patient else "practitioner",
                    "author_practitioner_id": author,
                    "deposited_at": deposited,
                    "size": rng.randrange(20_000, 2_000_000),
                    "content_type": "application/pdf",
                    "sha256": f"{pk:064x}",
                    "storage_key": f"bench/{pk}",
                    "wrapped_key": b"\x00" * 40,
                    "master_key_id": "bench",
                    "masked_at": deposited if rng.random() < 0.03 else None,  # A4
                    "deleted_at": deposited if by_patient and rng.random() < 0.05 else None,  # A10
                    "held_until": deposited + timedelta(days=30) if rng.random() < 0.01 else None,  # A8
                }

    started = time.perf_counter()
    loaded = copy_rows(conn, Document, document_rows(), now)
    log(f"  documents: {loaded} rows COPied in {time.perf_counter() - started:.1f} s")

    # Blocks (A5) and category masks (A12) on ~3 % of the heavy profiles.
    blocks = []
    for profile_id in heavy:
        if rng.random() < 0.03:
            blocks.append((profile_id, rng.choice(senders)))
    copy_rows(conn, Block, ({"profile_id": a, "practitioner_id": b} for a, b in blocks), now)
    if categories:
        masks = [
            {"profile_id": pk, "category_id": rng.choice(categories).pk, "created_at": now}
            for pk in heavy
            if rng.random() < 0.03
        ]
        copy_rows(conn, CategoryMask, masks, now)
    # Treating-doctor rights granted to one more practitioner (A4) on ~3 % of the heavy profiles.
    grants = []
    for profile_id in heavy:
        if rng.random() < 0.03:
            grant = (profile_id, rng.choice(senders))
            if grant not in blocks:
                grants.append(grant)
    copy_rows(conn, TreatingRightsGrant, ({"profile_id": a, "practitioner_id": b} for a, b in grants), now)

    # A valid trail: a quarter of the deposits traced, chained per profile.
    by_practitioner = {p["id"]: p for p in practitioners}
    profession_labels = {p.pk: p.label_fr for p in professions.values()}
    chains: dict[int, tuple[int, str]] = {}

    def trail_rows():
        for profile_id, document_id, author in sorted(trail_plan):
            seq, prev = chains.get(profile_id, (0, GENESIS_HASH))
            actor = by_practitioner[author]
            entry = TrailEntry(
                at=now - timedelta(days=1),
                profile_id=profile_id,
                seq=seq + 1,
                actor_kind="practitioner",
                actor_practitioner_id=author,
                actor_name=f"{actor['title']} {actor['first_name']} {actor['last_name']}".strip(),
                actor_profession=profession_labels[actor["profession_id"]],
                actor_rpps=actor["rpps"],
                document_id=document_id,
                action="deposit_document",
                mode="normal",
                outcome="allowed",
                prev_hash=prev,
            )
            entry.hash = entry_hash(entry)
            chains[profile_id] = (seq + 1, entry.hash)
            yield {f.attname: getattr(entry, f.attname) for f in TrailEntry._meta.concrete_fields if f.attname != "id"}

    traced = copy_rows(conn, TrailEntry, trail_rows(), now)
    log(f"  trail: {traced} entries in {len(chains)} chains")
    # I1's index, as do_enrol_profile writes it with each profile: finding by NIR reads it on Citus.
    conn.execute("INSERT INTO records_nirindex (nir, profile_id) SELECT nir, id FROM records_profile")
    return {"heavy": heavy, "blocks": blocks, "grants": grants, "authors": authors}


def finish_load(conn) -> None:
    with conn.cursor() as cursor:
        for table in (
            "practitioners_practitioner",
            "records_profile",
            "records_document",
            "access_control_block",
            "access_control_categorymask",
            "access_control_trailentry",
        ):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 1))"
            )
    conn.commit()
    conn.autocommit = True
    started = time.perf_counter()
    # Keep each patient's documents physically together, in index order (anchors: p50 1.7 ms -> 0.4 ms).
    conn.execute("CLUSTER records_document USING document_profile_recent_idx")
    conn.execute("VACUUM ANALYZE")
    log(
        f"  CLUSTER records_document USING document_profile_recent_idx + VACUUM ANALYZE: "
        f"{time.perf_counter() - started:.1f} s"
    )
    conn.autocommit = False


# --- the three contenders --------------------------------------------------------------------------------


def ours(practitioner, profile) -> list[int]:
    """The door as practice software goes through it: the opening, then the whole record's listing read from SQL
    compiled once (``RecordListing``, as the REST and FHIR pages read it), ids only as the floor reads them."""
    from access_control.api import open_record, visible_document_ids

    decision = open_record(practitioner, profile, attests_care_team=True)
    if not decision.allowed:
        return []
    return visible_document_ids(practitioner, profile)


def ours_queryset(practitioner, profile) -> list[int]:
    """The same with the listing as a queryset, compiled on every call (the portal's page, filtered listings)."""
    from access_control.api import open_record, visible_documents

    decision = open_record(practitioner, profile, attests_care_team=True)
    if not decision.allowed:
        return []
    return list(visible_documents(practitioner, profile).values_list("pk", flat=True))


FLOOR_READ = """
WITH pr AS (
    SELECT p.id, p.status, p.is_insurer_physician, p.is_occupational_physician, p.profession_id, p.title,
           p.first_name, p.last_name, p.rpps, p.user_id, f.label_fr
    FROM practitioners_practitioner p JOIN practitioners_profession f ON f.id = p.profession_id
    WHERE p.id = %(pr)s
), pf AS (
    SELECT id, state, treating_doctor_id, email, email_verified, preferred_channel, address_street,
           address_locality, postal_code, city
    FROM records_profile WHERE id = %(pf)s
), decision AS (
    SELECT pf.state IN ('open', 'active')
       AND pr.status = 'active' AND NOT pr.is_insurer_physician
       AND EXISTS (SELECT 1 FROM access_control_accessrule r WHERE r.profession_id = pr.profession_id AND r.may_read)
       AND (NOT pr.is_occupational_physician OR EXISTS (
            SELECT 1 FROM access_control_occupationalauthorisation o
            WHERE o.profile_id = pf.id AND o.practitioner_id = pr.id))
       AND NOT EXISTS (
            SELECT 1 FROM access_control_block b WHERE b.profile_id = pf.id AND b.practitioner_id = pr.id)
       AS allowed
    FROM pr, pf
)
SELECT pr.user_id, pr.title, pr.first_name, pr.last_name, pr.label_fr, pr.rpps,
       pf.state, pf.email, pf.email_verified, pf.preferred_channel, pf.address_street, pf.address_locality,
       pf.postal_code, pf.city, decision.allowed,
       (SELECT ARRAY[t.seq::text, t.hash] FROM access_control_trailentry t
        WHERE t.profile_id = %(pf)s ORDER BY t.seq DESC LIMIT 1),
       CASE WHEN decision.allowed THEN ARRAY(
           SELECT d.id FROM records_document d
           WHERE d.profile_id = %(pf)s AND d.deleted_at IS NULL
             AND EXISTS (SELECT 1 FROM access_control_accessrule r
                         WHERE r.profession_id = pr.profession_id AND r.document_type_id = d.document_type_id
                           AND r.may_read)
             AND (d.author_practitioner_id = %(pr)s OR pf.treating_doctor_id = %(pr)s
                  OR EXISTS (SELECT 1 FROM access_control_treatingrightsgrant g
                             WHERE g.profile_id = %(pf)s AND g.practitioner_id = %(pr)s)
                  OR (d.masked_at IS NULL AND NOT EXISTS (
                      SELECT 1 FROM access_control_categorymask cm
                      JOIN access_control_documentcategory_document_types ct
                        ON ct.documentcategory_id = cm.category_id
                      WHERE cm.profile_id = %(pf)s AND ct.documenttype_id = d.document_type_id)))
           ORDER BY d.deposited_at DESC, d.id DESC) ELSE '{}'::bigint[] END
FROM pr, pf, decision
"""


class Floor:
    """The same work by hand: one lock, one read, one write statement, one commit."""

    def __init__(self, url: str, *, prepared: bool = True):
        import psycopg

        from access_control.models import TrailEntry
        from notifications.models import Notice

        # psycopg prepares a statement server-side from its 5th execution (no planning afterwards), as Carnet's
        # settings do by default; Django's client-side binding (DATABASE_SERVER_SIDE_BINDING=0) never does. The
        # unprepared floor isolates that difference.
        self.conn = psycopg.connect(url, prepare_threshold=5 if prepared else None)
        self.trail_model, self.notice_model = TrailEntry, Notice

    def _channel(self, state, email, email_verified, preferred, street, locality, postal_code, city) -> str:
        if state == "active" and email and email_verified and preferred == "email":
            return "email"
        if postal_code and city and (street or locality):
            return "letter"
        return "email" if email and email_verified else "none"

    def run(self, practitioner_id: int, profile_id: int) -> list[int]:
        from access_control.trail import GENESIS_HASH, entry_hash
        from notifications.outbox import window_start

        conn = self.conn
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [0x7C41, profile_id % 2**31])
            cursor.execute(FLOOR_READ, {"pr": practitioner_id, "pf": profile_id})
            (
                user_id,
                title,
                first,
                last,
                profession,
                rpps,
                state,
                email,
                verified,
                preferred,
                street,
                locality,
                postal_code,
                city,
                allowed,
                last_link,
                ids,
            ) = cursor.fetchone()
            seq, prev = (int(last_link[0]) + 1, last_link[1]) if last_link else (1, GENESIS_HASH)
            now = datetime.now(UTC)
            entry = self.trail_model(
                at=now,
                profile_id=profile_id,
                seq=seq,
                actor_kind="practitioner",
                actor_user_id=user_id,
                actor_practitioner_id=practitioner_id,
                actor_name=f"{title} {first} {last}" if title else f"{first} {last}",
                actor_profession=profession,
                actor_rpps=rpps,
                action="open_record",
                mode="normal",
                outcome="allowed" if allowed else "denied",
                reason="" if allowed else "refused",
                prev_hash=prev,
            )
            entry.hash = entry_hash(entry)
            trail_columns, trail_values = row_values(
                self.trail_model,
                {
                    f.attname: getattr(entry, f.attname)
                    for f in self.trail_model._meta.concrete_fields
                    if f.attname != "id"
                },
                now,
            )
            trail_insert = (
                f"INSERT INTO access_control_trailentry ({', '.join(trail_columns)}) "
                f"VALUES ({', '.join(['%s'] * len(trail_values))}) RETURNING id"
            )
            if not allowed:
                cursor.execute(trail_insert, trail_values)
            else:
                channel = self._channel(state, email, verified, preferred, street, locality, postal_code, city)
                window = window_start(now)
                notice_columns, notice_values = row_values(
                    self.notice_model,
                    {
                        "kind": "consultation",
                        "profile_id": profile_id,
                        "practitioner_id": practitioner_id,
                        "recipient_practitioner_id": None,
                        "channel": channel,
                        "status": "undeliverable" if channel == "none" else "pending",
                        "dedupe_key": f"consultation:{profile_id}:{practitioner_id}:{window:%Y%m%d%H%M}",
                        "created_at": now,
                        "deliver_after": now,
                        "sealed_payload": None,
                    },
                    now,
                )
                cursor.execute(
                    f"WITH t AS ({trail_insert}), n AS ("
                    f"INSERT INTO notifications_notice ({', '.join(notice_columns)}) "
                    f"VALUES ({', '.join(['%s'] * len(notice_values))}) "
                    "ON CONFLICT (dedupe_key) DO UPDATE SET updated_at = EXCLUDED.updated_at RETURNING id) "
                    "INSERT INTO notifications_notice_trail_entries (notice_id, trailentry_id) "
                    "SELECT n.id, t.id FROM n, t",
                    [*trail_values, *notice_values],
                )
        conn.commit()
        return list(ids)


def naive(practitioner_id: int, profile_id: int) -> list[int]:
    """An object-permission design: a record check, then ``has_perm`` per document with its own look-ups."""
    from django.db import transaction

    from access_control.models import AccessRule, Block, CategoryMask, OccupationalAuthorisation, TreatingRightsGrant
    from access_control.rules import OPEN_STATES
    from access_control.trail import record_entry
    from notifications.models import Notice
    from notifications.outbox import queue_notice
    from practitioners.models import Practitioner
    from records.models import Document, Profile

    def may_open(practitioner, profile) -> bool:
        return (
            profile.state in OPEN_STATES
            and practitioner.status == Practitioner.Status.ACTIVE
            and not practitioner.is_insurer_physician
            and AccessRule.objects.filter(profession_id=practitioner.profession_id, may_read=True).exists()
            and (
                not practitioner.is_occupational_physician
                or OccupationalAuthorisation.objects.filter(profile=profile, practitioner=practitioner).exists()
            )
            and not Block.objects.filter(profile=profile, practitioner=practitioner).exists()
        )

    def has_perm(practitioner, document) -> bool:
        profile = Profile.objects.only("state", "treating_doctor_id").get(pk=document.profile_id)
        if profile.state not in OPEN_STATES:
            return False
        if Block.objects.filter(profile_id=profile.pk, practitioner_id=practitioner.pk).exists():
            return False
        if not AccessRule.objects.filter(
            profession_id=practitioner.profession_id, document_type_id=document.document_type_id, may_read=True
        ).exists():
            return False
        if practitioner.pk in (document.author_practitioner_id, profile.treating_doctor_id):
            return True
        masked = (
            document.masked_at is not None
            or CategoryMask.objects.filter(
                profile_id=profile.pk, category__document_types=document.document_type_id
            ).exists()
        )
        return not masked or TreatingRightsGrant.objects.filter(profile=profile, practitioner=practitioner).exists()

    with transaction.atomic():
        practitioner = Practitioner.objects.select_related("profession").get(pk=practitioner_id)
        profile = Profile.objects.get(pk=profile_id)
        allowed = may_open(practitioner, profile)
        entry = record_entry(
            profile=profile,
            action="open_record",
            actor=practitioner,
            outcome="allowed" if allowed else "denied",
            reason="" if allowed else "refused",
        )
        if not allowed:
            return []
        queue_notice(profile, Notice.Kind.CONSULTATION, practitioner=practitioner, trail_entry=entry)
        documents = Document.objects.filter(profile_id=profile_id, deleted_at__isnull=True).order_by(
            "-deposited_at", "-pk"
        )
        return [document.pk for document in documents if has_perm(practitioner, document)]


# --- measurement -----------------------------------------------------------------------------------------


def choose_pairs(data: dict, count: int, rng: random.Random) -> list[tuple[int, int]]:
    """Random practitioner–heavy patient pairs, with the interesting cases over-represented a little:
    the treating doctor (A6), an author of the record (A4), a blocked practitioner (A5), a practitioner granted
    the treating doctor's rights (A4)."""
    from practitioners.models import Practitioner
    from records.models import Profile

    practitioner_ids = list(Practitioner.objects.values_list("pk", flat=True))
    treating = dict(Profile.objects.filter(pk__in=data["heavy"]).values_list("pk", "treating_doctor_id"))
    blocked = dict(data["blocks"])
    pairs = []
    for _ in range(count):
        profile_id = rng.choice(data["heavy"])
        roll = rng.random()
        if roll < 0.05 and data.get("grants"):
            profile_id, practitioner_id = rng.choice(data["grants"])
        elif roll < 0.10 and treating.get(profile_id):
            practitioner_id = treating[profile_id]
        elif roll < 0.15 and data["authors"].get(profile_id):
            practitioner_id = rng.choice(data["authors"][profile_id])
        elif roll < 0.20 and profile_id in blocked:
            practitioner_id = blocked[profile_id]
        else:
            practitioner_id = rng.choice(practitioner_ids)
        pairs.append((practitioner_id, profile_id))
    return pairs


CONTENDERS = ("ours", "ours_queryset", "floor", "floor_unprepared", "naive")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def measure(pairs, floor: Floor, floor_unprepared: Floor, rng: random.Random, *, naive_every: int, record: bool):
    from practitioners.models import Practitioner
    from records.models import Profile

    practitioners = Practitioner.objects.select_related("profession").in_bulk({p for p, _ in pairs})
    profiles = Profile.objects.in_bulk({p for _, p in pairs})
    timings: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    mismatches, visible = 0, []
    for index, (practitioner_id, profile_id) in enumerate(pairs):
        practitioner, profile = practitioners[practitioner_id], profiles[profile_id]
        contenders = [
            ("ours", lambda a=practitioner, b=profile: ours(a, b)),
            ("ours_queryset", lambda a=practitioner, b=profile: ours_queryset(a, b)),
            ("floor", lambda a=practitioner_id, b=profile_id: floor.run(a, b)),
            ("floor_unprepared", lambda a=practitioner_id, b=profile_id: floor_unprepared.run(a, b)),
        ]
        if index % naive_every == 0:
            contenders.append(("naive", lambda a=practitioner_id, b=profile_id: naive(a, b)))
        rng.shuffle(contenders)
        results = {}
        for name, run in contenders:
            started = time.perf_counter()
            results[name] = run()
            elapsed = (time.perf_counter() - started) * 1000
            if record:
                timings[name].append(elapsed)
        if len({tuple(ids) for ids in results.values()}) != 1:
            mismatches += 1
            log(
                f"  MISMATCH practitioner {practitioner_id} profile {profile_id}: "
                + ", ".join(f"{name}={len(ids)} ids" for name, ids in results.items())
            )
        visible.append(len(results["ours"]))
    return timings, mismatches, visible


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100 000 documents, fewer pairs")
    parser.add_argument("--pairs", type=int, default=None, help="measured pairs (default 600, quick 300)")
    parser.add_argument("--naive-every", type=int, default=3, help="run the naive baseline on every n-th pair")
    parser.add_argument("--database", default="carnet_bench")
    parser.add_argument("--reuse", action="store_true", help="keep an already loaded database of that size")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument(
        "--client-binding",
        action="store_true",
        help="run ours with Django's client-side binding (as with DATABASE_SERVER_SIDE_BINDING=0: no prepared statements)",
    )
    args = parser.parse_args()
    documents = 100_000 if args.quick and args.documents == 1_000_000 else args.documents
    pairs_count = args.pairs or (300 if args.quick else 600)
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url:
        raise SystemExit("Set DATABASE_URL to a PostgreSQL server (the bench creates its own database).")
    url = bench_url(base_url, args.database)
    rng = random.Random(args.seed)

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    if args.client_binding:
        from django.conf import settings

        for option in ("server_side_binding", "prepare_threshold"):
            settings.DATABASES["default"].get("OPTIONS", {}).pop(option, None)
    import psycopg
    from django.core.management import call_command

    import notifications.outbox
    from records.models import Document

    notifications.outbox.enqueue_delivery = lambda notice_id, profile_id=None: (
        None
    )  # broker hand-off: not database work

    reuse = False
    if args.reuse:
        try:
            reuse = Document.objects.count() == documents
        except Exception:  # the database does not exist yet
            reuse = False
        finally:
            from django.db import connection

            connection.close()
    if reuse:
        log(f"Reusing {args.database} ({documents} documents).")
        data = json.loads(Path(ROOT / "var" / f"{args.database}.json").read_text())
        data["authors"] = {int(k): v for k, v in data["authors"].items()}
    else:
        log(f"Creating {args.database} and loading {documents} documents…")
        recreate_database(base_url, args.database)
        started = time.perf_counter()
        call_command("migrate", verbosity=0, skip_checks=True)
        log(f"  migrated in {time.perf_counter() - started:.1f} s")
        with psycopg.connect(url) as conn:
            started = time.perf_counter()
            data = load(conn, documents, rng)
            conn.commit()
            log(f"  loaded in {time.perf_counter() - started:.1f} s")
            finish_load(conn)
        (ROOT / "var").mkdir(exist_ok=True)
        Path(ROOT / "var" / f"{args.database}.json").write_text(json.dumps(data))

    floor, floor_unprepared = Floor(url), Floor(url, prepared=False)
    warm = choose_pairs(data, 60, rng)
    measure(warm, floor, floor_unprepared, rng, naive_every=args.naive_every, record=False)
    pairs = choose_pairs(data, pairs_count, rng)
    timings, mismatches, visible = measure(
        pairs, floor, floor_unprepared, rng, naive_every=args.naive_every, record=True
    )

    from access_control.api import visible_documents
    from access_control.trail import verify_chain
    from practitioners.models import Practitioner
    from records.models import Profile

    broken = [pid for pid in {p for _, p in pairs} if verify_chain(pid)]
    blocked = set(map(tuple, data["blocks"]))
    sample = next(pair for pair in pairs if pair not in blocked)
    sample_practitioner, sample_profile = Practitioner.objects.get(pk=sample[0]), Profile.objects.get(pk=sample[1])
    plan = (
        visible_documents(sample_practitioner, sample_profile)
        .values_list("pk", flat=True)
        .explain(analyze=True, buffers=True)
    )
    log("EXPLAIN (ANALYZE, BUFFERS) of visible_documents for one heavy pair:")
    for line in plan.splitlines():
        log(f"  {line}")

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ours_queries:
        ours(sample_practitioner, sample_profile)
    with CaptureQueriesContext(connection) as naive_queries:
        naive(sample[0], sample[1])
    log(
        f"statements per pair (BEGIN/COMMIT included): ours {len(ours_queries)}, naive {len(naive_queries)}, "
        "floor 4 (lock, read, write, COMMIT) + psycopg's BEGIN"
    )

    p50 = {name: statistics.median(values) for name, values in timings.items()}
    p99 = {name: percentile(values, 0.99) for name, values in timings.items()}
    log(
        f"pairs measured: {len(pairs)} (naive on {len(timings['naive'])}); visible documents per pair: "
        f"median {statistics.median(visible):.0f}, max {max(visible)}; mismatches: {mismatches}; "
        f"broken chains after the run: {len(broken)}"
    )
    for name in CONTENDERS:
        log(f"  {name:16}  p50 {p50[name]:8.2f} ms   p99 {p99[name]:8.2f} ms")
    result = {
        "documents": documents,
        "p50_ms": round(p50["ours"], 3),
        "p99_ms": round(p99["ours"], 3),
        "floor_ratio": round(p50["ours"] / p50["floor"], 2),
        "queryset_ratio": round(p50["ours_queryset"] / p50["floor"], 2),
        "naive_speedup": round(p50["naive"] / p50["ours"], 1),
    }
    print(json.dumps(result), flush=True)
    return 1 if mismatches or broken else 0


if __name__ == "__main__":
    sys.exit(main())
