"""Small bar charts as inline SVG, drawn on the server: no chart library, no script, works under the CSP.

Only numbers and our own labels go in; labels are escaped all the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

WIDTH = 720
HEIGHT = 220
LEFT = 56
BOTTOM = 24
TOP = 12


def nice_ceiling(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    values: Sequence[float | None],
    labels: Sequence[str],
    *,
    title: str,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    axis_fmt: Callable[[float], str] | None = None,
    maximum: float | None = None,
    css_class: str = "",
) -> Markup:
    """One bar per value (None = no data that day, drawn as nothing). Every bar has a <title> tooltip."""
    plot_w = WIDTH - LEFT - 8
    plot_h = HEIGHT - BOTTOM - TOP
    top_value = maximum if maximum is not None else nice_ceiling(max((v or 0) for v in values) if values else 0)
    n = max(1, len(values))
    slot = plot_w / n
    bar_w = max(2.0, slot * 0.7)
    parts = [
        f'<svg class="chart {escape(css_class)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape((axis_fmt or fmt)(top_value * fraction))}</text>"
        )
    label_every = max(1, n // 10)
    for i, (value, label) in enumerate(zip(values, labels, strict=False)):
        x = LEFT + i * slot + (slot - bar_w) / 2
        if value is not None and top_value > 0:
            h = plot_h * min(value, top_value) / top_value
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" '
                f'width="{bar_w:.1f}" height="{max(h, 0):.1f}">'
                f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text class="axis" x="{x + bar_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bar_chart(
    values: Sequence[float],
    labels: Sequence[str],
    *,
    title: str,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    width: int = 480,
    css_class: str = "",
) -> Markup:
    """One labelled row per value, for categories whose names are too long to sit under a bar (UTM
    sources, campaigns). Narrower than ``bar_chart`` so its text stays readable on a phone."""
    row_h, label_w, value_w = 26, 170, 48
    plot_w = width - label_w - value_w
    height = max(1, len(values)) * row_h + 4
    top_value = nice_ceiling(max(values, default=0))
    parts = [
        f'<svg class="chart hchart {escape(css_class)}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (value, label) in enumerate(zip(values, labels, strict=False)):
        y = 2 + i * row_h
        shown = label if len(label) <= 26 else label[:25] + "…"
        w = plot_w * min(value, top_value) / top_value if top_value > 0 else 0
        parts.append(
            f'<text class="axis" x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">{escape(shown)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 8}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
            f'<text class="axis" x="{label_w + w + 6:.1f}" y="{y + row_h / 2 + 4:.1f}">{escape(fmt(value))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
