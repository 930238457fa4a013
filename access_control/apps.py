from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccessControlConfig(AppConfig):
    name = "access_control"
    verbose_name = _("Contrôle d'accès et traçabilité")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers carnet.W020)
