"""Property test: the SQL door (access_control.api) agrees with the independent model of the rules (tests/oracle.py).

Hypothesis generates random worlds — profiles in every state, practitioners of several professions with every
marker (SAMU regulator, occupational physician with or without authorisation, insurer's physician, suspended),
documents of many types with every combination of mask, hold, deletion, minor's secret and author, blocks,
category masks, treating doctors and the treating doctor's rights granted to others, opt-outs, a random matrix — and asks both sides every question: opening each
record in a random mode (with or without justification and attestation), listing it, opening documents, looking
profiles up, and what each patient account sees. Worlds are built with plain ``objects.create`` (fast) inside a
transaction rolled back after each example.

Examples: 150 by default (profile ``ci``); ``HYPOTHESIS_PROFILE=thorough`` runs 1,000.
"""

import itertools
import os
from datetime import date, timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from access_control import api
from access_control.models import (
    AccessRule,
    Block,
    CategoryMask,
    DocumentCategory,
    OccupationalAuthorisation,
    Review,
    TreatingRightsGrant,
)
from practitioners.models import Practitioner, Profession
from records.models import Document, DocumentType, Profile, User
from records.nir_index import index_nir
from tests import oracle

_SUPPRESS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=_SUPPRESS, database=None)
settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=_SUPPRESS, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TYPES = ["11502-2", "68599-0", "89233-1", "57833-6", "60593-1", "51969-4", "ATTEST-RESID", "DOCPAT04"]
PROFESSIONS = ["10", "21", "40", "50", "60", "70", "80"]
STATES = [choice.value for choice in Profile.State]
MODES = ["normal", "bris_de_glace", "centre_15"]
CATEGORIES = ["cat-a", "cat-b"]
_serial = itertools.count(1)


def mostly(value: bool, weight: int = 5):
    """A boolean that is ``value`` ``weight`` times out of ``weight + 1``: worlds where access is often allowed."""
    return st.sampled_from([value] * weight + [not value])


practitioner_st = st.fixed_dictionaries(
    {
        "profession": st.sampled_from(PROFESSIONS),
        "active": mostly(True),
        "samu_regulator": mostly(False, 2),
        "occupational": mostly(False),
        "insurer": mostly(False, 8),
    }
)
profile_st = st.fixed_dictionaries(
    {
        "state": st.sampled_from(STATES) | st.sampled_from(["open", "active"]),
        "emergency_opt_out": mostly(False, 3),
        "high_profile": st.booleans(),
        "treating_doctor": st.integers(0, 3) | st.none(),
        "has_user": st.booleans(),
        "representative": st.none() | st.integers(0, 2),
    }
)
document_st = st.fixed_dictionaries(
    {
        "profile": st.integers(0, 2),
        "type": st.sampled_from(TYPES),
        "author": st.integers(0, 3) | st.none(),
        "masked": st.booleans(),
        "deleted": mostly(False, 3),
        "hold": st.sampled_from(["none", "held", "released", "expired"]),
        "hidden_from_representatives": st.booleans(),
    }
)
world_st = st.fixed_dictionaries(
    {
        "practitioners": st.lists(practitioner_st, min_size=1, max_size=4),
        "profiles": st.lists(profile_st, min_size=1, max_size=3),
        "documents": st.lists(document_st, min_size=1, max_size=12),
        "readable": st.sets(st.tuples(st.sampled_from(PROFESSIONS), st.sampled_from(TYPES)), min_size=12, max_size=40),
        "denied": st.sets(st.tuples(st.sampled_from(PROFESSIONS), st.sampled_from(TYPES)), max_size=6),
        "categories": st.fixed_dictionaries({c: st.sets(st.sampled_from(TYPES), max_size=3) for c in CATEGORIES}),
        "blocks": st.sets(st.tuples(st.integers(0, 2), st.integers(0, 3)), max_size=4),
        "authorisations": st.sets(st.tuples(st.integers(0, 2), st.integers(0, 3)), max_size=4),
        "category_masks": st.sets(st.tuples(st.integers(0, 2), st.sampled_from(CATEGORIES)), max_size=3),
        "treating_rights": st.sets(st.tuples(st.integers(0, 2), st.integers(0, 3)), max_size=3),
    }
)
request_st = st.tuples(
    st.sampled_from(["normal", "normal", "bris_de_glace", "centre_15"]),
    st.sampled_from(["", "   ", "Patient inconscient aux urgences"]),
    st.booleans(),
)


