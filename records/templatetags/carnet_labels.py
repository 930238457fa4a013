"""Template filters that label reference rows and trail professions in the current language.

``{% load carnet_labels %}`` then ``{{ document.document_type|localized }}`` (a reference row's label) or
``{{ entry.actor_profession|profession }}`` (a trail entry's profession, ``records.labels``), and the trail's
codes as staff read them: ``trail_action``, ``trail_detail``, ``trail_reason`` (``access_control.labels``).
"""

from django import template

from access_control.labels import action_label, detail_label, reason_label
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


@register.filter
def trail_action(code: str) -> str:
    return str(action_label(code or ""))


@register.filter
def trail_detail(detail: str) -> str:
    return detail_label(detail or "")


@register.filter
def trail_reason(code: str) -> str:
    return str(reason_label(code or ""))
