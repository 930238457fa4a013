from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordsConfig(AppConfig):
    name = "records"
    verbose_name = _("Profils et documents")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
