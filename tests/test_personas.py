"""The persona cast (docs/personas.md) is built through the actions, with valid identifiers, and idempotently."""

from stdnum import luhn

from access_control.models import Block, CategoryMask, Review
from practitioners.models import Practitioner
from records.identifiers import validate_nir
from records.models import Document, Profile, User
from records.personas import build_personas, minimal_pdf


def test_every_persona_is_in_the_state_personas_md_describes(personas):
    p = personas
    assert p.alice.state == Profile.State.ACTIVE
    assert p.alice.email_verified and p.alice.preferred_channel == Profile.Channel.EMAIL
    assert p.alice.treating_doctor == p.claire
    assert Block.objects.filter(profile=p.alice, practitioner=p.hugo).exists()
    assert Document.objects.get(profile=p.alice, document_type__code="68599-0").masked_at is not None
    assert Document.objects.filter(profile=p.alice, document_type__code="11502-2").exists()
    assert p.fanny.legal_representative == p.alice
    assert Document.objects.filter(profile=p.fanny, hidden_from_representatives=True).count() == 1
    assert p.bernard.state == Profile.State.OPEN and p.bernard.user_id is None
    assert p.bernard.address_street and p.bernard.postal_code and p.bernard.city
    assert p.camille.state == Profile.State.OPPOSED
    assert p.denise.state == Profile.State.CLOSED and Document.objects.filter(profile=p.denise).exists()
    assert p.etienne.state == Profile.State.ACTIVE and p.etienne.emergency_access_opt_out
    assert p.gerard.state == Profile.State.OPEN and p.gerard.high_profile
    assert p.ines.is_samu_regulator and p.gilles.is_occupational_physician and p.julien.is_insurer_physician
    assert p.emma.profession.code == "21" and p.francois.profession.code == "70"
    assert p.karim.kind == User.Kind.STAFF and p.karim.is_staff
    assert not CategoryMask.objects.exists() and not Review.objects.exists()


def test_identifiers_are_valid__I1_I2(personas):
    for profile in Profile.objects.all():
        assert validate_nir(profile.nir) == profile.nir
    rpps = list(Practitioner.objects.values_list("rpps", flat=True))
    assert len(rpps) == 8
    assert all(luhn.is_valid(number) and len(number) == 11 for number in rpps)


def test_the_build_goes_through_the_actions__T1(personas):
    from access_control.models import TrailEntry

    actions = set(TrailEntry.objects.filter(profile=personas.alice).values_list("action", flat=True))
    assert {"enrol", "opening", "activation", "declare_treating_doctor", "deposit_document"} <= actions
    assert {"mask_document", "block_practitioner"} <= actions


def test_building_twice_returns_the_same_people_without_duplicates(personas):
    counts = (Profile.objects.count(), Practitioner.objects.count(), User.objects.count(), Document.objects.count())
    again = build_personas()
    assert again == personas or again.alice.pk == personas.alice.pk
    assert (again.claire.pk, again.karim.pk, again.fanny.pk) == (
        personas.claire.pk,
        personas.karim.pk,
        personas.fanny.pk,
    )
    assert (
        Profile.objects.count(),
        Practitioner.objects.count(),
        User.objects.count(),
        Document.objects.count(),
    ) == counts


def test_demo_documents_are_real_pdf_and_png_files(personas):
    pdf = minimal_pdf("Bilan sanguin", ["Hémoglobine : 13,8 g/dL"])
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    types = set(Document.objects.values_list("content_type", flat=True))
    assert types == {"application/pdf", "image/png"}
