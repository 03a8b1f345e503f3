"""Drawing one export page with matplotlib: title, map, legend panel, scale bar, north arrow, footer.

The map is drawn in EPSG:4549 (metres, conformal), from ready-made paths (export_shapes) with
one PathCollection per layer, so even the 10,205 grids of the whole city draw in well under a
second. Page furniture is placed in millimetres (export_layout). Every text uses the CJK
font of geo.fonts and is kept as text in PDF and SVG.
"""

from __future__ import annotations

import datetime as dt
import io
import logging

import numpy as np
import pandas as pd
import shapely
from matplotlib.collections import PathCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Rectangle
from matplotlib.patches import Polygon as MplPolygon
from matplotlib.text import Text
from matplotlib.transforms import Affine2D

from geo.atlas.hierarchy import CITY_NAME, LEVEL_NAMES_ZH, child_level
from geo.atlas.metrics import get_metric
from geo.export import fonts
from geo.export.layout import MM_PER_INCH, Box, best_orientation, page_layout
from geo.export.scalebar import MAP_CRS, map_scale_denominator, scale_bar, true_north_angle
from geo.export.shapes import shapes_of
from geo.query.classify import METHODS, NO_DATA_COLOR

log = logging.getLogger(__name__)

PT_TO_MM = 25.4 / 72
INK = "#1a1a1a"
GREY = "#555555"
CONTEXT_FILL = "#ebebeb"
# Areas hidden by secondary small-count suppression ("*"): one neutral grey, outside the classes.
HIDDEN_FILL = "#b3b3b3"
AREA_EDGE = "#222222"

TEXT = {
    "zh": {
        "title": "{area}　{metric}",
        "subtitle": "统计期：{start} 至 {end}（共 {days} 天）　按{level}统计　单位：{unit}",
        "code": "区划代码 {code}",
        "legend": "{metric}（{unit}）",
        "method": "{method}分级，{k} 级",
        "total": "合计　{total} {unit}",
        "daily": "日均　{value} {unit}",
        "count": "{level}　{n} 个",
        "max": "最高　{name}（{value}）",
        "labels_some": "注记：只标注放得下的{level}名称",
        "source": "数据来源：{source}",
        "data_time": "数据时间：计数生成于 {time}",
        "crs": "坐标系：CGCS2000 / 3 度带高斯-克吕格投影，中央经线 120°E（EPSG:4549）",
        "made": "制图：Grid Atlas　导出于 {time}",
        "north": "北",
        "location": "位置",
        "scale": "比例尺 1:{n}",
        "default_source": "Grid Atlas 演示数据（依据 2020 年宁波市网格化治理报道合成）",
        "unknown": "未知",
        "hidden": "* 不公布（防止反推）",
        "no_data": "无数据（前期为 0，无百分比）",
        "levels": LEVEL_NAMES_ZH,
    },
    "en": {
        "title": "{area} — {metric}",
        "subtitle": "Period: {start} to {end} ({days} days)   by {level}   unit: {unit}",
        "code": "area code {code}",
        "legend": "{metric} ({unit})",
        "method": "{method}, {k} classes",
        "total": "Total  {total} {unit}",
        "daily": "Daily mean  {value} {unit}",
        "count": "{n} {level}s",
        "max": "Highest  {name} ({value})",
        "labels_some": "Only names that fit are shown",
        "source": "Source: {source}",
        "data_time": "Data time: counts built {time}",
        "crs": "CRS: CGCS2000 / 3-degree Gauss-Kruger CM 120E (EPSG:4549)",
        "made": "Map: Grid Atlas, exported {time}",
        "north": "N",
        "location": "Location",
        "scale": "Scale 1:{n}",
        "default_source": "Grid Atlas demo data (synthesised from a 2020 report on Ningbo's grid governance)",
        "unknown": "unknown",
        "hidden": "* not shown (protects small counts)",
        "no_data": "no data (first period 0: no per cent)",
        "levels": {"city": "city", "district": "district", "town": "town", "village": "village", "grid": "grid"},
    },
}


def _date(d: dt.date, lang: str) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if lang == "zh" else f"{d.day} {d:%b} {d.year}"


def _value_text(data, code, value) -> str:
    """A count as the export prints it: suppressed ("<5", "*") when the export asks for it; on a
    change map, signed and in the legend's unit ("+12", "-8%")."""
    if data.printed is not None and code in data.printed:
        return data.printed[code]
    suffix = getattr(data.classes, "suffix", None)  # only the diverging classes of a change map
    if suffix is not None:
        return f"{value:+,.0f}{suffix}".replace("+0" + suffix, "0" + suffix).replace("-0" + suffix, "0" + suffix)
    return _fmt_int(value)


