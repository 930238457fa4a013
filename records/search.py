"""Free-text search in a record: title, type, author and care date (issue 18, item 1).

``matching(documents, text)`` narrows a queryset that a door already built (``access_control.api``): it never
widens it, so every access rule still holds on the results. It runs no query by itself.

The text is split into date words and other words. Date words (``2023``, ``03/2023``, ``12/03/2023``,
``2023-03-12``, a month name in French or English) narrow on the care date. The other words must all appear,
as word prefixes, in the title, the type's labels, or the author's name and profession:

- on PostgreSQL through full-text search with the French configuration, accents folded on both sides by the
  ``unaccent`` extension (migration ``records.0007``), so "echo" finds "Échographie";
- elsewhere (SQLite, for development) through case-insensitive containment, accents as typed.
"""

import datetime
import re
import unicodedata

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connections
from django.db.models import F, Func, Q, QuerySet, Value

MAX_QUERY_LENGTH = 200
MAX_WORDS = 8
FIELDS = (
    "title",
    "document_type__label_fr",
    "document_type__label_en",
    "author_practitioner__first_name",
    "author_practitioner__last_name",
    "author_practitioner__profession__label_fr",
)
MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("janvier", "janv", "january", "jan"),
            ("fevrier", "fevr", "february", "feb"),
            ("mars", "march", "mar"),
            ("avril", "avr", "april", "apr"),
            ("mai", "may"),
            ("juin", "june", "jun"),
            ("juillet", "juil", "july", "jul"),
            ("aout", "august", "aug"),
            ("septembre", "sept", "september", "sep"),
            ("octobre", "oct", "october"),
            ("novembre", "nov", "november"),
            ("decembre", "dec", "december"),
        ),
        start=1,
    )
    for name in names
}
FULL_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
MONTH_YEAR = re.compile(r"^(\d{1,2})[/.-](\d{4})$")
YEAR = re.compile(r"^(19|20)\d{2}$")
# A word of the text query: letters and digits only, so that nothing the user types reaches tsquery syntax.
WORD = re.compile(r"[^\W_]+")


class Unaccent(Func):
    """PostgreSQL's ``unaccent()`` (the extension's default dictionary)."""

    function = "unaccent"


def fold(text: str) -> str:
    """Lower case without accents, for the date words and month names (not for the database side)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def parse(text: str) -> tuple[Q, list[str]]:
    """The care-date condition and the remaining words of a search text."""
    dates = Q()
    words: list[str] = []
    for token in (text or "")[:MAX_QUERY_LENGTH].split():
        folded = fold(token).strip(",;")
        condition = _date_condition(folded)
        if condition is not None:
            dates &= condition
        else:
            words += WORD.findall(token)
    return dates, words[:MAX_WORDS]


def _date_condition(token: str) -> Q | None:
    try:
        if match := FULL_DATE.match(token):
            day, month, year = (int(part) for part in match.groups())
            return Q(care_date=datetime.date(year, month, day))
        if match := ISO_DATE.match(token):
            year, month, day = (int(part) for part in match.groups())
            return Q(care_date=datetime.date(year, month, day))
    except ValueError:
        return Q(pk__in=[])  # 31/02/2024 is a date-shaped word that no document has
    if match := MONTH_YEAR.match(token):
        month, year = (int(part) for part in match.groups())
        if not 1 <= month <= 12:
            return Q(pk__in=[])
        return Q(care_date__year=year, care_date__month=month)
    if YEAR.match(token):
        return Q(care_date__year=int(token))
    if token.rstrip(".") in MONTHS:
        return Q(care_date__month=MONTHS[token.rstrip(".")])
    return None


def matching(documents: QuerySet, text: str) -> QuerySet:
    """The documents of ``documents`` that match the search text (all of them when it is blank)."""
    dates, words = parse(text)
    if dates:
        documents = documents.filter(dates)
    if not words:
        return documents
    if connections[documents.db].vendor == "postgresql":
        vector = SearchVector(*(Unaccent(F(field)) for field in FIELDS), config="french")
        # Each word as a prefix (typing "radio" finds "radiographie"); the words are letters and digits only.
        raw = " & ".join(f"{word}:*" for word in words)
        query = SearchQuery(Unaccent(Value(raw)), config="french", search_type="raw")
        return documents.annotate(search_vector=vector).filter(search_vector=query)
    for word in words:
        documents = documents.filter(Q.create([(f"{field}__icontains", word) for field in FIELDS], connector=Q.OR))
    return documents
