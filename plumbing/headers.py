"""Security headers Django has no setting for: ``Permissions-Policy``.

The policy (``CARNET_PERMISSIONS_POLICY``) turns off the powerful browser features Carnet never uses (camera,
microphone, geolocation, payment…), so that no page, document or injected content on Carnet's origin can ask for
them. A response that already carries the header keeps it.
"""

from django.conf import settings

DEFAULT_POLICY = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), midi=(), payment=(), publickey-credentials-get=(), screen-wake-lock=(), usb=(), "
    "xr-spatial-tracking=(), browsing-topics=()"
)


class PermissionsPolicyMiddleware:
    """Adds ``Permissions-Policy`` to every response (pages, API, FHIR, documents)."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = getattr(settings, "CARNET_PERMISSIONS_POLICY", DEFAULT_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        if self.policy and "Permissions-Policy" not in response:
            response["Permissions-Policy"] = self.policy
        return response
