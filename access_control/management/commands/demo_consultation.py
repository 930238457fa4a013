"""Development aid: a practitioner consults a record through the one door, as the portal would.

`python manage.py demo_consultation` makes Dr David Lambert consult Alice's record (an e-mail notice lands in
var/mail/ once the worker has run) and Bernard's (a letter joins today's print batch). Any practitioner and
patient can be named; the consultation goes through access_control.api like any other, so it is traced (T1) and
notified (N1).
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser

from access_control import api
from practitioners.models import Practitioner
from records.models import Profile

DEFAULT_RPPS = "10002000221"  # Dr David Lambert in the demo cast


class Command(BaseCommand):
    help = "Consult patients' records as a practitioner (demo data), producing the trail entry and the notice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rpps", default=DEFAULT_RPPS, help="the consulting practitioner's RPPS")
        parser.add_argument("--nir", action="append", help="a patient's NIR (repeatable); default: Alice and Bernard")
        parser.add_argument("--birth-date", action="append", type=date.fromisoformat, help="YYYY-MM-DD, per --nir")

    def handle(
        self, *args: str, rpps: str, nir: list[str] | None, birth_date: list[date] | None, **options: object
    ) -> None:
        practitioner = Practitioner.objects.select_related("profession").filter(rpps=rpps).first()
        if practitioner is None:
            raise CommandError(f"No practitioner with RPPS {rpps}: run `python manage.py seed_demo` first.")
        if nir:
            if not birth_date or len(birth_date) != len(nir):
                raise CommandError("Give one --birth-date per --nir.")
            identities = list(zip(nir, birth_date, strict=True))
        else:
            demo = Profile.objects.filter(birth_name__in=["MARTIN", "PETIT"], legal_representative__isnull=True)
            identities = [(profile.nir, profile.birth_date) for profile in demo.order_by("birth_name")]
            if not identities:
                raise CommandError("No demo patients: run `python manage.py seed_demo` first.")
        for patient_nir, patient_birth_date in identities:
            profile = api.find_profile(practitioner, nir=patient_nir, birth_date=patient_birth_date)
            if profile is None:
                self.stdout.write(f"{practitioner.display_name}: no record to open for this identity.")
                continue
            decision = api.open_record(practitioner, profile, attests_care_team=True)
            if not decision.allowed:
                self.stdout.write(f"{practitioner.display_name}: refused ({decision.message}).")
                continue
            count = len(api.visible_documents(practitioner, profile))
            notice = profile.notices.order_by("-pk").first()
            assert notice is not None  # an allowed opening queues a notice (N5)
            self.stdout.write(
                f"{practitioner.display_name} consulted record #{profile.pk}: {count} visible documents; "
                f"notice #{notice.pk} by {notice.get_channel_display()} ({notice.get_status_display()})."
            )
