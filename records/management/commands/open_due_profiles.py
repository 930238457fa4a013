"""Run the L3 rule now: open every pending profile whose opposition window has passed.

The scheduler (``records.open_due_profiles`` in CELERY_BEAT_SCHEDULE) does this hourly; the command is for
operators who need it at once (after an outage of the scheduler, for instance). It prints a count only.
"""

from django.core.management.base import BaseCommand

from records.lifecycle_jobs import open_due_profiles


class Command(BaseCommand):
    help = "Open every pending profile whose 42-day opposition window has passed (rule L3)."

    def handle(self, *args, **options):
        opened = open_due_profiles()
        self.stdout.write(f"{opened} profile(s) opened.")
