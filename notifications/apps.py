from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self) -> None:
        from records.crypto import register_wrapped_keys

        from . import checks  # noqa: F401  (registers carnet.W010)

        # Letters and print-batch files are encrypted like documents: key rotation re-wraps their data keys.
        register_wrapped_keys("notifications.Letter")
        register_wrapped_keys("notifications.BatchFile")