def _fmt_int(v) -> str:
    return f"{int(v):,}"


def _luminance(color: str) -> float:
    r, g, b = to_rgb(color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_width_em(text: str) -> float:
    """Rough advance width of one line in em: CJK and full-width characters 1, others about 0.56."""
    return sum(1.0 if ord(c) >= 0x2E80 else 0.56 for c in text)


def _charset(atlas) -> str:
    """Every character an export may print: names of all areas, metrics and the page texts."""
    cache = shapes_of(atlas)
    if cache.charset is None:
        cache.charset = _collect_chars(atlas)
    return cache.charset


def _collect_chars(atlas) -> str:
    chars = set()
    for layer in atlas.layers.values():
        chars.update("".join(layer["name"].astype(str).tolist()))
    chars.update(CITY_NAME)
    for table in TEXT.values():
        for value in table.values():
            chars.update("".join(value.values()) if isinstance(value, dict) else value)
    from geo.atlas.metrics import METRICS

    for m in METRICS.values():
        chars.update(m.name_zh + m.unit_zh + m.name_en + m.unit_en)
    for zh, en in METHODS.values():
        chars.update(zh + en)
    return "".join(sorted(chars))


def font_path_for(service, extra: str = "") -> str:
    """The converted CJK font file for this atlas (built once, cached under the data folder)."""
    chars = _charset(service.atlas) + extra
    try:
        return str(fonts.font_file(chars, service.settings.data_path / "cache" / "fonts"))
    except OSError:  # a read-only data folder: keep the converted font in the temp folder
        return str(fonts.font_file(chars, fonts.default_cache_dir()))


def warm_up(service, levels) -> None:
    """Load what every export needs (counts, shapes, label anchors, font) before forking workers."""
    service.cube()
    cache = shapes_of(service.atlas)
    for level in set(levels) | {"district"}:
        shapes = cache.level(level)
        _ = shapes.paths, shapes.anchors, shapes.bounds
    cache.city()
    font_path_for(service)


class _Page:
    """Helpers to put text and shapes on the page in millimetres, all in the export font."""

    def __init__(self, fig: Figure, font_path: str, scale: float, svg: bool = False):
        self.fig = fig
        self.font_path = font_path
        self.scale = scale
        # Only SVG names the font (its text is set by the viewer); elsewhere the file alone
        # decides, which spares matplotlib a font lookup per family per text.
        self.families = fonts.SVG_FAMILIES if svg else None
        self.mm = Affine2D().scale(1 / MM_PER_INCH) + fig.dpi_scale_trans
        self._props: dict[float, FontProperties] = {}

    def props(self, size: float) -> FontProperties:
        """Font properties at ``size`` points (before the paper scale)."""
        size = round(size * self.scale, 2)
        if size not in self._props:
            self._props[size] = FontProperties(family=self.families, fname=self.font_path, size=size)
        return self._props[size]

    def text(self, x, y, s, size, color=INK, gid=None, **kw) -> Text:
        """Text at (x, y) mm; never parsed as mathtext (names may hold '$')."""
        return self.fig.text(x, y, s, transform=self.mm, fontproperties=self.props(size), color=color,
                             parse_math=False, gid=gid, **kw)

    def rect(self, x, y, w, h, **kw) -> Rectangle:
        """A rectangle in mm."""
        r = Rectangle((x, y), w, h, transform=self.mm, **kw)
        self.fig.add_artist(r)
        return r

    def line(self, x0, y0, x1, y1, **kw) -> Line2D:
        """A straight line in mm."""
        ln = Line2D([x0, x1], [y0, y1], transform=self.mm, **kw)
        self.fig.add_artist(ln)
        return ln


def draw_map(service, data, options):
    """Draw the export of ``data`` (from export.map_data) on a new Figure; return (figure, info)."""
    atlas = service.atlas
    cache = shapes_of(atlas)
    metric = get_metric(data.metric)
    T = TEXT[options.lang]
    unit = metric.unit_zh if options.lang == "zh" else metric.unit_en
    metric_name = metric.name_zh if options.lang == "zh" else metric.name_en

    area_geom = cache.geometry(data.code, data.level)
    minx, miny, maxx, maxy = area_geom.bounds
    pad = 0.03 * max(maxx - minx, maxy - miny, 200.0)
    ext = (minx - pad, miny - pad, maxx + pad, maxy + pad)
    orientation = options.orientation or best_orientation(options.paper, ext[2] - ext[0], ext[3] - ext[1])
    layout = page_layout(options.paper, orientation)

    if options.fmt == "png":
        # Exactly the pixel size of the paper at this dpi (Agg truncates fractional pixels).
        px_w, px_h = layout.pixels(options.dpi)
        figsize = ((px_w + 0.01) / options.dpi, (px_h + 0.01) / options.dpi)
    else:
        figsize = layout.size_inches
    fig = Figure(figsize=figsize, dpi=options.dpi, facecolor="white")
    legend_names = "".join(getattr(data.classes, "names", None) or ())  # a change map's legend heading
    font_path = font_path_for(service, "".join(data.values["name"].astype(str)) + data.source + data.suppression_note
                              + legend_names)
    page = _Page(fig, font_path, layout.scale, svg=options.fmt == "svg")
    info = {"layout": layout, "font_path": font_path, "classes": data.classes}

    ax, view, units_per_mm = _map_axes(fig, layout, ext)
    info["view"], info["units_per_mm"] = view, units_per_mm
    _draw_context(ax, cache, data, view)
    fill = _draw_choropleth(ax, cache, data, vector=options.fmt != "png")
    _draw_outlines(ax, cache, data, area_geom, view)
    info["labels"], some_skipped, placed = _draw_labels(ax, page, cache, data, layout, units_per_mm, view, fill)
    _draw_context_labels(ax, page, cache, data, layout, units_per_mm, view, placed)

    corners = _corner_order(area_geom, view, layout.map, units_per_mm, layout.scale)
    info["scalebar"] = _draw_scale_bar(ax, page, T, corners[0], view, units_per_mm, layout)
    info["north_angle"] = _draw_north_arrow(ax, page, T, corners[1], view, units_per_mm, layout)

    names = [x["name"] for x in data.lineage if x["level"] != "city"] or [data.name]
    title = T["title"].format(area="".join(names), metric=metric_name)
    info["title"] = title
    _draw_title(page, layout, T, title, data, unit, options)
    _draw_panel(page, fig, layout, T, cache, data, unit, metric_name, options, area_geom,
                T["labels_some"].format(level=T["levels"][_label_level(data)]) if some_skipped else None)
    _draw_footer(page, layout, T, data)

    missing = set()
    for t in fig.findobj(Text):
        missing |= fonts.missing_glyphs(t.get_text(), font_path)
    if missing:
        log.warning("export %s: no glyph for %s in %s", data.code, "".join(sorted(missing)), font_path)
    info["missing_glyphs"] = missing
    return fig, info


def _map_axes(fig, layout, ext):
    frame = layout.map
    ax = fig.add_axes(frame.rect(layout.width, layout.height))
    # No ticks or spines to lay out: the frame is one rectangle in axes coordinates.
    ax.set_axis_off()
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, facecolor="none", edgecolor=GREY,
                           linewidth=0.6, zorder=20, clip_on=False))
    units_per_mm = max((ext[2] - ext[0]) / frame.w, (ext[3] - ext[1]) / frame.h)
    cx, cy = (ext[0] + ext[2]) / 2, (ext[1] + ext[3]) / 2
    half_w, half_h = frame.w * units_per_mm / 2, frame.h * units_per_mm / 2
    view = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    ax.set_xlim(view[0], view[2])
    ax.set_ylim(view[1], view[3])
    ax.set_autoscale_on(False)
    ax.set_gid("map")
    return ax, view, units_per_mm


