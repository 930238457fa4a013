"""Preview of a document in the page: its pages drawn as images on the server, whatever the browser's plug-ins.

The doors give a document they let the reader open (``access_control.api``) to ``preview_of`` (how many pages,
or why there is no preview) and ``page_response`` (one page as an image). Rendering happens in a limited child
process (``plumbing.page_render``): page count, pixel, memory and time limits; an encrypted, damaged or
oversized file gets a translated message instead of a preview, never an error page, and the download stays
available. Page images are served ``no-store`` (a shared computer keeps no copy), never sniffed, never framed
and never active.

Tracing (T1) is the doors' business: the page that shows the preview is the consultation of the document and is
traced once; its page images, fetched within that viewing, add nothing.
"""

from dataclasses import dataclass

from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _

from plumbing import page_render

from . import content_types
from .crypto import CorruptedBody
from .storage import read_body

MAX_PAGES = 30  # pages shown in the page; the rest is in the download
LIMITS = page_render.Limits()  # time, memory and pixel limits of one rendering (plumbing.page_render)
MAX_PREVIEW_BYTES = 30 * 1024 * 1024  # a bigger document is only downloaded
PREVIEWABLE = frozenset({content_types.PDF, content_types.JPEG, content_types.PNG, content_types.TIFF})

_MESSAGES = {
    page_render.ENCRYPTED: _("Ce document est protégé par un mot de passe : il ne peut pas être affiché ici."),
    page_render.UNREADABLE: _("Ce document est illisible ou endommagé : il ne peut pas être affiché ici."),
    page_render.TOO_LARGE: _("Ce document est trop volumineux pour être affiché ici."),
    page_render.TIMEOUT: _("L'affichage de ce document a pris trop de temps."),
    page_render.NO_SUCH_PAGE: _("Cette page n'existe pas."),
}


@dataclass(frozen=True)
class Preview:
    """What the page shows: ``pages`` page images (at most ``MAX_PAGES``), or the ``problem`` that prevents it."""

    pages: int = 0
    total_pages: int = 0
    problem: str = ""

    @property
    def page_numbers(self) -> range:
        return range(1, self.pages + 1)

    @property
    def truncated(self) -> bool:
        return self.total_pages > self.pages


def can_preview(document) -> bool:
    """The format is one drawn as page images (PDF, JPEG, PNG, TIFF)."""
    return document.content_type in PREVIEWABLE


def _body(document) -> bytes:
    if document.size > MAX_PREVIEW_BYTES:
        raise page_render.RenderError(page_render.TOO_LARGE)
    try:
        return b"".join(read_body(document))
    except CorruptedBody:
        raise page_render.RenderError(page_render.UNREADABLE) from None


def problem_message(code: str) -> str:
    return str(_MESSAGES.get(code, _MESSAGES[page_render.UNREADABLE]))


def preview_of(document) -> Preview:
    """How many pages to show, or the reader's explanation of why there is no preview."""
    try:
        total = page_render.page_count(_body(document), document.content_type, LIMITS)
    except page_render.RenderError as exc:
        return Preview(problem=problem_message(exc.code))
    if total < 1:
        return Preview(problem=problem_message(page_render.UNREADABLE))
    return Preview(pages=min(total, MAX_PAGES), total_pages=total)


def page_response(document, number: int) -> HttpResponse:
    """Page ``number`` as an image (``no-store``); a page that cannot be drawn answers 404 with the reason."""
    if not 1 <= number <= MAX_PAGES:
        code = page_render.NO_SUCH_PAGE
    else:
        try:
            image = page_render.render_page(_body(document), document.content_type, number, LIMITS)
        except page_render.RenderError as exc:
            code = exc.code
        else:
            response = HttpResponse(image.content, content_type=image.content_type)
            _harden(response)
            return response
    response = HttpResponse(problem_message(code), content_type="text/plain; charset=utf-8", status=404)
    _harden(response)
    return response


def _harden(response: HttpResponse) -> None:
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Content-Disposition"] = "inline"
