"""Postal address lines for a French window envelope, per the NF Z10-011 norm (N4).

At most 6 lines of at most 38 characters: 1 recipient, 2 flat/floor, 3 building, 4 number and street,
5 locality or post-office box, 6 postal code and CITY in capitals without accents; empty lines are dropped.
Abroad, the last line is the country name in capitals and the city line comes before it (a 7th line is not
allowed: the building line gives way first).
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

from .channels.base import UndeliverableError

if TYPE_CHECKING:  # records and the directory import the notifications at run time
    from records.models import Profile

MAX_LINES = 6
MAX_CHARS = 38

# Countries the mail house sees most; others are printed by their ISO code, which La Poste accepts.
_COUNTRY_NAMES = {
    "BE": "BELGIQUE",
    "CH": "SUISSE",
    "DE": "ALLEMAGNE",
    "ES": "ESPAGNE",
    "GB": "ROYAUME-UNI",
    "IT": "ITALIE",
    "LU": "LUXEMBOURG",
    "MC": "MONACO",
    "PT": "PORTUGAL",
}
# French overseas departments and Monaco are addressed like mainland France (no country line).
_DOMESTIC = {"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "MC"}


def _plain_upper(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def _fit(text: str) -> str:
    return " ".join(text.split())[:MAX_CHARS].rstrip()


def recipient_line(profile: Profile) -> str:
    civility = "Mme" if profile.sex == profile.Sex.FEMALE else "M."
    first = profile.first_names.split(" ")[0] if profile.first_names else ""
    surname = (profile.usual_name or profile.birth_name).upper()
    line = " ".join(part for part in (civility, first, surname) if part)
    if len(line) > MAX_CHARS:
        line = f"{civility} {surname}"
    return _fit(line)


def address_lines(profile: Profile) -> list[str]:
    """The address block, or :class:`UndeliverableError` when the profile has no usable postal address."""
    if not (profile.postal_code and profile.city and (profile.address_street or profile.address_locality)):
        raise UndeliverableError("no usable postal address")
    country = (profile.country or "FR").upper()
    city_line = _fit(_plain_upper(f"{profile.postal_code} {profile.city}"))
    lines = [
        recipient_line(profile),
        _fit(profile.address_complement),
        _fit(profile.address_building),
        _fit(profile.address_street),
        _fit(profile.address_locality),
        city_line,
    ]
    if country not in _DOMESTIC:
        lines.append(_COUNTRY_NAMES.get(country, country))
    lines = [line for line in lines if line]
    while len(lines) > MAX_LINES:
        # Drop the least useful optional line: building first, then flat/floor.
        for optional in (_fit(profile.address_building), _fit(profile.address_complement)):
            if optional and optional in lines[1:-2]:
                lines.remove(optional)
                break
        else:
            lines = lines[:1] + lines[-(MAX_LINES - 1) :]
    return lines
