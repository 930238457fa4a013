"""The text-size control of every page: three sizes, remembered in a cookie, and no JavaScript needed.

The header's form posts the size here (``set_text_size``); the answer sets the cookie and goes back to the
page. ``text_size`` (a context processor) gives the pages the class their ``<html>`` takes.
"""

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

COOKIE = "carnet_text_size"
SIZES = ("normal", "large", "larger")
MAX_AGE = 365 * 24 * 3600


def current_size(request: HttpRequest) -> str:
    size = request.COOKIES.get(COOKIE, "")
    return size if size in SIZES else "normal"


def text_size(request: HttpRequest) -> dict[str, str]:
    """Context processor: ``text_size``, one of ``SIZES``."""
    return {"text_size": current_size(request)}


@require_POST
def set_text_size(request: HttpRequest) -> HttpResponse:
    """Remember the chosen size for a year and go back to the page (or home, for a foreign ``next``)."""
    target = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        target = "/"
    response = HttpResponseRedirect(target)
    size = request.POST.get("size", "")
    if size in SIZES:
        response.set_cookie(COOKIE, size, max_age=MAX_AGE, samesite="Lax", httponly=True, secure=request.is_secure())
    return response
