"""Lay Carnet's tables out on a Citus cluster: ``manage.py citus_distribute`` after ``manage.py migrate``.

The layout (distributed by patient, reference, coordinator-local) is in ``records.citus``; docs/scaling.md
says why. Idempotent: a table already placed is left as it is. Refuses a database without Citus.
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, models

from records.citus import apply_layout


class Command(BaseCommand):
    help = "Distribute the per-patient tables by profile on a Citus coordinator (docs/scaling.md)."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias (default: default)")
        parser.add_argument("--shard-count", type=int, default=32, help="shards per distributed table (default 32)")

    def handle(self, *args, **options):
        self.verbosity = options["verbosity"]
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("citus_distribute needs a PostgreSQL database with the Citus extension.")
        if connection.in_atomic_block:
            raise CommandError("citus_distribute must run outside a transaction.")
        with connection.cursor() as cursor:
            try:
                apply_layout(cursor, declared_foreign_keys(), shard_count=options["shard_count"], log=self._log)
            except RuntimeError as error:
                raise CommandError(str(error)) from error

    def _log(self, message: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(message)


def declared_foreign_keys() -> dict[str, list[tuple[str, str, str]]]:
    """Each table's foreign keys as the models declare them: (column, referenced table, referenced column)."""
    keys: dict[str, list[tuple[str, str, str]]] = {}
    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.local_fields:
            if isinstance(field, models.ForeignKey) and getattr(field, "db_constraint", True):
                target = field.target_field
                keys.setdefault(model._meta.db_table, []).append(
                    (field.column, target.model._meta.db_table, target.column)
                )
    return keys