def _draw_context(ax, cache, data, view) -> None:
    """The neighbours of the area in light grey, so a reader sees where it lies."""
    if data.level == "city":
        return
    shapes = cache.level(data.level)
    idx = shapes.in_view(*view)
    own = shapes.span(data.code)
    idx = idx[(idx < own.start) | (idx >= own.stop)]
    if len(idx):
        ax.add_collection(PathCollection([shapes.paths[i] for i in idx], facecolors=CONTEXT_FILL,
                                         edgecolors="white", linewidths=0.6, zorder=1))
    if data.level != "district":
        districts = cache.level("district")
        ax.add_collection(PathCollection(districts.paths, facecolors="none", edgecolors="#bdbdbd",
                                         linewidths=0.8, zorder=1.5))


def _draw_choropleth(ax, cache, data, vector: bool):
    shapes = cache.level(data.fill_level)
    sl = shapes.span(data.code)
    codes = shapes.codes[sl]
    given = data.values.set_index("code")["value"]
    values = pd.to_numeric(given.reindex(codes), errors="coerce")
    # An area without a row has no count (0); one whose value is empty has no value at all (a
    # change in per cent from 0): that one is drawn "no data", as on the map.
    no_data = values.isna().to_numpy() & np.isin(codes, given.index)
    colors = data.classes.color_of(values.fillna(0).to_numpy())
    colors = [NO_DATA_COLOR if nd else col for nd, col in zip(no_data, colors)]
    if data.hidden:  # secondary suppression: the colour must not tell the hidden count's class
        colors = [HIDDEN_FILL if c in data.hidden else col for c, col in zip(codes, colors)]
    n = len(codes)
    width = 0.12 if n > 2000 else 0.25 if n > 300 else 0.5
    edges = "white"
    if vector and n > 2000:
        # PDF and SVG viewers draw hairlines at least one screen pixel wide, which would wash
        # thousands of small urban grids out to white; edges in the fill colour close the
        # seams instead (the PNG keeps its fine white grid lines).
        edges = colors
    coll = PathCollection(shapes.paths[sl], facecolors=colors, edgecolors=edges, linewidths=width, zorder=2)
    coll.set_gid("choropleth")
    ax.add_collection(coll)
    return dict(zip(codes, colors))


