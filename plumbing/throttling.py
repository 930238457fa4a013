"""Failure counters in the cache: sign-in throttling shared by the three doors, and the other guessable checks.

A sign-in attempt has two counters: one for the account, one for the client address. The account counter
closes after ``CARNET_LOGIN_ATTEMPTS`` failures inside ``CARNET_LOGIN_WINDOW_SECONDS``; the address counter
only after ``CARNET_LOGIN_ADDRESS_ATTEMPTS`` (much higher), because a hospital behind one NAT, or every client
behind a misconfigured proxy, shares one address: a few typos there must not lock everyone out, while one
address trying thousands of accounts still gets stopped. Once a counter is closed, the door refuses further
attempts without checking the password or the code, and says when to come back (``retry_after``).

A counter starts with its first failure and lapses a window later (its deadline is kept next to it, for
``Retry-After``). Keys are HMACs of the account and the address, so neither e-mail addresses nor IP addresses
sit in the cache. A successful sign-in clears the account counter, never the address counter (an attacker
holding one valid account must not be able to reset the counter of the address they guess from); staff can
clear an account's counter by hand (``clear_account``).
"""

import time

from django.conf import settings
from django.core.cache import cache
from django.utils.crypto import salted_hmac

_SALT = "carnet.records.throttling"
_UNTIL = ":until"


def hashed_key(prefix: str, kind: str, value: str) -> str:
    """A cache key for ``value`` that does not contain it (an HMAC under the secret key)."""
    digest = salted_hmac(_SALT, f"{kind}:{value}", algorithm="sha256").hexdigest()[:40]
    return f"{prefix}:{kind}:{digest}"


def _key(kind: str, value: str) -> str:
    return hashed_key("carnet:signin-failures", kind, value)


def account_name(*, user_id: int | None, door: str, identifier: str) -> str:
    """The account a counter belongs to: the user when the identifier names one, else the identifier itself.

    Unknown identifiers get counters too, so an unknown account is throttled exactly like a known one.
    """
    if user_id is not None:
        return f"user:{user_id}"
    return f"{door}:{identifier.strip().lower()}"


def count_failure(key: str, window: int) -> int:
    """One more failure on the cache counter ``key``, which lapses ``window`` seconds after its first failure.

    Returns the new count.
    """
    if cache.add(key, 0, timeout=window):
        cache.set(key + _UNTIL, int(time.time()) + window, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # the counter lapsed between add() and incr()
        cache.set(key, 1, timeout=window)
        cache.set(key + _UNTIL, int(time.time()) + window, timeout=window)
        return 1


def failures(keys: list[str]) -> dict[str, int]:
    """The current count of each key (missing keys: 0)."""
    found = cache.get_many(keys)
    return {key: int(found.get(key) or 0) for key in keys}


def seconds_left(key: str, default: int) -> int:
    """Seconds until ``key``'s counter lapses (at least 1; ``default`` when its deadline is unknown)."""
    until = cache.get(key + _UNTIL)
    if until is None:
        return default
    return max(1, int(until) - int(time.time()))


class FailureGate:
    """Failure counters (``keys``); each closes at ``limit(key)`` failures inside ``window`` seconds."""

    keys: list[str]

    @property
    def window(self) -> int:
        return settings.CARNET_LOGIN_WINDOW_SECONDS

    def limit(self, key: str) -> int:
        return settings.CARNET_LOGIN_ATTEMPTS

    def closed_keys(self) -> list[str]:
        return [key for key, count in failures(self.keys).items() if count >= self.limit(key)]

    def is_closed(self) -> bool:
        return bool(self.closed_keys())

    def retry_after(self) -> int:
        """Seconds until every closed counter has lapsed (0 when the gate is open): the ``Retry-After`` value."""
        return max((seconds_left(key, self.window) for key in self.closed_keys()), default=0)

    def record_failure(self) -> None:
        for key in self.keys:
            count_failure(key, self.window)


class SignInGate(FailureGate):
    """The failure counters of one sign-in attempt (one account, one client address)."""

    def __init__(self, *, account: str, address: str | None):
        self.account_key = _key("account", account)
        self.keys = [self.account_key]
        if address:
            self.keys.append(_key("address", address))

    def limit(self, key: str) -> int:
        if key == self.account_key:
            return settings.CARNET_LOGIN_ATTEMPTS
        return settings.CARNET_LOGIN_ADDRESS_ATTEMPTS

    def record_success(self) -> None:
        clear_account_key(self.account_key)


def clear_account_key(key: str) -> None:
    cache.delete_many([key, key + _UNTIL])


def account_state(account: str) -> tuple[int, int]:
    """An account's failures in the current window and the seconds until its counter lapses (0 if none)."""
    key = _key("account", account)
    count = failures([key])[key]
    return count, (seconds_left(key, settings.CARNET_LOGIN_WINDOW_SECONDS) if count else 0)


def clear_account(account: str) -> None:
    """Lift an account's lock-out (staff desk): its failure counter starts again from zero."""
    clear_account_key(_key("account", account))
