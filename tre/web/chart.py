"""A cumulative spending chart drawn as inline SVG (no JavaScript, no image files)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 40


def spending_svg(
    points: Sequence[tuple[datetime, float]], *, cap: float, title: str, start: datetime
) -> str:
    """Cumulative ρ spent over time as a step line, with the lifetime cap as a dashed line."""
    end = max([start, *(t for t, _ in points)])
    span = max((end - start).total_seconds(), 1.0)
    top = max(cap, max((v for _, v in points), default=0.0), 1e-12)

    def x(t: datetime) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (t - start).total_seconds() / span

    def y(v: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - v / top)

    path = [f"M{x(start):.1f},{y(0):.1f}"]
    last = 0.0
    for t, v in points:
        path.append(f"L{x(t):.1f},{y(last):.1f}")
        path.append(f"L{x(t):.1f},{y(v):.1f}")
        last = v
    path.append(f"L{x(end):.1f},{y(last):.1f}")
    ticks = "".join(
        f'<line x1="{LEFT - 4}" x2="{WIDTH - RIGHT}" y1="{y(top * f):.1f}" y2="{y(top * f):.1f}" '
        f'stroke="#d0d0d0"/><text x="{LEFT - 8}" y="{y(top * f) + 4:.1f}" text-anchor="end">'
        f"{top * f:g}</text>"
        for f in (0, 0.25, 0.5, 0.75, 1)
    )
    label = escape(title)
    return (
        f'<svg class="chart" role="img" aria-labelledby="chart-title" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" font-size="12" font-family="sans-serif" fill="#1b1b1b">'
        f'<title id="chart-title">{label}</title>{ticks}'
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(cap):.1f}" y2="{y(cap):.1f}" '
        f'stroke="#a4161a" stroke-width="2" stroke-dasharray="6 4"/>'
        f'<text x="{WIDTH - RIGHT}" y="{y(cap) - 5:.1f}" text-anchor="end" fill="#a4161a">'
        f"lifetime cap ρ {cap:g}</text>"
        f'<path d="{" ".join(path)}" fill="none" stroke="#0b4f9c" stroke-width="2.5"/>'
        f'<text x="{LEFT}" y="{HEIGHT - 12}">{start:%Y-%m-%d %H:%M}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 12}" text-anchor="end">{end:%Y-%m-%d %H:%M}</text>'
        f'<text x="12" y="{TOP + 4}" transform="rotate(-90 12,{TOP + 4})" text-anchor="end">ρ spent</text>'
        "</svg>"
    )
