"""System checks of the national providers' configuration (Pro Santé Connect, FranceConnect; docs/sign-in.md).

carnet.E041  an issuer without a client id, or a client id without an issuer
carnet.E042  a provider with neither a client secret nor a private key, or with both
carnet.E043  an issuer that is not https while DEBUG is off
carnet.E044  a private key that is not a PEM private key
carnet.E045  an API audience for Pro Santé Connect tokens while PSC itself is not configured

None configured is fine: the buttons are hidden and the API takes Carnet's own tokens only (``make run``).
"""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

PROVIDERS = {"CARNET_PSC": "Pro Santé Connect", "CARNET_FRANCECONNECT": "FranceConnect"}


def _provider_errors(prefix: str, name: str, config: dict[str, Any]) -> list[CheckMessage]:
    issuer, client_id = config["issuer"], config["client_id"]
    if not issuer and not client_id:
        return []
    if not issuer or not client_id:
        return [
            Error(
                f"{name} is half configured: set both {prefix}_ISSUER and {prefix}_CLIENT_ID, or neither.",
                id="carnet.E041",
            )
        ]
    errors: list[CheckMessage] = []
    if bool(config["client_secret"]) == bool(config["private_key"]):
        errors.append(
            Error(
                f"{name} needs exactly one client credential: {prefix}_CLIENT_SECRET or {prefix}_PRIVATE_KEY.",
                hint="Both can be read from files (*_FILE).",
                id="carnet.E042",
            )
        )
    if not settings.DEBUG and not issuer.startswith("https://"):
        errors.append(Error(f"{prefix}_ISSUER must be an https URL in production.", id="carnet.E043"))
    if config["private_key"]:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            load_pem_private_key(config["private_key"].encode(), password=None)
        except (ValueError, TypeError):
            errors.append(Error(f"{prefix}_PRIVATE_KEY is not an unencrypted PEM private key.", id="carnet.E044"))
    return errors


@register(Tags.security)
def check_national_providers(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """The providers' settings are complete and safe (see the module docstring)."""
    errors: list[CheckMessage] = []
    for prefix, name in PROVIDERS.items():
        errors += _provider_errors(prefix, name, getattr(settings, prefix))
    psc = settings.CARNET_PSC
    if psc["api_audience"] and not (psc["issuer"] and psc["client_id"]):
        errors.append(
            Error(
                "CARNET_PSC_API_AUDIENCE is set but Pro Santé Connect is not configured.",
                hint="Set CARNET_PSC_ISSUER and CARNET_PSC_CLIENT_ID, or unset the audience.",
                id="carnet.E045",
            )
        )
    return errors
