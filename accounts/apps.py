from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Sign-in and second factors for every door: patients, practitioners, staff and API clients."""

    name = "accounts"
    verbose_name = _("Connexion")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
