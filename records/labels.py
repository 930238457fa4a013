"""The label of a reference row (document type, profession, document category) in the current language.

Reference tables carry both labels (``label_fr``, ``label_en``) as data, not as gettext messages: pages and forms
show ``label_en`` under English and the French label otherwise (French is the default language).
"""

from django.conf import settings
from django.utils import translation


def localized_label(row, language: str | None = None) -> str:
    language = (language or translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    if language == "en" and getattr(row, "label_en", ""):
        return row.label_en
    return row.label_fr