def _draw_outlines(ax, cache, data, area_geom, view) -> None:
    below = child_level(data.level)
    if below and data.fill_level != below:
        # Coloured deeper than the children: outline the children so the reader can find them.
        shapes = cache.level(below)
        sl = shapes.span(data.code)
        ax.add_collection(PathCollection(shapes.paths[sl], facecolors="none", edgecolors="#4d4d4d",
                                         linewidths=0.6, zorder=3))
    from geo.export.shapes import to_paths

    ax.add_collection(PathCollection(to_paths(np.array([area_geom])), facecolors="none", edgecolors=AREA_EDGE,
                                     linewidths=1.1, zorder=3.5))


def _label_level(data) -> str:
    return "grid" if data.level == "grid" else child_level(data.level)


def _draw_labels(ax, page, cache, data, layout, units_per_mm, view, fill):
    """Names (and values, when the children are coloured) of the areas that have room.

    Largest areas first; a label is skipped when its box would overlap one already placed or
    stick far out of its area (the area's largest inscribed circle gives the room).
    """
    level = _label_level(data)
    shapes = cache.level(level)
    sl = shapes.span(data.code)
    codes = shapes.codes[sl]
    xy, radius = shapes.anchors
    xy, radius, areas = xy[sl], radius[sl], shapes.areas[sl]
    labels = data.labels.set_index("code").reindex(codes)
    names = labels["name"].astype(str).to_numpy()
    values = pd.to_numeric(labels["value"], errors="coerce").to_numpy(dtype=float)
    n = len(codes)
    size = 9.0 if n <= 12 else 7.5 if n <= 40 else 6.5
    with_values = bool(np.isfinite(values).any()) and n <= 80
    boxed = data.fill_level != level
    max_labels = int(220 * layout.scale ** 2)
    placed: list[tuple[float, float, float, float]] = []
    drawn = []
    em = size * layout.scale * PT_TO_MM
    for i in np.argsort(-areas, kind="stable")[: max_labels * 3]:
        cx = (xy[i, 0] - view[0]) / units_per_mm
        cy = (xy[i, 1] - view[1]) / units_per_mm
        r = radius[i] / units_per_mm
        name = names[i]
        options = [name]
        if with_values and np.isfinite(values[i]):
            options.insert(0, f"{name}\n{_value_text(data, codes[i], values[i])}")
        for text in options:
            lines = text.split("\n")
            w = max(text_width_em(s) for s in lines) * em
            h = len(lines) * em * 1.25
            if w / 2 > 1.5 * r + 0.5 or h / 2 > 1.3 * r + 0.5:
                continue
            box = (cx - w / 2 - 0.6, cy - h / 2 - 0.4, cx + w / 2 + 0.6, cy + h / 2 + 0.4)
            if not _fits(box, placed, layout.map):
                continue
            color = INK
            bbox = None
            if boxed:
                bbox = dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.75)
            elif _luminance(fill.get(codes[i], "#ffffff")) < 0.45:
                color = "white"
            ax.text(xy[i, 0], xy[i, 1], text, fontproperties=page.props(size), color=color, ha="center",
                    va="center", multialignment="center", linespacing=1.1, zorder=5, parse_math=False,
                    bbox=bbox, gid="area-label", clip_on=True)
            placed.append(box)
            drawn.append(codes[i])
            break
        if len(drawn) >= max_labels:
            break
    return drawn, len(drawn) < n, placed


