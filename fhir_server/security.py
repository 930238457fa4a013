"""The CapabilityStatement's ``security`` section: how clients authenticate, told truthfully (issue 17).

Two ways in: Carnet's bearer API tokens (practice software and patients' own tools, docs/api.md) and SMART on
FHIR access tokens for connected patient apps, issued by Carnet's OAuth 2 authorisation server; the SMART
extension names its endpoints, as ``.well-known/smart-configuration`` does. Pro Santé Connect access tokens
are named while the API accepts them (``accounts.jwt_tokens.accepts_psc_tokens``).
"""

from django.urls import reverse

from accounts.jwt_tokens import accepts_psc_tokens

PSC_TOKENS = (
    " Practice software may also present a Pro Santé Connect access token (a JWT for Carnet's audience, scope "
    "carnet:read or carnet:write), checked against Pro Santé Connect's keys."
)

SMART_SERVICE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR",
            "display": "SMART-on-FHIR",
        }
    ],
    "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
}
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def endpoints(origin: str) -> dict[str, str]:
    """The authorisation server's endpoints, absolute (``origin``: scheme and host, no trailing slash)."""
    return {
        "authorize": origin + reverse("patients:authorise_app"),
        "token": origin + reverse("oauth-token"),
        "revoke": origin + reverse("oauth-revoke"),
        "manage": origin + reverse("patients:connected_apps"),
    }


def capability_security(base: str) -> dict:
    """The ``rest[0].security`` of the CapabilityStatement for a server whose FHIR base URL is ``base``."""
    origin = base.split("/fhir/", 1)[0].rstrip("/")
    uris = endpoints(origin)
    return {
        "cors": False,
        "service": [SMART_SERVICE],
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [{"url": name, "valueUri": uri} for name, uri in uris.items()],
            }
        ],
        "description": (
            "Two kinds of bearer token (Authorization: Bearer …): Carnet API tokens (carnet_…) for practice software "
            "and patients' own tools, and SMART on FHIR access tokens (carnetapp_…) that connected patient apps get "
            "from Carnet's OAuth 2 server (authorization code with PKCE S256; scopes patient/Patient.rs, "
            "patient/DocumentReference.rs, patient/AuditEvent.rs, launch/patient, offline_access). An app reads only "
            "the profile the patient chose, as the patient sees it."
        )
        + (PSC_TOKENS if accepts_psc_tokens() else ""),
    }
