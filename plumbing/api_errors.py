"""What every REST endpoint shares: the error shape, pagination and the never-cached mixin.

Errors: always ``{"error": {"code": "<stable code>", "message": "<translated sentence>"}}``, plus ``fields``
(field name -> list of messages) for an invalid request body or query. Codes are part of the interface: clients
branch on them, never on the message. A refused action (``ValidationError`` from an action or the document
store) keeps the action's own code (``profile_not_activated``, ``file_type``…) and answers 400, or 409 for the
state conflicts listed in ``CONFLICT_CODES``.
"""

from collections.abc import Callable
from typing import Any, cast

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, QuerySet, Window
from django.http import Http404, JsonResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, pagination, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

CONFLICT_CODES = {
    "profile_not_activated",
    "illegal_state",
    "profile_not_open",
    "treating_doctor",
    "practitioner_blocked",
    "not_own_document",
    "not_author",
}

# DRF's default codes renamed where ours read better; an exception raised with its own code keeps it.'s default codes renamed where ours read better; an exception raised with its own code keeps it.
_RENAMED = {"permission_denied": "forbidden", "authentication_failed": "invalid_token"}

NOT_FOUND_MESSAGE = _("Ressource introuvable.")


def error_body(code: str, message, **extra) -> dict:
    return {"error": {"code": code, "message": str(message), **extra}}


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for value in detail.values():
            return _first_message(value)
        return ""
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    return str(detail)


def _fields(detail) -> dict:
    if isinstance(detail, dict):
        return {
            key: [str(item) for item in (value if isinstance(value, list) else [value])]
            for key, value in detail.items()
        }
    return {"non_field_errors": [str(item) for item in (detail if isinstance(detail, list) else [detail])]}


def exception_handler(exc, context):
    """DRF's ``EXCEPTION_HANDLER``: every error in the stable shape."""
    headers = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(NOT_FOUND_MESSAGE)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        set_rollback()
        code = getattr(exc, "code", None) or "invalid"
        status_code = status.HTTP_409_CONFLICT if code in CONFLICT_CODES else status.HTTP_400_BAD_REQUEST
        return Response(error_body(code, " ".join(exc.messages)), status=status_code)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 (logged), never details to the client
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(wait))
    if isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid", _("La requête est invalide."), fields=_fields(exc.detail))
    else:
        # A str detail is an ErrorDetail carrying the exception's code.
        code = cast(str, exc.get_codes()) if isinstance(exc.detail, str) else exc.default_code
        body = error_body(_RENAMED.get(code, code), _first_message(exc.detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


@csrf_exempt  # an unknown path is a 404 for every method, not a CSRF failure
def not_found(request, *args, **kwargs):
    """Unknown paths under /api/: the same JSON shape as every other error."""
    return JsonResponse(error_body("not_found", NOT_FOUND_MESSAGE), status=404)


class Pagination(pagination.PageNumberPagination):
    """``?page=`` and ``?page_size=`` (at most 100); the body carries ``count``, ``next``, ``previous``."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_rows(
        self,
        rows: QuerySet[Any] | Callable[[], QuerySet[Any]],
        request,
        view=None,
        *,
        counted: Callable[[int, int], list[Any]] | None = None,
    ) -> list[Any] | None:
        """``paginate_queryset`` for a ``values()`` queryset, reading the page and the total in one query.

        The same pages, bodies and errors as ``paginate_queryset``; one round trip less (``CountedRows``).
        ``counted(start, stop)``: that query's rows, each with its ``carnet_total``, from elsewhere (SQL compiled
        once, ``plumbing.sql.CompiledRows``); ``rows`` itself (or the function building it, called only then) then
        only serves ``page=last`` and pages past the end.
        """
        size = self.get_page_size(request)
        number = request.query_params.get(self.page_query_param) or "1"
        bounds = None
        if size and number.isascii() and number.isdigit() and int(number) >= 1:
            bounds = ((int(number) - 1) * size, int(number) * size)
        return self.paginate_queryset(CountedRows(rows, bounds, counted), request, view)  # type: ignore[arg-type]  # what Paginator reads of a queryset


TOTAL = "carnet_total"


class CountedRows:
    """A ``values()`` queryset as Django's ``Paginator`` sees it, its total read with the page it will ask for.

    The paginator asks for ``count()`` and then for the page's slice. ``count()`` reads the expected slice
    (``bounds``, from the request) with ``COUNT(*) OVER ()`` on every row and keeps the rows; the slice then
    comes from them. Only when that slice is empty past the first page (a page out of range: the paginator
    answers 404) or the bounds are unknown (``page=last``) does the total take a query of its own.
    """

    def __init__(
        self,
        rows: QuerySet[Any] | Callable[[], QuerySet[Any]],
        bounds: tuple[int, int] | None,
        counted: Callable[[int, int], list[Any]] | None = None,
    ):
        self._rows = rows
        self.bounds = bounds
        self.counted = counted
        self.fetched: list[Any] | None = None
        self.total: int | None = None

    @property
    def rows(self) -> QuerySet[Any]:
        if not isinstance(self._rows, QuerySet):
            self._rows = self._rows()
        return self._rows

    def count(self) -> int:
        if self.total is None:
            if self.bounds is not None:
                start, stop = self.bounds
                if self.counted is not None:
                    fetched = self.counted(start, stop)
                else:
                    fetched = list(self.rows.annotate(**{TOTAL: Window(Count("*"))})[start:stop])
                if fetched or start == 0:
                    self.total = fetched[0].pop(TOTAL) if fetched else 0
                    for row in fetched[1:]:
                        del row[TOTAL]
                    self.fetched = fetched
            if self.total is None:
                self.total = self.rows.count()
        return self.total

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, page: slice) -> list[Any]:
        if self.fetched is not None and self.bounds is not None:
            start, stop = self.bounds
            if page.start == start and page.stop is not None and start + len(self.fetched) <= page.stop <= stop:
                return self.fetched
        return list(self.rows[page])


class NeverCached:
    """Mixin for API views: no response of the API may be kept by a cache (patient data)."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]  # mixed into APIView subclasses
        add_never_cache_headers(response)
        return response
