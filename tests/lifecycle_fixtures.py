"""Builders for profiles at each lifecycle stage, through the lifecycle actions themselves (L1-L10).

``enrol`` goes through the roster enrolment (L1); ``enrol_open`` enrols 43 days in the past and lets the
scheduled rule open the profile (L3), then re-issues a provisional code (the first one expired with the
window); ``enrol_active`` then activates it (L4). They work under a frozen clock (``time_machine``) too.
"""

import io
import itertools
from datetime import date, timedelta

import time_machine
from django.utils import timezone

from practitioners.models import Practitioner, Profession
from records import actions
from records.identifiers import make_nir
from records.models import Document, Profile, User

_serial = itertools.count(1)
PASSWORD = "Vert-Galant-1987!"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def next_nir(sex: str = "1", year: int = 80, month: int = 1) -> str:
    """A fresh valid NIR (I1), born in Paris (75), order number from a counter."""
    return make_nir(f"{sex}{year:02d}{month:02d}75{next(_serial):06d}")


def make_staff(username: str = "karim.benali") -> User:
    """Karim Benali, health-insurance agent (staff accounts are created by administrators)."""
    user, _created = User.objects.get_or_create(
        username=username,
        defaults={"kind": User.Kind.STAFF, "first_name": "Karim", "last_name": "Benali", "is_staff": True},
    )
    return user


def enrol(*, actor=None, **fields) -> tuple[Profile, str | None]:
    birth_date = fields.pop("birth_date", date(1980, 1, 15))
    sex = fields.pop("sex", Profile.Sex.MALE)
    nir = fields.pop("nir", None) or next_nir(
        "1" if sex == Profile.Sex.MALE else "2", birth_date.year % 100, birth_date.month
    )
    values = {
        "birth_name": "PETIT",
        "first_names": "Bernard",
        "address_street": "12 rue des Lilas",
        "postal_code": "69003",
        "city": "LYON",
        **fields,
    }
    return actions.do_enrol_profile(nir=nir, birth_date=birth_date, sex=sex, actor=actor, **values)


def enrol_open(**fields) -> tuple[Profile, str]:
    with time_machine.travel(timezone.now() - timedelta(days=43), tick=False):
        profile, _code = enrol(**fields)
    actions.do_open_profile(profile)
    profile, code = actions.do_reissue_provisional_code(profile, actor=None)
    return profile, code


def activate(profile: Profile, code: str | None, **overrides) -> User:
    """``do_activate_profile`` with the profile's identity traits, ``code``, a valid password and an e-mail (L4);
    ``overrides`` replace any of them."""
    values = {
        "nir": profile.nir,
        "provisional_code": code,
        "birth_date": profile.birth_date,
        "password": PASSWORD,
        "email": "patient@example.org",
        **overrides,
    }
    return actions.do_activate_profile(profile, **values)


def enrol_active(*, email: str = "alice.martin@example.org", **fields) -> tuple[Profile, User]:
    fields = {"birth_name": "MARTIN", "first_names": "Alice", "sex": Profile.Sex.FEMALE, **fields}
    profile, code = enrol_open(**fields)
    user = activate(profile, code, email=email)
    profile.refresh_from_db()
    return profile, user


def make_doctor() -> Practitioner:
    """Dr Claire Dubois, médecin généraliste (practitioners are imported from the RPPS directory by staff)."""
    practitioner, _created = Practitioner.objects.get_or_create(
        rpps="10005173140",
        defaults={
            "title": "Dr",
            "last_name": "Dubois",
            "first_name": "Claire",
            "profession": Profession.objects.get(code="10"),
        },
    )
    return practitioner


def deposit_document(profile: Profile, author) -> Document:
    """A practitioner's (or the holder's) deposit through the deposit action (A10)."""
    from access_control.actions import do_deposit_document

    document_type = "11502-2" if isinstance(author, Practitioner) else "DOCPAT01"
    return do_deposit_document(
        profile, actor=author, fileobj=io.BytesIO(PDF), document_type=document_type, title="Analyses"
    )
