"""Letters as A4 PDFs with WeasyPrint (N4), laid out for a French window envelope.

The stylesheet is parsed once per process (``weasyprint.CSS``) and every letter shares one
``FontConfiguration``: that is what brings a one-page letter from ~54 ms to ~43 ms (perf anchors). The
template uses block and absolute layout only (nested flex makes WeasyPrint's layout time explode). Fast font
subsetting needs Debian's ``libharfbuzz-subset0``; without it WeasyPrint silently falls back to pure Python
(~240 ms a letter) and the system check carnet.W010 warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.template.loader import get_template, render_to_string
from django.utils import translation

if TYPE_CHECKING:  # records and the directory import the notifications at run time
    from .content import Message

LETTER_TEMPLATE = "notifications/letter.html"
LETTER_STYLESHEET = "notifications/letter.css"


@dataclass(frozen=True)
class RenderedLetter:
    pdf: bytes
    page_count: int


@cache
def font_configuration() -> Any:  # weasyprint's FontConfiguration (weasyprint ships no types)
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def stylesheet_path() -> str:
    # The Django backend's Template has an origin; django-stubs' backend-neutral protocol does not declare it.
    name: str = get_template(LETTER_STYLESHEET).origin.name  # type: ignore[attr-defined]
    return name


@cache
def stylesheet() -> Any:  # weasyprint's CSS
    """The letter stylesheet, parsed once per process."""
    from weasyprint import CSS

    return CSS(filename=stylesheet_path(), encoding="utf-8", font_config=font_configuration())


def letter_html(message: Message, address: list[str]) -> str:
    with translation.override(message.language):
        return render_to_string(
            LETTER_TEMPLATE,
            {"message": message, "address": address, "sender": settings.CARNET_SENDER_ADDRESS},
        )


def render_letter(message: Message, address: list[str], *, reuse: bool = True) -> RenderedLetter:
    """Render one letter. ``reuse=False`` parses the stylesheet and builds fonts afresh (the naive baseline)."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    html = HTML(string=letter_html(message, address), base_url=str(settings.BASE_DIR), encoding="utf-8")
    if reuse:
        fonts, css = font_configuration(), stylesheet()
    else:
        fonts = FontConfiguration()
        css = CSS(filename=stylesheet_path(), encoding="utf-8", font_config=fonts)
    document = html.render(stylesheets=[css], font_config=fonts)
    return RenderedLetter(pdf=document.write_pdf(), page_count=len(document.pages))
