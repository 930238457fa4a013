"""A JSON parser with a nesting limit, for the REST API and FHIR.

``json.loads`` recurses once per level: a body of ten thousand ``[`` raises ``RecursionError``, which DRF's
parser does not catch (a 500). A few hundred levels parse, but then any recursive walk of the data (serializers,
the error handler) may fail the same way. No Carnet request needs more than a handful of levels, so deeper
bodies are refused as a parse error (400) before anything else reads them.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers

MAX_DEPTH = 32


def too_deep(data, limit: int = MAX_DEPTH) -> bool:
    """Whether ``data`` (parsed JSON) nests more than ``limit`` levels of lists and objects (iterative walk)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class DepthLimitedJSONParser(parsers.JSONParser):
    """``JSONParser`` refusing bodies nested deeper than ``MAX_DEPTH`` (400 ``parse_error``, never a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("Le JSON est trop profondément imbriqué.")) from None
        if too_deep(data):
            raise exceptions.ParseError(_("Le JSON est trop profondément imbriqué."))
        return data
