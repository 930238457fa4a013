"""The label of a reference row (document type, profession, document category) in the current language.

Reference tables carry both labels (``label_fr``, ``label_en``) as data, not as gettext messages: pages and forms
show ``label_en`` under English and the French label otherwise (French is the default language).
"""

import time

from django.conf import settings
from django.utils import translation

# French label -> English label of every profession, reloaded at most every PROFESSION_NAMES_TTL seconds.
PROFESSION_NAMES_TTL = 300
_profession_names: tuple[float, dict[str, str]] = (float("-inf"), {})


def localized_label(row, language: str | None = None) -> str:
    language = (language or translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    label_en = getattr(row, "label_en", "")
    if language == "en" and label_en:
        return label_en
    return row.label_fr


def profession_snapshot_label(snapshot: str, language: str | None = None) -> str:
    """The profession a trail entry names, in the current language.

    The trail keeps the profession as a French snapshot (T1: as it was then; the entry is hashed and never
    changes). Under English, the snapshot is shown as the English label of the profession that bears that French
    label now, or as written when none does (a renamed or removed profession). Costs one query per process every
    ``PROFESSION_NAMES_TTL`` seconds, and none under French.
    """
    language = (language or translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    if language != "en" or not snapshot:
        return snapshot
    return _english_profession_names().get(snapshot, snapshot)


def _english_profession_names() -> dict[str, str]:
    global _profession_names
    from practitioners.models import Profession

    loaded_at, names = _profession_names
    if time.monotonic() - loaded_at > PROFESSION_NAMES_TTL:
        names = {
            label_fr: label_en or label_fr
            for label_fr, label_en in Profession.objects.values_list("label_fr", "label_en")
        }
        _profession_names = (time.monotonic(), names)
    return names
