from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecordsConfig(AppConfig):
    name = "records"
    verbose_name = _("Profils et documents")

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .health import register_readiness_check
        from .heartbeat import check_worker
        from .nir_index import connect

        connect()  # learns, per connection, whether the database runs Citus (find-by-NIR, records.nir_index)

        # After the built-in checks of records.health: /readyz also says whether a worker answered recently.
        register_readiness_check("worker", check_worker)