def _fits(box, placed, frame: Box) -> bool:
    if box[0] < 1 or box[1] < 1 or box[2] > frame.w - 1 or box[3] > frame.h - 1:
        return False
    return not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed)


def _draw_context_labels(ax, page, cache, data, layout, units_per_mm, view, placed, limit: int = 40) -> None:
    """Names of the neighbouring areas in grey, where they have room, so a reader can orient."""
    if data.level == "city":
        return
    shapes = cache.level(data.level)
    idx = shapes.in_view(*view)
    own = shapes.span(data.code)
    idx = idx[(idx < own.start) | (idx >= own.stop)]
    xy, radius = shapes.anchors
    em = 6.5 * layout.scale * PT_TO_MM
    count = 0
    for i in idx[np.argsort(-shapes.areas[idx], kind="stable")]:
        cx, cy = (xy[i, 0] - view[0]) / units_per_mm, (xy[i, 1] - view[1]) / units_per_mm
        r = radius[i] / units_per_mm
        name = str(shapes.names[i])
        w, h = text_width_em(name) * em, em * 1.25
        if w / 2 > 1.5 * r:
            continue
        box = (cx - w / 2 - 0.6, cy - h / 2 - 0.4, cx + w / 2 + 0.6, cy + h / 2 + 0.4)
        if not _fits(box, placed, layout.map):
            continue
        ax.text(xy[i, 0], xy[i, 1], name, fontproperties=page.props(6.5), color="#8c8c8c", ha="center",
                va="center", zorder=4, parse_math=False, gid="context-label", clip_on=True)
        placed.append(box)
        count += 1
        if count >= limit:
            break


def _corner_order(area_geom, view, frame: Box, units_per_mm: float, scale: float) -> list[str]:
    """Map corners, emptiest first (the scale bar takes the first, the north arrow the second)."""
    w, h = 80 * scale * units_per_mm, 22 * scale * units_per_mm
    boxes = {
        "lower left": shapely.box(view[0], view[1], view[0] + w, view[1] + h),
        "lower right": shapely.box(view[2] - w, view[1], view[2], view[1] + h),
        "upper right": shapely.box(view[2] - w, view[3] - h, view[2], view[3]),
        "upper left": shapely.box(view[0], view[3] - h, view[0] + w, view[3]),
    }
    cover = {k: shapely.intersection(b, area_geom).area / b.area for k, b in boxes.items()}
    preference = ["lower left", "lower right", "upper right", "upper left"]
    bar = min(preference, key=lambda k: (round(cover[k], 2), preference.index(k)))
    # The arrow goes to the top when it can: readers look for north up there.
    rest = [k for k in ["upper right", "upper left", "lower right", "lower left"] if k != bar]
    arrow = min(rest, key=lambda k: (round(cover[k], 2), rest.index(k)))
    return [bar, arrow]


