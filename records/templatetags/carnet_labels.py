"""Template filters that label reference rows and trail professions in the current language.

``{% load carnet_labels %}`` then ``{{ document.document_type|localized }}`` (a reference row's label) or
``{{ entry.actor_profession|profession }}`` (a trail entry's profession, ``records.labels``).
"""

from django import template

from records.labels import localized_label, profession_snapshot_label

register = template.Library()


@register.filter
def localized(row) -> str:
    if row is None:
        return ""
    return localized_label(row)


@register.filter
def profession(snapshot: str) -> str:
    return profession_snapshot_label(snapshot or "")
