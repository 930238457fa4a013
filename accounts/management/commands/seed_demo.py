"""Create the demo cast of docs/personas.md through the project's actions, and print the logins.

Idempotent: a second run finds the same people and documents. Each run restores the demo second factors (a few
fixed single-use backup codes per account) and re-issues Bernard's provisional code while his profile is not
activated, so the printed logins always work.
"""

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.second_factors import BACKUP_DEVICE_NAME
from records import actions
from records.demo_history import build_history
from records.models import Profile, User
from records.personas import DEMO_PASSWORD, build_personas

DEMO_BACKUP_CODES = ["demo-0001", "demo-0002", "demo-0003", "demo-0004", "demo-0005"]


def restore_demo_second_factor(user: User) -> None:
    """A confirmed TOTP device (so sign-in does not ask for enrolment) and fixed single-use backup codes."""
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        TOTPDevice.objects.create(user=user, name="Démo", confirmed=True)
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    StaticToken.objects.bulk_create(
        StaticToken(device=device, token=code.replace("-", "")) for code in DEMO_BACKUP_CODES
    )


class Command(BaseCommand):
    help = "Create the demo personas (idempotent) and print their logins."

    def handle(self, *args: str, **options: object) -> None:
        # One transaction for the cast and the logins printed below; the actions join it (durable=False).
        with transaction.atomic(durable=True):
            cast = build_personas()
            history = build_history(cast)  # years of past care, so that the demo records look real
            practitioners = [
                cast.claire, cast.david, cast.emma, cast.francois, cast.hugo, cast.ines, cast.gilles, cast.julien,
            ]  # fmt: skip
            # Karim works the lifecycle desk, letters and reviews: the supervisors' rights (records migration 0003).
            cast.karim.groups.add(*Group.objects.filter(name__in=["Agents", "Superviseurs"]))
            for account in [cast.karim, cast.alice.user, cast.etienne.user, *(p.user for p in practitioners)]:
                assert account is not None  # every persona here has an account
                restore_demo_second_factor(account)
            bernard = Profile.objects.get(pk=cast.bernard.pk)
            bernard_code = None
            if bernard.user_id is None:
                _profile, bernard_code = actions.do_reissue_provisional_code(bernard, actor=cast.karim, durable=False)

        codes = ", ".join(DEMO_BACKUP_CODES)
        write = self.stdout.write
        write(self.style.SUCCESS("Demo cast ready (docs/personas.md)."))
        write(f"Past years of care added to the records: {history} documents.")
        write(f"Password of every demo account: {DEMO_PASSWORD}")
        write(f"Second factor: a backup code, each usable once per account: {codes}.")
        write(
            "  All used? `make run` or `CARNET_DEBUG=1 .venv/bin/python manage.py seed_demo` restores the five "
            "(nothing else changes)."
        )
        write("")
        write("Patients — /connexion/ (e-mail + password; a code by e-mail lands in var/mail/, or a backup code)")
        for profile in (cast.alice, cast.etienne):
            assert profile.user is not None  # active patients
            write(f"  {profile.display_name:<28} {profile.user.email}")
        write("Patient to activate — /activer/ (NIR + provisional code + birth date)")
        if bernard_code:
            write(f"  {bernard.display_name:<28} code {bernard_code}  (NIR and birth date below)")
        else:
            write(f"  {bernard.display_name:<28} already activated")
        write("Patients' identities — what a practitioner types in /pro/ to find a record (NIR + birth date)")
        for profile in (cast.alice, bernard, cast.camille, cast.denise, cast.etienne, cast.fanny, cast.gerard):
            write(
                f"  {profile.display_name:<28} NIR {profile.nir}  born {profile.birth_date:%d/%m/%Y}  ({profile.state})"
            )
        write("Practitioners — /pro/connexion/ (RPPS + password, then a backup code)")
        for practitioner in practitioners:
            write(f"  {practitioner.display_name:<28} RPPS {practitioner.rpps}  {practitioner.profession.label_fr}")
        write("Staff — /admin/ (username + password, then a backup code)")
        write(f"  {cast.karim.get_full_name():<28} {cast.karim.username}")
