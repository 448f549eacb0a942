"""Server-rendered SVG charts for the admin (no JavaScript, no CDN): a daily line chart and funnel bars.

Values are numbers we computed; labels are escaped, so a campaign or node name cannot inject markup.
"""
from __future__ import annotations

from html import escape

from django.utils.safestring import SafeString, mark_safe

COLOURS = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#d62728", "#7f7f7f")
WIDTH, HEIGHT, PAD = 720, 220, 30


def line_chart(*, labels: list[str], series: dict[str, list[int]]) -> SafeString:
    """One polyline per series over the labels (days), a legend above, the largest value on the axis."""
    top = max([1, *(v for values in series.values() for v in values)])
    step = (WIDTH - 2 * PAD) / max(1, len(labels) - 1)
    parts = [f'<svg class="metrics-chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT + 40}" width="{WIDTH}" '
             f'height="{HEIGHT + 40}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="2" y="{PAD + 4}" font-size="10">{top}</text>',
             f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH - PAD}" y2="{HEIGHT}" stroke="#999"/>']
    for i, (name, values) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = " ".join(f"{PAD + j * step:.1f},{HEIGHT - (HEIGHT - PAD) * v / top:.1f}" for j, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        parts.append(f'<text x="{PAD + i * 100}" y="{HEIGHT + 30}" font-size="11" fill="{colour}">'
                     f'{escape(name)}</text>')
    if labels:
        parts.append(f'<text x="{PAD}" y="{HEIGHT + 14}" font-size="10">{escape(labels[0])}</text>')
        parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT + 14}" font-size="10" text-anchor="end">'
                     f'{escape(labels[-1])}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built above from numbers and escaped labels


def funnel_bars(*, rows: list[tuple[str, list[tuple[str, int]]]]) -> SafeString:
    """Per row (a step), one horizontal bar per stage (sent, delivered, opened...), scaled to the largest."""
    top = max([1, *(n for _, stages in rows for _, n in stages)])
    bar, gap = 12, 4
    height = max(1, sum(len(stages) * (bar + gap) + 18 for _, stages in rows))
    parts = [f'<svg class="metrics-funnel" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
             f'height="{height}" xmlns="http://www.w3.org/2000/svg">']
    y = 0
    for label, stages in rows:
        parts.append(f'<text x="0" y="{y + 12}" font-size="12" font-weight="bold">{escape(label)}</text>')
        y += 18
        for i, (stage, n) in enumerate(stages):
            length = (WIDTH - 260) * n / top
            colour = COLOURS[i % len(COLOURS)]
            parts.append(f'<text x="0" y="{y + bar - 2}" font-size="11">{escape(stage)}</text>'
                         f'<rect x="110" y="{y}" width="{length:.1f}" height="{bar}" fill="{colour}"/>'
                         f'<text x="{115 + length:.1f}" y="{y + bar - 2}" font-size="11">{n}</text>')
            y += bar + gap
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built above from numbers and escaped labels
