"""Past years of the demo records (``seed_demo`` only): what a real record holds after years of care.

Each patient of the cast gets, for each of the last ``YEARS`` calendar years, the documents their story calls
for (docs/personas.md, the types of /work/shared/domain/document-types.md): Alice's yearly blood test and flu
shot by her treating doctor and her pharmacist, Étienne's asthma follow-up, Bernard's cardiology check-ups,
Gérard's vaccinations, Fanny's child health check-ups. Authors are the cast's practitioners; dates fall on
working days picked by a random generator seeded with the patient's NIR and the year, so a run gives the
same record every time. Titles carry the year: a second run the same year adds nothing; a run next year adds
last year. The tests' cast (``records.personas.build_personas``) does not include this history.
"""

import random
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils import timezone

from .models import Profile
from .personas import Personas, deposit_report

YEARS = 5


@dataclass(frozen=True)
class Visit:
    """One kind of document in a year: its type, its author (a cast attribute), its title and its lines."""

    type_code: str
    author: str
    title: str
    lines: tuple[str, ...]
    months: tuple[int, int] = (1, 12)  # the months it may fall in (flu shots in the autumn)


ALICE = (
    Visit("11502-2", "claire", "Bilan sanguin annuel {year}", ("Hémoglobine : 13,{n} g/dL", "Bilan normal.")),
    Visit("11488-4", "claire", "Consultation de médecine générale ({month} {year})", ("Suivi de l'hypothyroïdie.",)),
    Visit("57833-6", "claire", "Ordonnance de lévothyroxine {year}", ("Lévothyroxine 75 µg, 3 mois, renouvelable.",)),
    Visit("60593-1", "emma", "Dispensation de lévothyroxine ({month} {year})", ("Délivré : 3 boîtes.",)),
    Visit("87273-9", "emma", "Vaccination antigrippale {year}", ("Vaccin grippe saisonnière.",), (10, 12)),
)
ETIENNE = (
    Visit("11488-4", "claire", "Consultation de suivi de l'asthme ({month} {year})", ("Asthme contrôlé.",)),
    Visit("57833-6", "claire", "Ordonnance de salbutamol {year}", ("Salbutamol 100 µg, 2 bouffées si gêne.",)),
    Visit("60593-1", "emma", "Dispensation de salbutamol ({month} {year})", ("Délivré : 1 inhalateur.",)),
    Visit("78601-2", "emma", "Entretien pharmaceutique asthme {year}", ("Technique d'inhalation revue.",)),
)
BERNARD = (
    Visit("11488-4", "david", "Consultation de cardiologie ({month} {year})", ("Tension 13/8. ECG stable.",)),
    Visit("11502-2", "david", "Bilan lipidique {year}", ("Cholestérol LDL : 1,{n}0 g/L.",)),
    Visit("18748-4", "david", "Échographie cardiaque {year}", ("Fraction d'éjection conservée.",), (3, 6)),
)
GERARD = (
    Visit("87273-9", "david", "Vaccination antigrippale {year}", ("Vaccin grippe saisonnière.",), (10, 12)),
    Visit("29274-8", "david", "Mesures de signes vitaux ({month} {year})", ("Tension 12/7, pouls 68.",)),
)
FANNY = (
    Visit("68817-6", "claire", "Bilan de santé de l'enfant {year}", ("Croissance harmonieuse.",)),
    Visit("11488-4", "claire", "Consultation pédiatrique ({month} {year})", ("Rhinopharyngite, traitement simple.",)),
)
MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def _working_day(rng: random.Random, year: int, months: tuple[int, int]) -> date:
    month = rng.randint(*months)
    day = date(year, month, rng.randint(1, 28))
    return day + timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)  # a Monday, not a weekend


def add_history(profile: Profile, visits: tuple[Visit, ...], cast: Personas, *, since: int | None = None) -> int:
    """The ``visits`` of each past year (from ``since`` on, e.g. a child's birth year); returns how many."""
    this_year = timezone.localdate().year
    added = 0
    for year in range(this_year - YEARS, this_year):
        if since is not None and year < since:
            continue
        rng = random.Random(f"{profile.nir}-{year}")  # noqa: S311  demo dates, not a secret
        for visit in visits:
            day = _working_day(rng, year, visit.months)
            fields = {"year": year, "month": MONTHS[day.month - 1], "n": rng.randint(1, 9)}
            title = visit.title.format(**fields)
            lines = [line.format(**fields) for line in visit.lines]
            author = getattr(cast, visit.author)
            added += deposit_report(profile, author, visit.type_code, title, lines, care_date=day)
    return added


HISTORIES = (("alice", ALICE), ("etienne", ETIENNE), ("bernard", BERNARD), ("gerard", GERARD), ("fanny", FANNY))


def build_history(cast: Personas) -> int:
    """Every patient's past years (see the module docstring); returns the number of documents added."""
    added = 0
    for name, visits in HISTORIES:
        profile = getattr(cast, name)
        added += add_history(profile, visits, cast, since=profile.birth_date.year)
    return added