def _draw_scale_bar(ax, page, T, corner, view, units_per_mm, layout):
    s = layout.scale
    pad = 5 * s
    max_mm = min(layout.map.w * 0.3, 55 * s)
    bar_h = 1.6 * s
    label_room = 7 * s  # the unit after the bar's end
    right = corner.endswith("right")
    top = corner.startswith("upper")
    y_mm = (layout.map.h - pad - 10 * s) if top else (pad + 5.5 * s)
    x_mm = pad + 1.5 * s
    y = view[1] + y_mm * units_per_mm
    x0 = view[0] + x_mm * units_per_mm
    bar = scale_bar(x0, y, max_mm * units_per_mm, MAP_CRS)
    length_mm = (bar.x1 - bar.x0) / units_per_mm
    if right:
        shift = (layout.map.w - 2 * pad - 3 * s - length_mm - label_room) * units_per_mm
        bar = scale_bar(x0 + shift, y, max_mm * units_per_mm, MAP_CRS)
        length_mm = (bar.x1 - bar.x0) / units_per_mm
    u = units_per_mm
    denominator = map_scale_denominator(u, (bar.x0 + bar.x1) / 2, y)
    rounded = int(round(denominator, -int(np.floor(np.log10(denominator))) + 2))
    # White card behind the bar so it reads over any fill.
    ax.add_patch(Rectangle((bar.x0 - 2.5 * s * u, y - 5.2 * s * u), (length_mm + label_room + 3 * s) * u, 12.5 * s * u,
                           facecolor="white", edgecolor="#999999", linewidth=0.4, alpha=0.9, zorder=6))
    ticks = bar.ticks(4)
    for i in range(4):
        ax.add_patch(Rectangle((ticks[i][0], y), ticks[i + 1][0] - ticks[i][0], bar_h * u,
                               facecolor=INK if i % 2 == 0 else "white", edgecolor=INK, linewidth=0.5, zorder=7))
    outline = Rectangle((bar.x0, y), bar.x1 - bar.x0, bar_h * u, facecolor="none", edgecolor=INK,
                        linewidth=0.6, zorder=8)
    outline.set_gid("scalebar")
    ax.add_patch(outline)
    unit = "km" if bar.metres >= 1000 else "m"
    div = 1000 if unit == "km" else 1
    for k in (0, 2, 4):
        x, metres = ticks[k]
        ax.text(x, y - 0.8 * s * u, f"{metres / div:g}", fontproperties=page.props(6.5), ha="center", va="top",
                color=INK, zorder=8, parse_math=False, gid="scalebar-end" if k == 4 else None)
    ax.text(bar.x1 + 1.5 * s * u, y + bar_h / 2 * u, unit, fontproperties=page.props(6.5), ha="left",
            va="center", color=INK, zorder=8, parse_math=False, gid="scalebar-unit")
    ax.text(bar.x0, y + (bar_h + 1.0 * s) * u, T["scale"].format(n=f"{rounded:,}"), fontproperties=page.props(6.5),
            ha="left", va="bottom", color=GREY, zorder=8, parse_math=False)
    return bar


def _draw_north_arrow(ax, page, T, corner, view, units_per_mm, layout) -> float:
    s = layout.scale
    u = units_per_mm
    pad = 6 * s
    cx_mm = (layout.map.w - pad - 4 * s) if corner.endswith("right") else (pad + 4 * s)
    base_mm = (layout.map.h - pad - 15 * s) if corner.startswith("upper") else (pad + 3 * s)
    cx, cy = view[0] + cx_mm * u, view[1] + base_mm * u
    angle = true_north_angle((view[0] + view[2]) / 2, (view[1] + view[3]) / 2)
    rot = Affine2D().rotate_deg(angle)
    hgt, half = 10 * s, 3.2 * s
    pts = {"tip": (0, hgt), "left": (-half, 0), "notch": (0, hgt * 0.3), "right": (half, 0)}
    tr = {k: rot.transform_point(v) for k, v in pts.items()}

    def at(p):
        return (cx + p[0] * u, cy + p[1] * u)

    ax.add_patch(MplPolygon([at(tr["tip"]), at(tr["left"]), at(tr["notch"])], closed=True, facecolor=INK,
                            edgecolor=INK, linewidth=0.6, zorder=8, gid="north-arrow"))
    ax.add_patch(MplPolygon([at(tr["tip"]), at(tr["notch"]), at(tr["right"])], closed=True, facecolor="white",
                            edgecolor=INK, linewidth=0.6, zorder=8))
    letter = rot.transform_point((0, hgt + 1.2 * s))
    ax.text(*at(letter), T["north"], fontproperties=page.props(9), ha="center", va="bottom", color=INK,
            zorder=8, parse_math=False, gid="north-label")
    return angle


def _draw_title(page, layout, T, title, data, unit, options) -> None:
    box = layout.title
    s = layout.scale
    page.text(box.x, box.y + box.h, title, 17, va="top", ha="left", gid="title")
    days = (data.end - data.start).days + 1
    subtitle = T["subtitle"].format(start=_date(data.start, options.lang), end=_date(data.end, options.lang),
                                    days=days, level=T["levels"][data.fill_level], unit=unit)
    page.text(box.x, box.y + 2.2 * s, subtitle, 9, va="bottom", ha="left", color="#333333", gid="subtitle")
    page.text(box.x + box.w, box.y + box.h - 1 * s, T["code"].format(code=data.code), 7.5, va="top", ha="right",
              color=GREY)
    page.line(box.x, box.y, box.x + box.w, box.y, color="#333333", linewidth=0.8)


