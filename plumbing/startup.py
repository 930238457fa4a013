"""What a long-lived process does once its application is built."""

import gc

from django.urls import get_resolver


def freeze_start_up() -> None:
    """Put what start-up built out of the cyclic collector's reach, the URL patterns and views included.

    Settings, models, URL patterns, views and translations live as long as the process. Left to the collector,
    every full collection walks them all: a FHIR Bundle of 50 resources allocates enough containers to trigger
    collections, and a worker's throughput then swung by a third from run to run (bench/README.md, api.py). Frozen
    (``gc.freeze``), they are skipped. Objects made later are collected as before.
    """
    get_resolver().url_patterns  # noqa: B018  -- imports every view now rather than on the first request
    gc.freeze()
