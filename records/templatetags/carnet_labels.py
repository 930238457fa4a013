"""``{% load carnet_labels %}`` then ``{{ document.document_type|localized }}``: a reference row's label in the
current language (records.labels)."""

from django import template

from records.labels import localized_label

register = template.Library()


@register.filter
def localized(row) -> str:
    if row is None:
        return ""
    return localized_label(row)
