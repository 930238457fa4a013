"""Enrol the people of a roster file (rule L1), in bulk: ``manage.py enroll_patients FILE``.

The file format and what is written are in ``records.enrolment`` and ``docs/admin.md``. Rejected lines are
printed (or written to ``--errors`` as ``line;reason`` CSV); they never stop the good ones, and running the
same file again only adds what was missing. The exit status is 0 even when lines were rejected (read the
summary); 1 when the file is not a roster at all.
"""

import os

from django.core.management.base import BaseCommand, CommandError

from plumbing import csv_safe
from plumbing.progress import ProgressBar
from records.enrolment import CHUNK_ROWS, enrol_roster
from records.models import User
from records.roster import RosterFormatError


class Command(BaseCommand):
    help = "Enrol the people of a roster CSV file: pending profiles and their pre-opening notices (rule L1)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="roster CSV file (UTF-8, header line; see docs/admin.md)")
        parser.add_argument("--actor", help="username of the staff member running the import (default: system)")
        parser.add_argument("--errors", help="write every rejected line to this CSV file (line;reason)")
        parser.add_argument("--chunk-size", type=int, default=CHUNK_ROWS, help="rows per transaction")
        parser.add_argument(
            "--workers",
            type=int,
            default=min(2, os.cpu_count() or 1),
            help="processes loading chunks in parallel (PostgreSQL; default: 2, or 1 on a single core)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        actor = None
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"], kind=User.Kind.STAFF, is_active=True).first()
            if actor is None:
                raise CommandError(f"No active staff account named {options['actor']!r}.")
        path = options["file"]
        errors_file = open(options["errors"], "w", encoding="utf-8", newline="") if options["errors"] else None  # noqa: SIM115
        try:
            writer = csv_safe.writer(errors_file, delimiter=";") if errors_file else None
            if writer:
                writer.writerow(["line", "reason"])

            def on_error(error):
                if writer:
                    writer.writerow([error.line, error.reason])
                else:
                    self.stderr.write(str(error))

            with open(path, "rb") as fileobj:
                bar = None if options["no_progress"] else ProgressBar(self.stderr, fileobj, os.path.getsize(path))
                try:
                    report = enrol_roster(
                        fileobj,
                        actor=actor,
                        chunk_rows=options["chunk_size"],
                        workers=options["workers"],
                        on_error=on_error,
                        on_progress=(lambda r: bar.update(r.rows)) if bar else None,
                    )
                except RosterFormatError as exc:
                    raise CommandError(str(exc)) from exc
                if bar:
                    bar.update(report.rows, final=True)
        finally:
            if errors_file:
                errors_file.close()
        self.stdout.write(
            f"{report.rows} rows: {report.created} enrolled, {report.already_enrolled} already enrolled, "
            f"{report.rejected} rejected; {report.notices} pre-opening notices queued "
            f"({report.undeliverable} without a usable address)."
        )