def build_world(spec) -> tuple[oracle.World, dict]:
    """The same world in the database and in the model."""
    world = oracle.World()
    now = timezone.now()
    types = {t.code: t for t in DocumentType.objects.filter(code__in=TYPES)}
    professions = {p.code: p for p in Profession.objects.filter(code__in=PROFESSIONS)}

    AccessRule.objects.all().delete()
    for profession, type_code in spec["readable"]:
        AccessRule.objects.create(profession=professions[profession], document_type=types[type_code], may_read=True)
        world.readable.add((profession, type_code))
    for profession, type_code in spec["denied"] - spec["readable"]:
        AccessRule.objects.create(profession=professions[profession], document_type=types[type_code], may_read=False)
    DocumentCategory.objects.all().delete()
    categories = {}
    for code, type_codes in spec["categories"].items():
        category = DocumentCategory.objects.create(code=code, label_fr=code, label_en=code)
        category.document_types.set([types[t] for t in type_codes])
        categories[code] = category
        world.categories[code] = set(type_codes)

    practitioners = []
    for p in spec["practitioners"]:
        n = next(_serial)
        row = Practitioner.objects.create(
            rpps=f"9{n:010d}",
            last_name=f"P{n}",
            first_name="Test",
            profession=professions[p["profession"]],
            status=Practitioner.Status.ACTIVE if p["active"] else Practitioner.Status.SUSPENDED,
            is_samu_regulator=p["samu_regulator"],
            is_occupational_physician=p["occupational"],
            is_insurer_physician=p["insurer"],
        )
        practitioners.append(row)
        world.practitioners[row.pk] = oracle.Practitioner(
            id=row.pk,
            profession=p["profession"],
            active=p["active"],
            samu_regulator=p["samu_regulator"],
            occupational=p["occupational"],
            insurer=p["insurer"],
        )

    def practitioner_at(index):
        return practitioners[index % len(practitioners)] if index is not None else None

    profiles = []
    for p in spec["profiles"]:
        n = next(_serial)
        user = User.objects.create(username=f"patient-{n}", kind=User.Kind.PATIENT) if p["has_user"] else None
        doctor = practitioner_at(p["treating_doctor"])
        row = Profile.objects.create(
            nir=f"1{n:014d}",
            birth_name="Essai",
            first_names="Test",
            birth_date=date(1980, 1, 1) + timedelta(days=n),
            sex="F",
            state=p["state"],
            emergency_access_opt_out=p["emergency_opt_out"],
            high_profile=p["high_profile"],
            treating_doctor=doctor,
            user=user,
        )
        index_nir(row)  # as the enrolment does: found by NIR on Citus too (I1)
        profiles.append(row)
        world.profiles[row.pk] = oracle.Profile(
            id=row.pk,
            state=p["state"],
            emergency_opt_out=p["emergency_opt_out"],
            high_profile=p["high_profile"],
            treating_doctor=doctor.pk if doctor else None,
            holder_user=user.pk if user else None,
        )
    for p, row in zip(spec["profiles"], profiles, strict=True):
        if p["representative"] is None:
            continue
        representative = profiles[p["representative"] % len(profiles)]
        if representative.pk == row.pk:
            continue
        Profile.objects.filter(pk=row.pk).update(legal_representative=representative)
        world.profiles[row.pk].representative_user = representative.user_id

    def profile_at(index):
        return profiles[index % len(profiles)]

    documents = []
    for d in spec["documents"]:
        n = next(_serial)
        profile = profile_at(d["profile"])
        author = practitioner_at(d["author"])
        held_until = {
            "none": None,
            "held": now + timedelta(days=30),
            "released": now + timedelta(days=30),
            "expired": now - timedelta(minutes=1),
        }[d["hold"]]
        row = Document.objects.create(
            profile=profile,
            document_type=types[d["type"]],
            title=f"Document {n}",
            care_date=date(2024, 1, 1),
            author_kind=Document.AuthorKind.PRACTITIONER if author else Document.AuthorKind.PATIENT,
            author_practitioner=author,
            deposited_at=now - timedelta(minutes=n),
            size=10,
            content_type="application/pdf",
            sha256="0" * 64,
            storage_key=f"property/{n}",
            wrapped_key=b"",
            master_key_id="test1",
            masked_at=now if d["masked"] else None,
            deleted_at=now if d["deleted"] else None,
            held_until=held_until,
            hold_released_at=now if d["hold"] == "released" else None,
            hidden_from_representatives=d["hidden_from_representatives"],
        )
        documents.append(row)
        world.documents[row.pk] = oracle.Document(
            id=row.pk,
            profile=profile.pk,
            type=d["type"],
            author=author.pk if author else None,
            masked=d["masked"],
            deleted=d["deleted"],
            held=d["hold"] == "held",
            hidden_from_representatives=d["hidden_from_representatives"],
        )

    for profile_index, practitioner_index in spec["blocks"]:
        profile, practitioner = profile_at(profile_index), practitioner_at(practitioner_index)
        Block.objects.get_or_create(profile=profile, practitioner=practitioner)
        world.blocks.add((profile.pk, practitioner.pk))
    for profile_index, practitioner_index in spec["authorisations"]:
        profile, practitioner = profile_at(profile_index), practitioner_at(practitioner_index)
        OccupationalAuthorisation.objects.get_or_create(profile=profile, practitioner=practitioner)
        world.occupational_authorisations.add((profile.pk, practitioner.pk))
    for profile_index, code in spec["category_masks"]:
        profile = profile_at(profile_index)
        CategoryMask.objects.get_or_create(profile=profile, category=categories[code])
        world.category_masks.add((profile.pk, code))
    for profile_index, practitioner_index in spec["treating_rights"]:
        profile, practitioner = profile_at(profile_index), practitioner_at(practitioner_index)
        TreatingRightsGrant.objects.get_or_create(profile=profile, practitioner=practitioner)
        world.treating_rights.add((profile.pk, practitioner.pk))

    users = list(User.objects.filter(profile__in=profiles))
    return world, {"practitioners": practitioners, "profiles": profiles, "documents": documents, "users": users}


