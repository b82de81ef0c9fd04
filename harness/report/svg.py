"""Small inline SVG charts for the HTML report (no external assets, no JavaScript needed)."""

from __future__ import annotations

from html import escape

from harness.report.summary import Summary

ARM_COLOURS = {"baseline": "#8a9bb0", "with_skill": "#2b7bb9"}


def pass_rate_chart(summary: Summary, *, width: int = 640, bar_h: int = 18) -> str:
    """Horizontal bars: pass rate per (model, arm), whiskers for the Wilson interval."""
    rows = [a for a in summary.arms]
    if not rows:
        return ""
    left, right, top = 220, 60, 24
    plot_w = width - left - right
    height = top + len(rows) * (bar_h + 8) + 28
    out = [f'<svg class="chart" id="chart-pass" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" role="img" aria-label="pass rate per model and arm">']
    out.append(f'<text x="{left}" y="14" font-size="12">pass rate (completed trials), 95% Wilson interval</text>')
    for tick in (0, 25, 50, 75, 100):
        x = left + plot_w * tick / 100
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 22}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">{tick}%</text>')
    for i, a in enumerate(rows):
        y = top + i * (bar_h + 8)
        label = escape(f"{a.model} · {a.arm}")
        out.append(f'<text x="{left - 6}" y="{y + bar_h * 0.75:.1f}" font-size="11" text-anchor="end">{label}</text>')
        r = a.pass_rate
        if r.rate is None:
            out.append(f'<text x="{left + 4}" y="{y + bar_h * 0.75:.1f}" font-size="11" fill="#999">'
                       f'no completed trials</text>')
            continue
        w = plot_w * r.rate
        colour = ARM_COLOURS.get(a.arm, "#777")
        out.append(f'<rect class="bar" x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                   f'<title>{label}: {100 * r.rate:.0f}% ({r.k}/{r.n})</title></rect>')
        lo, hi = left + plot_w * (r.lo or 0), left + plot_w * (r.hi or 0)
        mid = y + bar_h / 2
        out.append(f'<line x1="{lo:.1f}" y1="{mid}" x2="{hi:.1f}" y2="{mid}" stroke="#222"/>')
        for x in (lo, hi):
            out.append(f'<line x1="{x:.1f}" y1="{mid - 4}" x2="{x:.1f}" y2="{mid + 4}" stroke="#222"/>')
        out.append(f'<text x="{left + plot_w + 4}" y="{y + bar_h * 0.75:.1f}" font-size="11">'
                   f'{100 * r.rate:.0f}%</text>')
    out.append("</svg>")
    return "".join(out)


def histogram_chart(counts: dict[str, int], *, title: str, top: int = 16, width: int = 520) -> str:
    """Horizontal bars of the most frequent SASS opcodes of one kernel."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    if not items:
        return ""
    left, bar_h = 110, 14
    plot_w = width - left - 50
    biggest = max(v for _, v in items) or 1
    height = 22 + len(items) * (bar_h + 4)
    out = [f'<svg class="chart sass" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="{escape(title)}">',
           f'<text x="0" y="12" font-size="12">{escape(title)}</text>']
    for i, (op, n) in enumerate(items):
        y = 20 + i * (bar_h + 4)
        w = plot_w * n / biggest
        out.append(f'<text x="{left - 6}" y="{y + 11}" font-size="10" text-anchor="end" '
                   f'font-family="monospace">{escape(op)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#6a8f4e"/>')
        out.append(f'<text x="{left + w + 4:.1f}" y="{y + 11}" font-size="10">{n}</text>')
    out.append("</svg>")
    return "".join(out)
