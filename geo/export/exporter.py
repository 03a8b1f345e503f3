"""Print-ready map exports (PNG, PDF, SVG) of any area, metric and period.

The values and classes come from the interactive map's own query (``geo.mapdata.classed_values``:
``AtlasService.child_values`` for the children, the same cube rolled up for deeper levels,
classed by ``geo.classify.classify`` with the same defaults), so a printed legend and the screen
agree. The web route, the CLI and the batch exporter all call :func:`parse_options` then
:func:`render_export` (or :func:`export_file` / :func:`batch_export`). Drawing lives in
``export_figure`` (page furniture placed by ``export_layout``, shapes from ``export_shapes``,
scale bar from ``scalebar``, font from ``fonts``).

Typical use::

    service = AtlasService(get_settings())
    opts = export_options("330212", "pdf", metric="visits", paper="a3")
    result = render_export(service, opts)      # .data (bytes), .mimetype, .filename
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import matplotlib
import pandas as pd

from geo.atlas.hierarchy import LEVELS, child_level, level_of
from geo.atlas.metrics import PERIOD_END, PERIOD_START, check_period, get_metric, parse_date
from geo.errors import BadParameter
from geo.export.layout import ORIENTATIONS, PAPERS
from geo.query.classify import DEFAULT_K, DEFAULT_METHOD, Classes, classify

log = logging.getLogger(__name__)

FORMATS = {"png": "image/png", "pdf": "application/pdf", "svg": "image/svg+xml"}
DPIS = (150, 300)
LANGS = ("zh", "en")
LANG_ALIASES = {"zh-CN": "zh", "zh_CN": "zh", "zh-cn": "zh", "zh_cn": "zh"}
DEFAULT_METRIC = "visits"

# Text stays text in vector files: TrueType embedding in PDF (Type 3 would turn CJK into
# drawings) and <text> elements in SVG. These rcParams only affect vector text output.
matplotlib.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"})


@dataclass(frozen=True)
class ExportOptions:
    """What to export. ``orientation`` None picks the one that shows the area larger;
    ``level`` None colours the children (as the interactive map does)."""

    code: str
    fmt: str = "png"
    metric: str = DEFAULT_METRIC
    start: dt.date = PERIOD_START
    end: dt.date = PERIOD_END
    paper: str = "a4"
    orientation: str | None = None
    dpi: int = 150
    level: str | None = None
    method: str = DEFAULT_METHOD
    k: int = DEFAULT_K
    lang: str = "zh"
    # Small-count suppression (geo.scope.suppress_counts): counts from 1 to one below the
    # threshold print as "<5", and a sibling is hidden too ("*") where the total would give
    # one away; the legend then has one "<5" class (geo.classify.classify_suppressed).
    suppress: bool = False
    # Two-period change: with ``compare`` = (a_from, a_to) the map shows the change
    # from that period to start..end, absolute or in per cent (geo.timeseries.change).
    compare: tuple[dt.date, dt.date] | None = None
    basis: str = "absolute"


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise BadParameter(f"{name} {value!r} is not allowed; allowed: {shown}")


def export_options(code: str, fmt: str = "png", *, metric: str = DEFAULT_METRIC, start=None, end=None,
                   paper: str = "a4", orientation: str | None = None, dpi: int = 150, level: str | None = None,
                   method: str = DEFAULT_METHOD, k: int = DEFAULT_K, lang: str = "zh",
                   suppress: bool = False, compare: tuple[dt.date, dt.date] | None = None,
                   basis: str = "absolute") -> ExportOptions:
    """Validated export options; BadParameter names the bad value and what is allowed.

    The area itself is checked when rendering (an unknown area is AreaNotFound, a 404).
    """
    _choice("format", fmt, tuple(FORMATS))
    get_metric(metric)
    start = start or PERIOD_START
    end = end or PERIOD_END
    check_period(start, end)
    _choice("paper", paper, tuple(PAPERS))
    if orientation is not None:
        _choice("orientation", orientation, ORIENTATIONS)
    _choice("dpi", dpi, DPIS)
    # The classification is checked by classify itself, so the message is the map's own
    # (and the web layer words it in the user's language); the level needs the area and is
    # checked by the map's query when rendering.
    classify((), method=method, k=k)
    if lang not in LANGS:
        raise BadParameter(f"unknown language {lang!r}; allowed: {', '.join(LANGS)}")
    if compare is not None and suppress:
        raise BadParameter("small-count suppression applies to counts, not to a change between two periods; "
                           "export each period with suppress=1 instead")
    if compare is not None:
        from geo.query.timeseries import CHANGE_BASES, _check_period

        _check_period(*compare, what="period a")
        _choice("basis", basis, CHANGE_BASES)
    return ExportOptions(str(code), fmt, metric, start, end, paper, orientation, int(dpi), level, method, int(k), lang,
                         bool(suppress), compare, basis)


def _int_param(args: Mapping[str, str], name: str, default: int) -> int:
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise BadParameter(f"{name} {raw!r} is not a whole number") from None


def parse_options(code: str, fmt: str, args: Mapping[str, str]) -> ExportOptions:
    """Export options from text parameters, as in a URL query or on the command line.

    Keys: ``metric``, ``from``, ``to``, ``paper``, ``orientation`` (or ``auto``), ``dpi``,
    ``level``, ``method``, ``k``, ``lang``. Missing or empty ones take the map's defaults;
    keys the exporter does not know are ignored, so a map URL's whole query can be passed on.
    """
    def text(name, default=None):
        value = args.get(name)
        return default if value in (None, "") else str(value).strip()

    start = text("from")
    end = text("to")
    orientation = text("orientation")
    # The map's change mode passes a_from..a_to (before) and b_from..b_to (after).
    a_from, a_to = text("a_from"), text("a_to")
    compare = None
    if a_from or a_to or text("b_from") or text("b_to"):
        from geo.query.timeseries import default_change_periods

        (da0, da1), (db0, db1) = default_change_periods()
        compare = (parse_date(a_from, name="a_from") if a_from else da0, parse_date(a_to, name="a_to") if a_to else da1)
        start = start if text("b_from") is None else text("b_from")
        end = end if text("b_to") is None else text("b_to")
        start, end = start or db0.isoformat(), end or db1.isoformat()
    return export_options(
        code, (fmt or "").lower(),
        metric=text("metric", DEFAULT_METRIC),
        start=parse_date(start, name="from") if start else None,
        end=parse_date(end, name="to") if end else None,
        paper=text("paper", "a4").lower(),
        orientation=None if orientation in (None, "auto") else orientation.lower(),
        dpi=_int_param(args, "dpi", 150),
        level=text("level"),
        method=text("method", DEFAULT_METHOD),
        k=_int_param(args, "k", DEFAULT_K),
        lang=LANG_ALIASES.get(text("lang", "zh"), text("lang", "zh")),
        suppress=text("suppress", "0").lower() in ("1", "true", "yes", "on"),
        compare=compare,
        basis=text("basis", "absolute"),
    )


@dataclass
class MapData:
    """Everything an export shows, gathered from the core queries before any drawing."""

    code: str
    level: str
    name: str
    lineage: list[dict]
    metric: str
    start: dt.date
    end: dt.date
    fill_level: str
    values: pd.DataFrame  # code, name, value: the coloured areas
    labels: pd.DataFrame  # code, name, value (None when not shown): the labelled areas
    classes: Classes
    total: int
    counts_built_at: str | None
    source: str = ""
    printed: dict | None = None  # code -> printed count, when small counts are suppressed
    total_text: str | None = None  # the total as printed, when suppression hides it
    suppression_note: str = ""
    hidden: frozenset = frozenset()  # coloured areas hidden by secondary suppression ("*")


def map_data(service, options: ExportOptions) -> MapData:
    """Query values, classes, totals and names for ``options`` (raises AreaNotFound, BadParameter)."""
    from geo.query.mapdata import classed_values

    atlas = service.atlas
    area = atlas.get(options.code)
    level = area["level"]
    # The interactive map's own query: same values, same classes, same colours.
    cv = classed_values(service, options.code, options.metric, options.start, options.end,
                        options.method, options.k, options.level)
    values = cv.frame[["code", "name", "value"]]
    classes = cv.classes
    if options.compare is not None:
        values, classes = _change_values(service, options)
    if level == "grid" or cv.level == child_level(level):
        labels = values.copy()
    else:
        # Hundreds of grids cannot all carry a name: the direct children are named instead.
        labels = service.child_values(options.code, options.metric, options.start, options.end)[["code", "name", "value"]]
        labels["value"] = None
    data = MapData(
        code=options.code, level=level, name=str(area["name"]), lineage=atlas.lineage(options.code),
        metric=options.metric, start=options.start, end=options.end, fill_level=cv.level,
        values=values.reset_index(drop=True), labels=labels.reset_index(drop=True), classes=classes,
        total=service.area_total(options.code, options.metric, options.start, options.end),
        counts_built_at=service.store.get_meta("counts_built_at"),
        source=getattr(service.settings, "export_source", "") or "",
    )
    if options.suppress:
        data = suppressed(data, service.settings.small_count_threshold, options.lang, options.method, options.k)
    return data


def _change_values(service, options: ExportOptions):
    """The change from ``options.compare`` to start..end per area, and its diverging classes
    (the map's change mode: same numbers, same colours)."""
    from dataclasses import replace as _replace

    from geo.query.timeseries import change, diverging_classes

    ch = change(service, options.code, options.metric, options.compare, (options.start, options.end),
                options.basis, options.level)
    values = pd.DataFrame([{"code": r["code"], "name": r["name"], "value": r["value"]} for r in ch["values"]])
    a = f"{ch['a']['from']} – {ch['a']['to']}"
    what = ("百分比" if options.basis == "percent" else "", "in per cent" if options.basis == "percent" else "absolute")
    classes = _replace(diverging_classes([r["value"] for r in ch["values"]]), suffix="%" if options.basis == "percent" else "",
                       names=(f"较 {a} 的{what[0]}变化（蓝减红增）", f"Change from {a}, {what[1]} (blue fewer, red more)"))
    return values, classes


def suppressed(data: MapData, threshold: int, lang: str = "zh", method: str = DEFAULT_METHOD,
               k: int = DEFAULT_K) -> MapData:
    """``data`` with small-count suppression: each printed count (labels) and the total, the
    footnote that explains the marks, the areas hidden by secondary suppression, and classes
    whose legend and colours tell nothing finer than "<5" (the small counts share one class,
    no limit lies below the threshold, and hidden "*" areas are drawn apart, without a class).

    The group suppressed together is the coloured areas (the labelled children are the same
    areas when they carry values) with the area's total.
    """
    from geo.access.scope import is_small, small_label, suppress_counts
    from geo.query.classify import classify_suppressed

    group = data.labels if data.labels["value"].notna().any() else data.values
    result = suppress_counts(dict(zip(group["code"], group["value"].astype(int))), threshold, data.total)
    printed = dict(result.labels)
    for code, value in zip(data.values["code"], data.values["value"]):  # coloured, not labelled
        printed.setdefault(code, small_label(threshold) if is_small(value, threshold) else f"{int(value):,}")
    hidden = frozenset(result.secondary) & frozenset(data.values["code"])
    shown = data.values.loc[~data.values["code"].isin(hidden), "value"]
    classes = classify_suppressed(shown.to_numpy(), threshold, method, k)
    total_text = None if result.total_label == f"{data.total:,}" else result.total_label
    return replace(data, printed=printed, total_text=total_text, suppression_note=result.note(lang),
                   hidden=hidden, classes=classes)


@dataclass
class ExportResult:
    """A rendered export: the file's bytes, its media type and a suggested file name."""

    data: bytes
    mimetype: str
    filename: str
    options: ExportOptions
    info: dict


def safe_name(text: str) -> str:
    """``text`` with anything but letters, digits (any script), '-' and '_' turned into '_'."""
    return re.sub(r"[^\w\-]+", "_", str(text), flags=re.UNICODE).strip("_") or "area"


def suggested_filename(data: MapData, options: ExportOptions) -> str:
    """E.g. ``330212_鄞州区_visits_20200124-20200331.pdf``."""
    return (f"{data.code}_{safe_name(data.name)}_{data.metric}_"
            f"{data.start:%Y%m%d}-{data.end:%Y%m%d}.{options.fmt}")


def build_figure(service, options: ExportOptions):
    """The export as a matplotlib Figure, plus what was drawn (``info``: classes, scale bar,
    layout, font file...). Tests and the renderer share it."""
    from geo.export.figure import draw_map

    data = map_data(service, options)
    fig, info = draw_map(service, data, options)
    info["data"] = data
    return fig, info


def render_export(service, options: ExportOptions) -> ExportResult:
    """Render ``options`` to bytes in its format."""
    from geo.export.figure import save_figure

    fig, info = build_figure(service, options)
    buf = io.BytesIO()
    save_figure(fig, buf, options, title=info["title"], font_path=info["font_path"])
    data = info["data"]
    resolved = replace(options, orientation=info["layout"].orientation, level=data.fill_level)
    return ExportResult(buf.getvalue(), FORMATS[options.fmt], suggested_filename(data, options), resolved, info)


def export_file(service, options: ExportOptions, path) -> Path:
    """Render ``options`` into the file ``path`` (folders are created); returns the path."""
    path = Path(path)
    result = render_export(service, options)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(result.data)
    return path


def format_from_path(path, fmt: str | None) -> str:
    """The format to write: ``fmt`` if given, else the file's suffix (png, pdf or svg)."""
    if fmt:
        return fmt.lower()
    suffix = Path(str(path)).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise BadParameter(f"cannot tell the format of {str(path)!r}; give --format ({', '.join(FORMATS)})")
    return suffix


# --- batch -----------------------------------------------------------------------------------

_worker_service = None


def _worker_init(service_or_settings) -> None:
    global _worker_service
    if hasattr(service_or_settings, "atlas"):
        _worker_service = service_or_settings
    else:  # spawned (not forked) workers get the settings and load their own service
        from geo.query.service import AtlasService

        _worker_service = AtlasService(service_or_settings)


def _worker_export(task) -> str:
    options, path = task
    return str(export_file(_worker_service, options, path))


def batch_targets(service, level: str, within: str) -> pd.DataFrame:
    """The areas of ``level`` inside ``within`` (code, name), in code order."""
    atlas = service.atlas
    _choice("level", level, LEVELS[1:])
    within_level = atlas.get(within)["level"]
    if LEVELS.index(level) <= LEVELS.index(within_level):
        raise BadParameter(f"level {level!r} is not below {within_level} {within}; "
                           f"allowed: {', '.join(LEVELS[LEVELS.index(within_level) + 1:])}")
    layer = atlas.layers[level]
    if level_of(within) != "city":
        layer = layer[layer["code"].str.startswith(within)]
    return layer[["code", "name"]].reset_index(drop=True)


def batch_export(service, level: str, within: str, out_dir, template: ExportOptions, *,
                 workers: int | None = None, progress: bool = True) -> list[Path]:
    """One file per area of ``level`` inside ``within`` into ``out_dir``, named
    ``<code>_<name>_<metric>.<fmt>``; options other than the area come from ``template``.

    Runs in ``workers`` processes (default: up to 2, this machine's cores) forked after the
    atlas, counts, shapes and font are loaded, so each worker starts warm.
    """
    from tqdm import tqdm

    targets = batch_targets(service, level, within)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(replace(template, code=code), out_dir / f"{code}_{safe_name(name)}_{template.metric}.{template.fmt}")
             for code, name in zip(targets["code"], targets["name"])]
    workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(tasks) or 1))
    bar = tqdm(total=len(tasks), unit="map", desc=f"export {level}", disable=not progress)
    done: list[Path] = []
    try:
        if workers == 1 or len(tasks) < 2:
            _worker_init(service)
            for task in tasks:
                done.append(Path(_worker_export(task)))
                bar.update()
        else:
            done = _run_pool(service, tasks, workers, bar)
    finally:
        bar.close()
    return sorted(done)


def _run_pool(service, tasks, workers: int, bar) -> list[Path]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from geo.export.figure import warm_up

    warm_up(service, LEVELS[1:])
    # fork: the workers inherit the loaded atlas, counts, shapes and font (no reload per worker).
    fork = "fork" in mp.get_all_start_methods()
    ctx = mp.get_context("fork" if fork else "spawn")
    done = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(service if fork else service.settings,)) as pool:
        futures = [pool.submit(_worker_export, task) for task in tasks]
        for future in as_completed(futures):
            done.append(Path(future.result()))
            bar.update()
    return done


__all__ = ["ExportOptions", "ExportResult", "FORMATS", "DPIS", "MapData", "batch_export",
           "batch_targets", "build_figure", "export_file", "export_options", "format_from_path", "map_data",
           "parse_options", "render_export", "safe_name"]
