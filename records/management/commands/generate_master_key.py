"""Print a new master key value for CARNET_MASTER_KEY (rule D)."""

import secrets

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from records.crypto import KEY_BYTES, MasterKeyError, format_master_key


class Command(BaseCommand):
    help = (
        "Print a new random master key as 'id:base64key'. To rotate, put it FIRST in CARNET_MASTER_KEY, keep "
        "the old keys after it, restart every process, then run rotate_master_key."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", dest="key_id", help="key id (default: k<YYYYMMDD>), [A-Za-z0-9_-]{1,32}")

    def handle(self, *args, key_id=None, **options):
        key_id = key_id or f"k{timezone.now():%Y%m%d}"
        try:
            value = format_master_key(key_id, secrets.token_bytes(KEY_BYTES))
        except MasterKeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(value)
