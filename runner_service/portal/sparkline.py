"""A small trend line of numbers (a host's backup sizes, oldest first) as SVG geometry;
templates/backups/sparkline.html draws it. The scale runs from the smallest value to the
largest, so a change of a few percent is visible."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH = 120
HEIGHT = 24
PAD = 3


@dataclass
class Sparkline:
    width: int
    height: int
    points: str  # an SVG polyline's points
    last: tuple[float, float]  # the newest value's dot


def sparkline(values: list[float], width: int = WIDTH, height: int = HEIGHT) -> Sparkline | None:
    """None for fewer than two values (no trend to draw)."""
    if len(values) < 2:
        return None
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = (width - 2 * PAD) / (len(values) - 1)
    coordinates = [(PAD + index * step, height - PAD - (value - low) / span * (height - 2 * PAD))
                   for index, value in enumerate(values)]
    return Sparkline(width=width, height=height, points=' '.join('%.1f,%.1f' % point for point in coordinates),
                     last=coordinates[-1])
