"""Finding a profile by its NIR (I1), one shard on Citus: ``profiles_with_nir``, and the index row ``index_nir``.

The national uniqueness of the NIR and the look-up by NIR live in ``records.models.NirIndex`` on Citus, whose
profiles are sharded by id (docs/scaling.md); elsewhere ``Profile.nir`` is unique and indexed by itself, and is
read directly (one statement, as before). Every action that creates a profile writes its index row in the same
transaction, on every database, so the index is complete wherever it is read.
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.db.models import QuerySet

from .citus import is_citus
from .models import NirIndex, Profile

_citus_connections: "set[int]" = set()


def note_citus(sender: object, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
    """``connection_created``: remember whether the new connection's database runs Citus (one query per connection)."""
    _citus_connections.discard(id(connection))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if is_citus(cursor):
                _citus_connections.add(id(connection))


def on_citus(using: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the alias's database is a Citus coordinator (learnt when its connection opened)."""
    connection = connections[using]
    connection.ensure_connection()
    return id(connection) in _citus_connections


def profiles_with_nir(nir: str) -> QuerySet[Profile]:
    """The profile holding this (normalised) NIR, as a queryset (empty when none): routed to one shard on Citus."""
    if not on_citus(Profile.objects.db):
        return Profile.objects.filter(nir=nir)
    profile_id = profile_id_with_nir(nir)
    return Profile.objects.filter(pk=profile_id, nir=nir) if profile_id is not None else Profile.objects.none()


def profile_id_with_nir(nir: str) -> int | None:
    """Citus: the id the index gives this (normalised) NIR, or ``None``: one statement, routed by the NIR.

    For a caller that then reads the profile itself by ``WHERE id = <this id>``, routed to the profile's shard
    (``access_control.api.find_profile``, with the facts of the decision), and checks its NIR.
    """
    return NirIndex.objects.filter(nir=nir).values_list("profile_id", flat=True).first()


def index_nir(profile: Profile) -> NirIndex:
    """Write the profile's index row, in the transaction that creates the profile (a NIR already held fails)."""
    return NirIndex.objects.create(nir=profile.nir, profile=profile)


def connect() -> None:
    """Listen for new connections (``records.apps``)."""
    connection_created.connect(note_citus, dispatch_uid="records.nir_index.note_citus")
