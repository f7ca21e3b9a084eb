"""Bar charts as SVG drawn on the server (the CSP allows no script): the geometry of each bar
is computed here in whole numbers from the values (counts and points: never money, never a
float), and templates/chart.html writes it as markup with a title and a description, the
numbers themselves in a table beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 600, 200  # the drawing's own units (viewBox); it scales to the page's width
LEFT, BOTTOM, TOP = 44, 22, 8  # room for the y axis's label, the x axis's labels, the top


@dataclass(frozen=True, slots=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    label: str
    value: int


@dataclass(frozen=True, slots=True)
class Chart:
    id: str  # unique on the page: the title's and description's ids derive from it
    title: str
    labels: tuple[str, ...]
    values: tuple[int, ...]
    bars: tuple[Bar, ...]
    top: int  # the value of the y axis's top
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: int = HEIGHT - BOTTOM  # y of the x axis

    @property
    def total(self) -> int:
        return sum(self.values)

    @property
    def points(self) -> list[tuple[str, int]]:
        return list(zip(self.labels, self.values, strict=True))

    @property
    def peak(self) -> int:
        return max(self.values, default=0)


def nice_top(peak: int) -> int:
    """The y axis's top: the peak rounded up to 1, 2 or 5 times a power of ten (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if peak <= step * factor:
                return step * factor
        step *= 10


def bar_chart(chart_id: str, title: str, labels: Sequence[str], values: Sequence[int]
              ) -> Chart:
    top = nice_top(max(values, default=0))
    span = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) // max(len(values), 1)
    gap = slot // 5
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = value * span // top if value > 0 else 0
        bars.append(Bar(x=LEFT + i * slot + gap // 2, y=HEIGHT - BOTTOM - height,
                        width=max(slot - gap, 1), height=height, label=label, value=value))
    return Chart(chart_id, title, tuple(labels), tuple(values), tuple(bars), top)
