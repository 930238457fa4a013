"""Re-wrap every data key (and re-seal every sealed value) with the current master key (rule D).

Procedure: generate a key (``generate_master_key``), put it FIRST in CARNET_MASTER_KEY with the old keys after
it, restart every process, run this command; when it reports nothing left on the old keys, remove them.

Only the small wrapped keys change, in batches, each batch in its own transaction with its rows locked;
document bodies are not read or rewritten. Rows already on the current key are skipped, so the command is
idempotent and can be resumed after an interruption. What it rotates is the registry of ``records.crypto``
(``register_wrapped_keys`` / ``register_sealed_field``). No trail entry (T1): no profile's data or access
changes, only key material; the command's own output is the operator's record. Output carries counts only.
"""

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from records.crypto import (
    CorruptedBody,
    MasterKeyError,
    SealedField,
    WrappedKeyField,
    current_master_key,
    reseal,
    rewrap_data_key,
    rotation_registry,
    sealed_key_id,
)


class Command(BaseCommand):
    help = "Re-wrap every document data key (and sealed value) with the current (first) master key."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")

    def handle(self, *args, batch_size, dry_run, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            current_id, _ = current_master_key()
        except MasterKeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Current master key: {current_id}")
        failures = 0
        for entry in rotation_registry():
            model = apps.get_model(entry.model)
            if isinstance(entry, WrappedKeyField):
                changed, current, failed = self._rotate_wrapped(model, entry, current_id, batch_size, dry_run)
                what = "data keys re-wrapped"
            else:
                changed, current, failed = self._rotate_sealed(model, entry, current_id, batch_size, dry_run)
                what = "sealed values re-sealed"
            verb = "would be " if dry_run else ""
            self.stdout.write(
                f"{entry.model}: {changed} {verb}{what}, {current} already on {current_id}, {failed} failed"
            )
            failures += failed
        if failures:
            raise CommandError(
                f"{failures} row(s) could not be rotated (their master key is missing or wrong, ids above): "
                "keep every old key configured and fix these rows before removing any key."
            )

    def _batches(self, queryset, batch_size):
        last_pk = 0
        while True:
            pks = list(queryset.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                return
            last_pk = pks[-1]
            yield pks

    def _rotate_wrapped(self, model, entry: WrappedKeyField, current_id, batch_size, dry_run):
        stale = model._base_manager.exclude(**{entry.id_field: current_id})
        already = model._base_manager.filter(**{entry.id_field: current_id}).count()
        changed = failed = 0
        for pks in self._batches(stale, batch_size):
            with transaction.atomic():
                rows = list(
                    stale.select_for_update()
                    .filter(pk__in=pks)
                    .order_by("pk")
                    .only("pk", entry.key_field, entry.id_field)
                )
                updated = []
                for row in rows:
                    try:
                        new_id, new_key = rewrap_data_key(getattr(row, entry.key_field), getattr(row, entry.id_field))
                    except (MasterKeyError, CorruptedBody):
                        failed += 1
                        self.stderr.write(
                            f"{entry.model} #{row.pk}: cannot unwrap with master key {getattr(row, entry.id_field)!r}"
                        )
                        continue
                    setattr(row, entry.key_field, new_key)
                    setattr(row, entry.id_field, new_id)
                    updated.append(row)
                if not dry_run and updated:
                    model._base_manager.bulk_update(updated, [entry.key_field, entry.id_field])
                changed += len(updated)
        return changed, already, failed

    def _rotate_sealed(self, model, entry: SealedField, current_id, batch_size, dry_run):
        sealed = model._base_manager.filter(**{f"{entry.field}__isnull": False})
        changed = already = failed = 0
        for pks in self._batches(sealed, batch_size):
            with transaction.atomic():
                rows = list(sealed.select_for_update().filter(pk__in=pks).order_by("pk").only("pk", entry.field))
                updated = []
                for row in rows:
                    blob = getattr(row, entry.field)
                    try:
                        if sealed_key_id(blob) == current_id:
                            already += 1
                            continue
                        setattr(row, entry.field, reseal(blob))
                    except (MasterKeyError, CorruptedBody):
                        failed += 1
                        self.stderr.write(f"{entry.model} #{row.pk}: cannot open the sealed value")
                        continue
                    updated.append(row)
                if not dry_run and updated:
                    model._base_manager.bulk_update(updated, [entry.field])
                changed += len(updated)
        return changed, already, failed
