"""Server-rendered SVG bar charts: the geometry is computed here, the markup is a template
(``_chart.html``), so every attribute is quoted and every label escaped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 110, 8, 16, 36
MAX_LABELS = 6


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    shown: str  # the value as text (the bar's tooltip)
    tick: bool  # label this bar on the axis


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    bars: tuple[Bar, ...]
    top: str  # the axis maximum as text
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    base: int = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.bars


def bar_chart(
    title: str,
    points: Sequence[tuple[str, float | None]],
    fmt: Callable[[float], str] = lambda v: f"{v:,.0f}",
) -> Chart:
    """Bars for ``(label, value)`` points, scaled to the largest value (None: no bar)."""
    high = max((v for _, v in points if v is not None), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(points), 1)
    every = max(1, -(-len(points) // MAX_LABELS))
    bars = []
    for i, (label, value) in enumerate(points):
        size = 0.0 if value is None else plot_h * value / high
        bars.append(
            Bar(
                x=round(LEFT + i * step + step * 0.1, 2),
                y=round(TOP + plot_h - size, 2),
                width=round(step * 0.8, 2),
                height=round(size, 2),
                label=label,
                shown="no data" if value is None else fmt(value),
                tick=i % every == 0,
            )
        )
    return Chart(title, tuple(bars), fmt(high))
