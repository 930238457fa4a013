"""An independent model of the access rules (A1-A13), written from the rules, for the property test.

Plain Python over plain data: no ORM, no SQL, nothing imported from ``access_control``. The property test
(tests/test_access_property.py) builds the same random world in the database and in a ``World``, and checks
that ``access_control.api`` answers as this model does.

Reason codes are the trail's (documented in access_control/rules.py); the order of the checks is: the request
(practitioner in practice, profession reading something, centre 15 for SAMU regulators, justification for
bris de glace, attestation for normal access), then the rules' precedence, strongest first: profile state (L),
forbidden actor (A3), block (A5), emergency opt-out (A7); then, per document, the matrix (A2), then the masks
(A4, A12) except for the author, the treating doctor and those the patient granted the treating doctor's rights.
"""

from dataclasses import dataclass, field

OPEN_STATES = frozenset({"open", "active"})
EMERGENCY_MODES = frozenset({"bris_de_glace", "centre_15"})


@dataclass
class Practitioner:
    id: int
    profession: str
    active: bool = True
    samu_regulator: bool = False
    occupational: bool = False
    insurer: bool = False


@dataclass
class Profile:
    id: int
    state: str
    emergency_opt_out: bool = False
    high_profile: bool = False
    treating_doctor: int | None = None
    holder_user: int | None = None
    representative_user: int | None = None


@dataclass
class Document:
    id: int
    profile: int
    type: str
    author: int | None  # the practitioner who deposited it; None for the patient's own upload
    masked: bool = False
    deleted: bool = False
    held: bool = False  # on hold now: held, not released, not yet past its date (A8)
    hidden_from_representatives: bool = False


@dataclass
class World:
    practitioners: dict[int, Practitioner] = field(default_factory=dict)
    profiles: dict[int, Profile] = field(default_factory=dict)
    documents: dict[int, Document] = field(default_factory=dict)
    readable: set[tuple[str, str]] = field(default_factory=set)  # (profession, type) with may_read
    categories: dict[str, set[str]] = field(default_factory=dict)  # category -> types
    blocks: set[tuple[int, int]] = field(default_factory=set)  # (profile, practitioner)
    occupational_authorisations: set[tuple[int, int]] = field(default_factory=set)  # (profile, practitioner)
    category_masks: set[tuple[int, str]] = field(default_factory=set)  # (profile, category)
    treating_rights: set[tuple[int, int]] = field(default_factory=set)  # (profile, practitioner) granted, A4


def _practitioner_refusal(world: World, p: Practitioner, mode: str) -> str:
    if not p.active:
        return "practitioner_inactive"
    if not any(profession == p.profession for profession, _type in world.readable):
        return "profession_not_authorised"
    if mode == "centre_15" and not p.samu_regulator:
        return "not_samu_regulator"
    return ""


def _profile_refusal(world: World, p: Practitioner, profile: Profile, mode: str) -> str:
    if profile.state not in OPEN_STATES:
        return "profile_state"
    if p.insurer:
        return "insurer_physician"
    if p.occupational and (profile.id, p.id) not in world.occupational_authorisations:
        return "occupational_unauthorised"
    if (profile.id, p.id) in world.blocks:
        return "blocked"
    if mode in EMERGENCY_MODES and profile.emergency_opt_out:
        return "emergency_opt_out"
    return ""


def open_record(world: World, p_id: int, profile_id: int, mode: str, justification: str, attests: bool) -> str:
    """The reason the record may not be opened, or "" when it may (A1, A3, A5, A7)."""
    p = world.practitioners[p_id]
    refusal = _practitioner_refusal(world, p, mode)
    if refusal:
        return refusal
    if mode == "bris_de_glace" and not justification.strip():
        return "justification_missing"
    if mode == "normal" and not attests:
        return "care_team_not_attested"
    return _profile_refusal(world, p, world.profiles[profile_id], mode)


def may_open(world: World, p_id: int, profile_id: int, mode: str) -> bool:
    """The record-level rules alone (what a listing or a document opening re-checks)."""
    p = world.practitioners[p_id]
    return not (_practitioner_refusal(world, p, mode) or _profile_refusal(world, p, world.profiles[profile_id], mode))


def lookup_finds(world: World, p_id: int, profile_id: int) -> bool:
    """A11 with matching identity traits: the profile is returned iff it may be opened in normal mode."""
    return may_open(world, p_id, profile_id, "normal")


def visible_to_practitioner(world: World, p_id: int, profile_id: int, mode: str) -> set[int]:
    if not may_open(world, p_id, profile_id, mode):
        return set()
    p = world.practitioners[p_id]
    profile = world.profiles[profile_id]
    masked_types = set()
    for category, types in world.categories.items():
        if (profile_id, category) in world.category_masks:
            masked_types |= types
    seen = set()
    for doc in world.documents.values():
        if doc.profile != profile_id or doc.deleted:
            continue
        if (p.profession, doc.type) not in world.readable:  # A2, default-deny
            continue
        privileged = (
            doc.author == p_id  # A4: its author
            or profile.treating_doctor == p_id  # A4, A6: the treating doctor
            or (profile_id, p_id) in world.treating_rights  # A4: those granted the treating doctor's rights
        )
        if not privileged and (doc.masked or doc.type in masked_types):  # A4, A12
            continue
        seen.add(doc.id)
    return seen


def open_document(world: World, p_id: int, doc_id: int, mode: str, openings: set[tuple[int, int, str]]) -> bool:
    doc = world.documents.get(doc_id)
    if doc is None or (p_id, doc.profile, mode) not in openings:
        return False
    return doc_id in visible_to_practitioner(world, p_id, doc.profile, mode)


def visible_to_patient(world: World, user_id: int, profile_id: int) -> set[int]:
    """A8, A9, A10: the holder sees all but held and deleted documents; a representative not the secret ones."""
    profile = world.profiles[profile_id]
    if profile.state not in OPEN_STATES:
        return set()
    holder = profile.holder_user == user_id
    representative = profile.representative_user == user_id
    seen = set()
    for doc in world.documents.values():
        if doc.profile != profile_id or doc.deleted or doc.held:
            continue
        if holder or (representative and not doc.hidden_from_representatives):
            seen.add(doc.id)
    return seen
