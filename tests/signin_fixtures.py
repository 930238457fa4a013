"""Helpers for tests that need a signed-in patient, practitioner or staff member without the sign-in pages.

``verified_client(client, user)`` logs ``client`` in the way the sign-in views do: an authenticated session,
verified by one of the user's django-otp devices (a backup-code device is created if none is given) and
stamped with the user's session epoch, so ``patient_required``, ``practitioner_required`` and the OTP admin
site all let it through.
"""

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice

from accounts.auth import EPOCH_SESSION_KEY, current_epoch


def verified_client(client, user, device=None):
    if device is None:
        device, _created = StaticDevice.objects.get_or_create(
            user=user, name="Codes de secours", defaults={"confirmed": True}
        )
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[EPOCH_SESSION_KEY] = current_epoch(user.pk)
    session.save()
    return client
