"""Connected apps (SMART on FHIR, issue 17): the scopes an app may ask for, and what each one shows.

Carnet is the OAuth 2 authorisation server of the apps a patient connects to their record (django-oauth-toolkit,
configured in ``config.settings``, ``OAUTH2_PROVIDER``). An app asks for some of ``SCOPES``; the patient sees
each one in plain words on the consent page and picks which profile the app gets (their own, or one they speak
for, L10). The app then reads that profile through FHIR with the patient's own door (``fhir_server``'s patient
context): never more than the patient sees (A8, A9).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _
from oauth2_provider.scopes import BaseScopes

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

LAUNCH_PATIENT = "launch/patient"
PATIENT_READ = "patient/Patient.rs"
DOCUMENTS_READ = "patient/DocumentReference.rs"
TRAIL_READ = "patient/AuditEvent.rs"
OFFLINE_ACCESS = "offline_access"

# What the patient reads on the consent page and the connected apps page, scope by scope (in this order).
SCOPES: dict[str, StrOrPromise] = {
    LAUNCH_PATIENT: _(
        "Savoir quel espace santé vous lui ouvrez (le vôtre ou celui d'une personne que vous représentez)."
    ),
    PATIENT_READ: _("L'identité de la personne : nom, prénoms, sexe, date de naissance, numéro de sécurité sociale."),
    DOCUMENTS_READ: _(
        "Les documents du dossier et leur contenu, tels que vous les voyez vous-même dans ce portail "
        "(ni plus, ni moins)."
    ),
    TRAIL_READ: _("L'historique des accès au dossier : qui l'a consulté, quand, et ce qui a été fait."),
    OFFLINE_ACCESS: _("Garder cet accès quand vous n'utilisez pas l'application, jusqu'à ce que vous le retiriez."),
}

# Which FHIR resource type each data scope opens (Binary is a document's content: the documents' scope).
RESOURCE_SCOPES = {
    "Patient": PATIENT_READ,
    "DocumentReference": DOCUMENTS_READ,
    "Binary": DOCUMENTS_READ,
    "AuditEvent": TRAIL_READ,
}

# The SMART capabilities Carnet implements (SMART App Launch 2.x, ``.well-known/smart-configuration``).
CAPABILITIES = [
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "context-standalone-patient",
    "permission-patient",
    "permission-offline",
    "permission-v2",
]


def scope_labels(scope: str) -> list[StrOrPromise]:
    """The plain words of each known scope in a space-separated scope string, in the consent page's order."""
    granted = set(scope.split())
    return [label for name, label in SCOPES.items() if name in granted]


def ordered(scopes: Iterable[str]) -> list[str]:
    """The known scopes among ``scopes``, in ``SCOPES``'s order (unknown ones dropped)."""
    wanted = set(scopes)
    return [name for name in SCOPES if name in wanted]


class SmartScopes(BaseScopes):  # type: ignore[misc]  # django-oauth-toolkit: untyped
    """django-oauth-toolkit's scopes backend: the SMART scopes above, none by default (an app names them)."""

    def get_all_scopes(self) -> dict[str, str]:
        return {name: str(label) for name, label in SCOPES.items()}

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return list(SCOPES)

    def get_default_scopes(self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any) -> list[str]:
        return [LAUNCH_PATIENT]
