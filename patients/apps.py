from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PatientsConfig(AppConfig):
    """The patient door: the portal's pages and the patient REST API."""

    name = "patients"
    verbose_name = _("Espace patient")