@pytest.mark.django_db
@given(spec=world_st, data=st.data())
def test_the_door_agrees_with_the_model_of_the_rules(spec, data):
    cache.clear()
    with transaction.atomic():
        world, rows = build_world(spec)
        openings: set[tuple[int, int, str]] = set()
        for practitioner in rows["practitioners"]:
            for profile in rows["profiles"]:
                mode, justification, attests = data.draw(request_st)
                expected = oracle.open_record(world, practitioner.pk, profile.pk, mode, justification, attests)
                decision = api.open_record(
                    practitioner, profile, mode=mode, justification=justification, attests_care_team=attests
                )
                assert (decision.allowed, decision.reason) == (not expected, expected)
                event("opening " + ("allowed" if decision.allowed else "denied: " + decision.reason))
                if decision.allowed:
                    openings.add((practitioner.pk, profile.pk, mode))
                    reviews = set(
                        Review.objects.filter(trail_entry=decision.trail_entry).values_list("kind", flat=True)
                    )
                    expected_reviews = {"emergency"} if mode != "normal" else set()
                    if world.profiles[profile.pk].high_profile:
                        expected_reviews.add("high_profile")
                    assert reviews == expected_reviews

                listed = set(api.visible_documents(practitioner, profile, mode=mode).values_list("pk", flat=True))
                assert listed == oracle.visible_to_practitioner(world, practitioner.pk, profile.pk, mode)
                if listed:
                    event("listing shows documents")

                found = api.find_profile(practitioner, nir=profile.nir, birth_date=profile.birth_date)
                assert (found is not None) == oracle.lookup_finds(world, practitioner.pk, profile.pk)

        for practitioner in rows["practitioners"]:
            if not rows["documents"]:
                break
            opened_profiles = {profile for p, profile, _mode in openings if p == practitioner.pk}
            likely = [d for d in rows["documents"] if d.profile_id in opened_profiles] or rows["documents"]
            document = data.draw(st.sampled_from(likely) | st.sampled_from(rows["documents"]))
            modes = [m for p, _profile, m in openings if p == practitioner.pk] or MODES
            mode = data.draw(st.sampled_from(modes) | st.sampled_from(MODES))
            opened = api.open_document(practitioner, document.pk, mode=mode)
            expected = oracle.open_document(world, practitioner.pk, document.pk, mode, openings)
            assert (opened is not None) == expected
            event(f"document opened: {expected}")
            assert api.open_document(practitioner, 10**12, mode=mode) is None

        for user in rows["users"]:
            for profile in rows["profiles"]:
                seen = set(api.documents_visible_to_patient(user, profile).values_list("pk", flat=True))
                assert seen == oracle.visible_to_patient(world, user.pk, profile.pk)
        transaction.set_rollback(True)