def _draw_panel(page, fig, layout, T, cache, data, unit, metric_name, options, area_geom, note) -> None:
    panel = layout.panel
    s = layout.scale
    show_locator = data.level != "city"
    if layout.orientation == "portrait":
        parts = panel.split([0.40, 0.32, 0.28] if show_locator else [0.5, 0.5], gap=4 * s)
    else:
        # Stacked: legend and figures take what they need, the locator map the rest.
        extra_rows = bool(data.hidden) + bool(data.values["value"].isna().any())  # "*" and "no data"
        legend_h = (12.5 + 5.4 * (len(data.classes.bounds) + extra_rows)) * s
        stats_h = 28.0 * s
        parts = panel.split([legend_h, stats_h, max(panel.h - legend_h - stats_h - 8 * s, 1.0)],
                            vertical=True, gap=4 * s)
    _draw_legend(page, parts[0], T, data, unit, metric_name, options, s)
    _draw_stats(page, parts[1], T, data, unit, options, s, note)
    if show_locator:
        _draw_locator(fig, page, parts[2], T, cache, area_geom, layout)


def _draw_legend(page, box: Box, T, data, unit, metric_name, options, s) -> None:
    classes = data.classes
    top = box.y + box.h
    page.text(box.x, top, T["legend"].format(metric=metric_name, unit=unit), 9.5, va="top", gid="legend-title")
    method = (METHODS.get(classes.method) or classes.names)[0 if options.lang == "zh" else 1]  # names: a change map
    page.text(box.x, top - 5.2 * s, T["method"].format(method=method, k=len(classes.bounds)), 7, va="top",
              color=GREY, gid="legend-method")
    labels = classes.labels()
    colors = list(classes.colors)
    if data.hidden:
        labels, colors = labels + [T["hidden"]], colors + [HIDDEN_FILL]
    if data.values["value"].isna().any():
        labels, colors = labels + [T["no_data"]], colors + [NO_DATA_COLOR]
    rows_top = top - 10.5 * s
    step = min(5.4 * s, (rows_top - box.y) / max(len(labels), 1))
    sw_w, sw_h = 8 * s, min(3.8 * s, step * 0.8)
    for i, (color, label) in enumerate(zip(colors, labels)):
        y = rows_top - (i + 1) * step + (step - sw_h) / 2
        page.rect(box.x, y, sw_w, sw_h, facecolor=color, edgecolor="#777777", linewidth=0.4, gid="legend-swatch")
        page.text(box.x + sw_w + 2.5 * s, y + sw_h / 2, label, 8, va="center", gid="legend-label")


def _draw_stats(page, box: Box, T, data, unit, options, s, note) -> None:
    days = (data.end - data.start).days + 1
    level_name = T["levels"][data.fill_level]
    top = box.y + box.h
    total = data.total_text or _fmt_int(data.total)  # suppressed exports may hide it
    page.text(box.x, top, T["total"].format(total=total, unit=unit), 10.5, va="top", gid="stat-total")
    lines = [T["daily"].format(value=data.total_text or _fmt_int(round(data.total / days)), unit=unit),
             T["count"].format(level=level_name, n=_fmt_int(len(data.values)))]
    # Under suppression the highest area is not named: were it hidden ("*"), naming it would
    # tell that its count is above every printed one.
    valued = data.values["value"].dropna()  # a change map may have areas without a value
    if len(valued) > 1 and data.printed is None:
        best = data.values.loc[valued.idxmax()]
        lines.append(T["max"].format(name=best["name"], value=_value_text(data, best["code"], best["value"])))
    for i, line in enumerate(lines):
        page.text(box.x, top - (7 + 4.6 * i) * s, line, 8, va="top", color="#333333")
    note = "\n".join(x for x in (note, data.suppression_note) if x)
    if note:
        page.text(box.x, box.y, note, 6.5, va="bottom", color=GREY)


