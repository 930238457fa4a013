"""Import the national practitioner extract: ``manage.py import_practitioners FILE --actor USERNAME``.

Format in ``practitioners.directory`` and ``docs/admin.md``. Known practitioners are updated in place (a
second import of the same file changes nothing); RPPS numbers failing the Luhn check are imported and listed
as warnings (I2); refused lines are listed with their reason. The import is traced in the name of ``--actor``,
a staff account (T1).
"""

import os

from django.core.management.base import BaseCommand, CommandError

from plumbing.progress import ProgressBar
from practitioners.directory import DirectoryFormatError, import_directory
from records.models import User


class Command(BaseCommand):
    help = "Import or update the practitioner directory from the national extract (RPPS;title;last_name;…)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="semicolon-separated UTF-8 extract (see docs/admin.md)")
        parser.add_argument("--actor", required=True, help="username of the staff member running the import")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        actor = User.objects.filter(username=options["actor"], kind=User.Kind.STAFF, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active staff account named {options['actor']!r}.")
        path = options["file"]

        def on_message(kind, message):
            self.stderr.write(f"{'warning' if kind == 'warning' else 'error'}: {message}")

        with open(path, "rb") as fileobj:
            bar = None if options["no_progress"] else ProgressBar(self.stderr, fileobj, os.path.getsize(path))
            try:
                report = import_directory(
                    fileobj,
                    actor=actor,
                    on_message=on_message,
                    on_progress=(lambda r: bar.update(r.rows)) if bar else None,
                )
            except DirectoryFormatError as exc:
                raise CommandError(str(exc)) from exc
            if bar:
                bar.update(report.rows, final=True)
        new = f", new professions: {', '.join(report.new_professions)}" if report.new_professions else ""
        self.stdout.write(
            f"{report.rows} rows: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.rejected} rejected, {report.warned} with warnings{new}."
        )
