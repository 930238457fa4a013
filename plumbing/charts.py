"""The shape of a chart for ``templates/_chart.html``: its drawing data and its table equivalent, in one dict.

A page builds each chart with :func:`chart`; the partial writes the data with ``json_script`` and
``static/js/charts.js`` draws it with the vendored Chart.js (``static/vendor/chartjs/``). The same numbers
are written as a table under the canvas, for screen readers and for readers who would rather read.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Colours with a contrast of at least 3:1 on white (WCAG 1.4.11, graphical objects); emergencies in red.
BLUE = "#000091"
RED = "#ce0500"
GREEN = "#18753c"
ORANGE = "#b34000"
GREY = "#666666"
PALETTE = (BLUE, GREEN, ORANGE, "#6e445a", "#00607a", GREY)


@dataclass(frozen=True)
class Series:
    """One series of a chart: its name, one value per label, and its colour (one colour, or one per bar)."""

    label: Any
    values: Sequence[int | float]
    colour: str | Sequence[str] = BLUE


def chart(
    chart_id: str,
    title: Any,
    labels: Sequence[Any],
    series: Sequence[Series],
    *,
    kind: str = "bar",
    stacked: bool = False,
    horizontal: bool = False,
    label_heading: Any = "",
) -> dict[str, Any]:
    """A chart for the partial: ``spec`` (the JSON the script reads) and ``rows`` (the table equivalent)."""
    labels = [str(label) for label in labels]
    spec = {
        "type": kind,
        "stacked": stacked,
        "horizontal": horizontal,
        "labels": labels,
        "datasets": [
            {
                "label": str(one.label),
                "data": list(one.values),
                "colour": one.colour if isinstance(one.colour, str) else list(one.colour),
            }
            for one in series
        ],
    }
    return {
        "id": chart_id,
        "data_id": f"{chart_id}-data",
        "title": str(title),
        "spec": spec,
        "label_heading": str(label_heading),
        "headings": [str(one.label) for one in series],
        "rows": [(label, [one.values[index] for one in series]) for index, label in enumerate(labels)],
        "empty": not any(value for one in series for value in one.values),
    }
