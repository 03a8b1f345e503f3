"""The pages: the city map, any area's map, and search.

A page route parses the query string, calls ``geo.mapdata.map_view`` and renders the page
with its Folium map. The geometry is not in the page: the map's layers fetch it from the JSON
endpoints (``web/api.py``), which keeps every page far below 300 KB.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from geo.atlas.hierarchy import CITY_CODE
from geo.atlas.metrics import METRICS, PERIOD_END, PERIOD_START
from geo.query import mapdata
from geo.query.classify import METHODS

from . import service
from .auth import area_scoped, current_scope, listing, public
from .caching import revalidated, static_url
from .i18n import LANGUAGES, js_labels, metric_name, metric_unit, select_locale
from .layers import PageState, build_map, render_parts
from .params import MapArgs, map_args, text_arg

bp = Blueprint("pages", __name__)


@bp.get("/")
@listing
@revalidated
def city():
    """The whole city (宁波市) with its districts; a district or town official lands on the map
    of their own area instead."""
    scope = current_scope()
    if not scope.is_city:
        return redirect(url_for("pages.area_map", code=scope.root, **request.args.to_dict()))
    return _render_area(CITY_CODE)


@bp.get("/map/<code>")
@area_scoped()
@revalidated
def area_map(code: str):
    """The map of any district, town, village or grid."""
    return _render_area(code)


@bp.get("/search")
@listing
def search():
    """Search by name, part of a name or code; go straight to a clear hit, else list the hits."""
    args = map_args(request.args)
    q = text_arg(request.args, "q")
    if q is None:
        return redirect(url_for("pages.city", **args.query()))
    results = mapdata.search_areas(service().atlas, q, limit=50, within=current_scope().search_within)
    exact = [r for r in results if q in (r["name"], r["code"])]
    if len(results) == 1 or len(exact) == 1:
        target = (exact or results)[0]["code"]
        return redirect(url_for("pages.area_map", code=target, **args.query(level=None)))
    return render_template("search.html", q=q, results=results, query=args.query(level=None))


@bp.get("/favicon.ico")
@public
def favicon():
    """Browsers ask for /favicon.ico by themselves."""
    return redirect(static_url("favicon.svg"), code=301)


@bp.app_context_processor
def _url_helpers() -> dict:
    return {"here": here, "area_url": area_url}


def here(changes: dict) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    args = request.args.to_dict()
    args.update(changes)
    return f"{request.path}?{urlencode({k: v for k, v in args.items() if v not in (None, '')})}"


def area_url(code: str, level: str, query: dict) -> str:
    """The page of area ``code`` (of ``level``) in the same state; ``level=`` is kept only where
    that area can show it."""
    query = dict(query)
    if query.get("level") not in mapdata.display_levels(level):
        query.pop("level", None)
    if code == CITY_CODE:
        return url_for("pages.city", **query)
    return url_for("pages.area_map", code=code, **query)


def _render_area(code: str):
    args = map_args(request.args)
    settings = service().settings
    crs = settings.tile_crs if settings.tile_url else "wgs84"
    view = mapdata.map_view(service(), code, args.metric, args.start, args.end, args.method, args.k,
                            args.level, crs)
    state = _page_state(args, view)
    parts = render_parts(build_map(view, state, settings))
    return render_template(
        "map.html", view=view, args=args, query=state.query, parts=parts, metrics=METRICS,
        methods=METHODS, period=(PERIOD_START, PERIOD_END), spark=sparkline(view.series),
        presets=_presets(), data_source=settings.export_source,
    )


def _page_state(args: MapArgs, view: mapdata.MapView) -> PageState:
    metric = METRICS[args.metric]
    return PageState(
        query=args.query(),
        lang=LANGUAGES[select_locale()][0],
        unit=metric_unit(metric),
        metric_name=metric_name(metric),
        labels=js_labels(),
        layer_names={
            "choropleth": _("Areas by %(metric)s", metric=metric_name(metric)),
            "heat": _("Checkpoint checks (heat)"),
            "checkpoints": _("Checkpoints"),
            "outlines": _("District and town outlines"),
            "tiles": _("Base map"),
        },
    )


def _presets() -> list[tuple[str, str, str]]:
    """Quick periods for the date picker: (label, from, to)."""
    end = PERIOD_END
    return [
        (_("Whole period"), PERIOD_START.isoformat(), end.isoformat()),
        (_("Last 7 days"), (end - dt.timedelta(days=6)).isoformat(), end.isoformat()),
        (_("Last 30 days"), (end - dt.timedelta(days=29)).isoformat(), end.isoformat()),
        (_("February"), "2020-02-01", "2020-02-29"),
    ]


def sparkline(days: list[dict], width: int = 300, height: int = 56) -> dict:
    """An SVG polyline of a daily series, scaled into width x height (with a 2 px margin)."""
    values = [d["value"] for d in days]
    if not values:
        return {"points": "", "area": "", "max": 0, "width": width, "height": height}
    top = max(values) or 1
    n = max(len(values) - 1, 1)
    pts = [(2 + (width - 4) * i / n, height - 2 - (height - 4) * v / top) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    area = f"2,{height - 2} {line} {width - 2},{height - 2}"
    peak = max(range(len(values)), key=values.__getitem__)
    return {"points": line, "area": area, "max": max(values), "width": width, "height": height,
            "peak_day": days[peak]["date"], "first": days[0]["date"], "last": days[-1]["date"],
            "total": sum(values)}
