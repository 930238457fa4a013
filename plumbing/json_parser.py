"""A JSON parser with a nesting limit, for the REST API and FHIR.

``json.loads`` recurses once per level: a body of ten thousand ``[`` raises ``RecursionError``, which DRF's
parser does not catch (a 500). A few hundred levels parse, but then any recursive walk of the data (serializers,
the error handler) may fail the same way. No Carnet request needs more than a handful of levels, so deeper
bodies are refused as a parse error (400) before anything else reads them.

Strings are checked on the same walk: a lone surrogate (``"\\ud800"`` is valid JSON) cannot be encoded in the
UTF-8 answer that echoes it, and a NUL cannot be stored by PostgreSQL; no Carnet field takes either.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers

MAX_DEPTH = 32


def too_deep(data, limit: int = MAX_DEPTH) -> bool:
    """Whether ``data`` (parsed JSON) nests more than ``limit`` levels of lists and objects (iterative walk)."""
    return _first_problem(data, limit) == "depth"


def _unstorable(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return True
    return False


def _first_problem(data, limit: int) -> str | None:
    """``"depth"``, ``"character"`` or None for parsed JSON ``data`` (iterative walk, keys included)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _unstorable(value):
                return "character"
            continue
        if isinstance(value, dict):
            if any(_unstorable(key) for key in value):
                return "character"
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return "depth"
        stack.extend((child, depth + 1) for child in children)
    return None


class DepthLimitedJSONParser(parsers.JSONParser):
    """``JSONParser`` refusing bodies nested deeper than ``MAX_DEPTH`` (400 ``parse_error``, never a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("Le JSON est trop profondément imbriqué.")) from None
        problem = _first_problem(data, MAX_DEPTH)
        if problem == "depth":
            raise exceptions.ParseError(_("Le JSON est trop profondément imbriqué."))
        if problem == "character":
            raise exceptions.ParseError(
                _("Le JSON contient un caractère non autorisé (NUL ou demi-paire UTF-16)."), code="invalid_character"
            )
        return data
