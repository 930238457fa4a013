"""System checks of the notice pipeline.

carnet.W010  Debian's libharfbuzz-subset0 is missing: WeasyPrint falls back to pure-Python font subsetting
             and a letter takes ~240 ms instead of ~43 ms (perf anchors), silently.
"""

import ctypes.util
from collections.abc import Sequence

from django.apps import AppConfig
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.compatibility)
def check_harfbuzz_subset(app_configs: Sequence[AppConfig] | None, **kwargs: object) -> list[CheckMessage]:
    if ctypes.util.find_library("harfbuzz-subset"):
        return []
    return [
        Warning(
            "libharfbuzz-subset is not installed: postal letters will render about 5 times slower.",
            hint="Install Debian's libharfbuzz-subset0 (apt-get install libharfbuzz-subset0); `make run` and "
            ".ci/run do it when they can.",
            id="carnet.W010",
        )
    ]
