"""Sign-in throttling shared by the three doors (patients, practitioners, staff).

Two cache counters per attempt: one for the account, one for the client address. Once either reaches
``CARNET_LOGIN_ATTEMPTS`` failures inside ``CARNET_LOGIN_WINDOW_SECONDS``, the door refuses further attempts
without checking the password or the code. A counter starts with its first failure and lapses a window later.
Keys are HMACs of the account and the address, so neither e-mail addresses nor IP addresses sit in the cache.
A successful sign-in clears the account counter, never the address counter (an attacker holding one valid
account must not be able to reset the counter of the address they guess from).
"""

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import salted_hmac

_SALT = "carnet.records.throttling"


def _key(kind: str, value: str) -> str:
    digest = salted_hmac(_SALT, f"{kind}:{value}", algorithm="sha256").hexdigest()[:40]
    return f"carnet:signin-failures:{kind}:{digest}"


def account_name(*, user_id: int | None, door: str, identifier: str) -> str:
    """The account a counter belongs to: the user when the identifier names one, else the identifier itself.

    Unknown identifiers get counters too, so an unknown account is throttled exactly like a known one.
    """
    if user_id is not None:
        return f"user:{user_id}"
    return f"{door}:{identifier.strip().lower()}"


def count_failure(key: str, window: int) -> None:
    """One more failure on the cache counter ``key``, which lapses ``window`` seconds after its first failure."""
    cache.add(key, 0, timeout=window)
    try:
        cache.incr(key)
    except ValueError:  # the counter lapsed between add() and incr()
        cache.set(key, 1, timeout=window)


class FailureGate:
    """Failure counters (``keys``) against ``CARNET_LOGIN_ATTEMPTS`` per ``CARNET_LOGIN_WINDOW_SECONDS``."""

    keys: list[str]

    def is_closed(self) -> bool:
        limit = settings.CARNET_LOGIN_ATTEMPTS
        return any(count >= limit for count in cache.get_many(self.keys).values())

    def record_failure(self) -> None:
        for key in self.keys:
            count_failure(key, settings.CARNET_LOGIN_WINDOW_SECONDS)


class SignInGate(FailureGate):
    """The failure counters of one sign-in attempt (one account, one client address)."""

    def __init__(self, *, account: str, address: str | None):
        self.account_key = _key("account", account)
        self.keys = [self.account_key]
        if address:
            self.keys.append(_key("address", address))

    def record_success(self) -> None:
        cache.delete(self.account_key)
