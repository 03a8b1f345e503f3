"""JSON endpoints: GeoJSON FeatureCollections and counts for the map, the wall, QGIS and scripts.

Every route parses its arguments, calls one ``geo`` function and returns its result as JSON.
GeoJSON is RFC 7946 (longitude, latitude in WGS84) unless ``crs=gcj02`` is asked for (Amap-style
tiles). Errors come back as ``{"error": message, "status": code}``, in the request's language.
"""

from __future__ import annotations

from flask import Blueprint, request

from geo.atlas.hierarchy import CITY_CODE
from geo.atlas.metrics import METRICS, PERIOD_END, PERIOD_START
from geo.query import mapdata

from . import service
from .auth import area_scoped, city_wide, current_scope, listing, signed_in
from .caching import json_response, revalidated
from .params import check_lang, date_arg, int_arg, map_args, text_arg

bp = Blueprint("api", __name__, url_prefix="/api")
GEOJSON = "application/geo+json"


def _crs() -> str:
    return text_arg(request.args, "crs") or "wgs84"


def _period():
    check_lang(request.args)
    return date_arg(request.args, "from", PERIOD_START), date_arg(request.args, "to", PERIOD_END)


@bp.get("/status")
@city_wide()
def status():
    """What is loaded: areas per level, checkpoints, store version and city totals."""
    return json_response(service().status())


@bp.get("/metrics")
@signed_in
@revalidated
def metrics():
    """The eight metrics (names and units in both languages), the data period and the methods."""
    return json_response({
        "metrics": [mapdata.metric_dict(m) for m in METRICS.values()],
        "period": {"from": PERIOD_START.isoformat(), "to": PERIOD_END.isoformat()},
        "methods": list(mapdata.METHODS),
        "levels": ["district", "town", "village", "grid"],
        "zoom_buckets": list(mapdata.ZOOM_DETAIL),
    })


@bp.get("/search")
@listing
@revalidated
def search():
    """Areas by Chinese name, part of a name, or code prefix: ``?q=云龙&limit=10``."""
    check_lang(request.args)
    q = text_arg(request.args, "q")
    limit = int_arg(request.args, "limit", 10)
    return json_response({"q": q, "results": mapdata.search_areas(service().atlas, q, limit,
                                                                             within=current_scope().search_within)})


@bp.get("/areas/<code>/summary")
@area_scoped()
@revalidated
def summary(code: str):
    """Every metric over ``from``..``to`` for one area, with its households, population, grid
    leaders and grid workers."""
    start, end = _period()
    return json_response(mapdata.area_summary(service(), code, start, end))


@bp.get("/areas/<code>/values")
@area_scoped()
@revalidated
def values(code: str):
    """Counts without geometry: the value and class of each area of ``level`` inside ``code``."""
    a = map_args(request.args)
    return json_response(mapdata.values_table(service(), code, a.metric, a.start, a.end, a.method, a.k, a.level))


@bp.get("/areas/<code>/series")
@area_scoped()
@revalidated
def series(code: str):
    """Daily totals of ``metric`` inside one area over ``from``..``to``."""
    a = map_args(request.args)
    return json_response(mapdata.daily_values(service(), code, a.metric, a.start, a.end))


@bp.get("/areas/<code>/children.geojson")
@area_scoped()
@revalidated
def children(code: str):
    """The choropleth: the areas of ``level`` (default: the children) inside ``code``, with
    ``value``, ``class`` and ``color`` per feature and the legend as a foreign member;
    ``format=packed``: the same in columns with packed coordinates (the map of many areas)."""
    a = map_args(request.args)
    zoom = int_arg(request.args, "zoom", None)
    fmt = text_arg(request.args, "format") or "geojson"
    return json_response(mapdata.choropleth(service(), code, a.metric, a.start, a.end, a.method, a.k,
                                            a.level, zoom, _crs(), fmt),
                         GEOJSON if fmt == "geojson" else "application/json")


@bp.get("/areas/<code>/outline.geojson")
@area_scoped()
@revalidated
def area_outline(code: str):
    """One area as a GeoJSON Feature."""
    check_lang(request.args)
    zoom = int_arg(request.args, "zoom", None)
    return json_response(mapdata.area_feature(service().atlas, code, zoom, _crs()), GEOJSON)


@bp.get("/areas/<code>/checkpoints.geojson")
@area_scoped()
@revalidated
def checkpoints(code: str):
    """Checkpoints inside ``code`` with their checks over ``from``..``to`` (the heat weights)."""
    start, end = _period()
    return json_response(mapdata.checkpoint_weights(service(), code, start, end, _crs()), GEOJSON)


@bp.get("/outlines/<level>.geojson")
@listing
@revalidated
def outlines(level: str):
    """Outlines of every area of ``level`` (district, town, village or grid) in the city, or
    only inside the area ``within``."""
    check_lang(request.args)
    zoom = int_arg(request.args, "zoom", None)
    within = text_arg(request.args, "within") or CITY_CODE
    scope = current_scope()
    scope.listing_root(within)  # 403 for an area outside the jurisdiction (its ancestors list the user's own)
    return json_response(scope.filter_collection(mapdata.outlines(service().atlas, level, zoom, _crs(), within)),
                         GEOJSON)
