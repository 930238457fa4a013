"""Request-scoped sign-in context for the kernel."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from access_control.trail import assurance


class AssuranceMiddleware:
    """Each request in its own level-of-assurance block (``access_control.trail.assurance``).

    The practitioner door (session) and the API's Pro Santé Connect tokens set the level for their request;
    the block ends with the request, so the next request served by the same thread starts without one.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with assurance():
            return self.get_response(request)
