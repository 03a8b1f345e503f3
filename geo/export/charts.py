"""Server-rendered SVG trend charts: an area's daily series with its children's sparklines.

Hand-written SVG (no script, no external reference), so it loads under the app's
Content-Security-Policy as an ``<img>`` and prints crisp in exports. Every text that comes from
the data (area names) is XML-escaped: names can come from uploaded files.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

WIDTH = 320
MAIN_HEIGHT = 162
SPARK_HEIGHT = 26
MAX_SPARKS = 12
COLORS = {"line": "#bd0026", "area": "#fde0c5", "axis": "#8a8170", "text": "#3b372f", "spark": "#f03b20",
          "grid": "#ece6da"}


def _fmt(v: float) -> str:
    return f"{int(round(v)):,}"


def _path(values: list[float], x0: float, y0: float, w: float, h: float, top: float) -> list[tuple[float, float]]:
    n = max(len(values) - 1, 1)
    top = top or 1
    return [(x0 + w * i / n, y0 + h - h * v / top) for i, v in enumerate(values)]


def _points(pts) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)


def trend_svg(series: dict, labels: dict | None = None, max_sparks: int = MAX_SPARKS) -> str:
    """The trend chart of :func:`geo.timeseries.area_series`'s answer as an SVG document.

    The top chart is the area's daily series (filled line, y axis from 0 to the peak, first,
    peak and last dates); below it, one sparkline per child (the ``max_sparks`` largest by
    total, each on its own scale with its total), so a lagging child stands out by shape.
    ``labels`` may give "title", "peak", "others" (with ``{n}``) and "own_scale" in the page's
    language.
    """
    labels = {"title": "", "peak": "peak", "others": "+{n} more", "own_scale": "each on its own scale",
              **(labels or {})}
    days, values = series["days"], series["values"]
    children = sorted(series.get("children", []), key=lambda c: (-c["total"], c["code"]))
    shown, hidden = children[:max_sparks], max(0, len(children) - max_sparks)
    left, right, top_pad = 44, 8, 34  # room for the title and the peak label above the line
    plot_w = WIDTH - left - right
    plot_h = MAIN_HEIGHT - top_pad - 24
    spark_top = MAIN_HEIGHT + (16 if shown else 0)
    height = spark_top + len(shown) * SPARK_HEIGHT + (14 if hidden else 0) + 4
    peak = max(values) if values else 0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
           f'height="{height}" font-family="sans-serif" font-size="10" role="img" '
           f'aria-label={quoteattr(labels["title"] or series["area"]["name"])}>']
    out.append(f"<title>{escape(labels['title'] or series['area']['name'])}</title>")
    out.append(f'<text x="{left}" y="12" font-size="11" font-weight="bold" fill="{COLORS["text"]}">'
               f'{escape(series["area"]["name"])}</text>')
    # Horizontal guides at 0, half and the peak.
    for frac in (0, 0.5, 1):
        y = top_pad + plot_h - plot_h * frac
        out.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLORS["grid"]}"/>')
        out.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" fill="{COLORS["axis"]}">'
                   f'{_fmt(peak * frac)}</text>')
    if values:
        pts = _path(values, left, top_pad, plot_w, plot_h, peak)
        base = top_pad + plot_h
        out.append(f'<polygon class="ga-trend-area" fill="{COLORS["area"]}" points="{left},{base} {_points(pts)} '
                   f'{WIDTH - right},{base}"/>')
        out.append(f'<polyline class="ga-trend-line" fill="none" stroke="{COLORS["line"]}" stroke-width="1.6" '
                   f'points="{_points(pts)}"/>')
        i = values.index(peak)
        px, py = pts[i]
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{COLORS["line"]}"/>')
        anchor = "end" if px > WIDTH - 80 else ("start" if px < left + 40 else "middle")
        out.append(f'<text x="{px:.1f}" y="{max(py - 5, 10):.1f}" text-anchor="{anchor}" fill="{COLORS["text"]}">'
                   f'{escape(labels["peak"])} {_fmt(peak)} ({days[i][5:]})</text>')
        y = base + 14
        out.append(f'<text x="{left}" y="{y}" fill="{COLORS["axis"]}">{days[0]}</text>')
        out.append(f'<text x="{WIDTH - right}" y="{y}" text-anchor="end" fill="{COLORS["axis"]}">{days[-1]}</text>')
    if shown:
        out.append(f'<text x="4" y="{MAIN_HEIGHT + 8}" fill="{COLORS["axis"]}">{escape(labels["own_scale"])}</text>')
    for j, child in enumerate(shown):
        y0 = spark_top + j * SPARK_HEIGHT
        out.append(f'<g class="ga-spark" data-code={quoteattr(child["code"])}>')
        out.append(f'<text x="4" y="{y0 + 15}" fill="{COLORS["text"]}">{escape(_clip(child["name"], 8))}</text>')
        pts = _path(child["values"], 110, y0 + 3, WIDTH - 110 - 60, SPARK_HEIGHT - 8, max(child["values"] or [0]))
        out.append(f'<polyline fill="none" stroke="{COLORS["spark"]}" stroke-width="1" points="{_points(pts)}"/>')
        out.append(f'<text x="{WIDTH - right}" y="{y0 + 15}" text-anchor="end" fill="{COLORS["axis"]}">'
                   f'{_fmt(child["total"])}</text></g>')
    if hidden:
        y = spark_top + len(shown) * SPARK_HEIGHT + 10
        out.append(f'<text x="4" y="{y}" fill="{COLORS["axis"]}">{escape(labels["others"].format(n=hidden))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _clip(text: str, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"