def _draw_locator(fig, page, box: Box, T, cache, area_geom, layout) -> None:
    """A small map of the whole city with the area in red (drawn in page mm, no extra axes)."""
    s = layout.scale
    page.text(box.x, box.y + box.h, T["location"], 8, va="top", color="#333333")
    inner = Box(box.x, box.y, box.w, box.h - 5 * s)
    minx, miny, maxx, maxy = cache.city().bounds
    per_mm = max((maxx - minx) / inner.w, (maxy - miny) / inner.h)
    # Map units -> page mm (city centred in the box, not stretched) -> figure.
    to_page = (Affine2D().translate(-(minx + maxx) / 2, -(miny + maxy) / 2).scale(1 / per_mm)
               .translate(inner.x + inner.w / 2, inner.y + inner.h / 2) + page.mm)
    from geo.export.shapes import to_paths

    fig.add_artist(PathCollection(cache.level("district").paths, facecolors="#e3e3e3", edgecolors="white",
                                  linewidths=0.4, transform=to_page, gid="locator"))
    fig.add_artist(PathCollection(to_paths(np.array([area_geom])), facecolors="#bd0026", edgecolors="#bd0026",
                                  linewidths=0.6, transform=to_page))
    if area_geom.area / ((maxx - minx) * (maxy - miny)) < 0.002:
        # A village or grid is a dot at city scale: ring it so it can be found.
        c = area_geom.centroid
        x, y = to_page.transform((c.x, c.y))
        fig.add_artist(Circle((x, y), radius=2.2 * s * fig.dpi / MM_PER_INCH, transform=None,
                              facecolor="none", edgecolor="#bd0026", linewidth=1.0))


def _draw_footer(page, layout, T, data) -> None:
    box = layout.footer
    s = layout.scale
    built = data.counts_built_at
    if built:
        try:
            built = dt.datetime.fromisoformat(built).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            pass
    source = data.source or T["default_source"]
    now = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page.line(box.x, box.y + box.h, box.x + box.w, box.y + box.h, color="#999999", linewidth=0.4)
    line1 = T["source"].format(source=source) + "　　" + T["data_time"].format(time=built or T["unknown"])
    line2 = T["crs"] + "　　" + T["made"].format(time=now)
    page.text(box.x, box.y + box.h - 1.2 * s, line1, 6.5, va="top", color="#444444", gid="footer-source")
    page.text(box.x, box.y, line2, 6.5, va="bottom", color="#444444", gid="footer-crs")


def save_figure(fig: Figure, fileobj, options, title: str = "", font_path: str | None = None) -> None:
    """Write ``fig`` as PNG (with its dpi recorded, so word processors place it at paper size), PDF or SVG.

    An SVG carries the glyphs it uses as an embedded web font (``font_path`` subset), so a
    browser without any Chinese font still shows the names in Noto Sans CJK.
    """
    meta_title = title or "Grid Atlas"
    if options.fmt == "png":
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from PIL import Image, PngImagePlugin

        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        rgba = canvas.buffer_rgba()
        w, h = canvas.get_width_height(physical=True)
        # RGB, not RGBA: a page has no transparency, and a quarter less data to compress.
        image = Image.frombuffer("RGBA", (w, h), rgba, "raw", "RGBA", 0, 1).convert("RGB")
        info = PngImagePlugin.PngInfo()
        info.add_itxt("Title", meta_title)
        info.add_text("Software", "Grid Atlas")
        # zlib level 3: a third of level 6's time for files about 8 % larger.
        image.save(fileobj, format="png", dpi=(options.dpi, options.dpi), pnginfo=info, compress_level=3)
    elif options.fmt == "pdf":
        fig.savefig(fileobj, format="pdf", dpi=options.dpi,
                    metadata={"Title": meta_title, "Creator": "Grid Atlas", "Subject": meta_title})
    else:
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", dpi=options.dpi, metadata={"Title": meta_title, "Creator": "Grid Atlas"})
        data = buf.getvalue()
        if font_path:
            chars = "".join({c for t in fig.findobj(Text) for c in t.get_text()})
            data = embed_svg_font(data, font_path, chars)
        fileobj.write(data)


def embed_svg_font(svg: bytes, font_path: str, chars: str) -> bytes:
    """``svg`` with an @font-face rule holding the glyphs of ``chars`` from ``font_path``."""
    import base64
    import re

    from fontTools import subset

    options = subset.Options()
    options.layout_features = []
    options.name_IDs = [1, 2, 4, 6]
    font = subset.load_font(font_path, options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=chars)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    b64 = base64.b64encode(out.getvalue()).decode("ascii")
    style = (f'<defs><style type="text/css">@font-face {{ font-family: "{fonts.FAMILY}"; '
             f'src: url(data:font/ttf;base64,{b64}) format("truetype"); }}</style></defs>')
    start = re.search(rb"<svg\b[^>]*>", svg)
    return svg[: start.end()] + style.encode("ascii") + svg[start.end():] if start else svg
