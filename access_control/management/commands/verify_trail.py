"""Verify every hash chain of the trail (T2) and report the first broken link of each broken chain.

Streams the table in one ordered pass, so it runs on millions of entries in flat memory. Prints profile ids
and positions only (no patient data). Exits 1 when any chain is broken, 0 otherwise.
"""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from access_control.trail import VerifyReport, iter_problems, verify_chain


class Command(BaseCommand):
    help = "Recompute the trail's hash chains (rule T2) and report the first broken link of each chain."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--profile",
            type=int,
            action="append",
            dest="profiles",
            help="Verify only this profile's chain (repeatable). Default: every chain.",
        )
        parser.add_argument("--chunk-size", type=int, default=5000, help="Rows fetched per round trip.")

    def handle(self, *args: str, profiles: list[int] | None = None, chunk_size: int = 5000, **options: object) -> None:
        report = VerifyReport()
        if profiles:
            for profile_id in profiles:
                problems = verify_chain(profile_id)
                report.chains += 1
                if problems:
                    report.broken_chains += 1
                    self.stdout.write(f"BROKEN {problems[0]}")
        else:
            with transaction.atomic():  # one snapshot, and a streaming (not WITH HOLD) cursor
                for problem in iter_problems(report, chunk_size=chunk_size):
                    self.stdout.write(f"BROKEN {problem}")
        summary = f"{report.chains} chain(s), {report.broken_chains} broken"
        if not profiles:
            summary = f"{report.entries} entries, {summary}"
        if report.broken_chains:
            raise CommandError(f"Trail verification failed: {summary}.", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"Trail intact: {summary}."))
