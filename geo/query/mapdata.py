"""What a map shows, as plain data: GeoJSON FeatureCollections of areas with values and class
colours, area outlines, checkpoint heat weights, area summaries and search results.

The web map, the command-centre wall and scripts (QGIS) read the same collections, so a colour
means the same value everywhere (classes come from :mod:`geo.classify`).

Geometry is served simplified per zoom level (see :data:`ZOOM_DETAIL`): each level's polygons
are simplified together as a coverage (``shapely.coverage_simplify``), so neighbours keep
sharing their edges and no gaps open between them, and coordinates are rounded to a fraction
of a pixel. Without a zoom the full geometry is returned (for QGIS and scripts). A map of
thousands of areas gets the same choropleth packed in columns with integer coordinates
(:func:`choropleth_packed`), which the browser reads without building an object per area.

Privacy: only counts per area and weights at checkpoint locations leave this
module; household points never do.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely

from geo.atlas.areas import Atlas
from geo.atlas.hierarchy import CITY_CODE, LEVELS, child_level
from geo.atlas.metrics import METRICS, PERIOD_END, PERIOD_START, Metric, check_period, day_index, get_metric
from geo.errors import BadParameter
from geo.query.classify import DEFAULT_K, DEFAULT_METHOD, METHODS, Classes, classify
from geo.query.counts import roll_up
from geo.spatial.chinacrs import wgs84_to_gcj02
from geo.store import Store
from geo.store import counts as count_store

CRS_CHOICES = ("wgs84", "gcj02")
# GeoJSON for GIS tools; "packed" (columns, integer coordinates) for maps of thousands of areas.
CHOROPLETH_FORMATS = ("geojson", "packed")


@dataclass(frozen=True)
class ZoomDetail:
    """How much detail a zoom bucket keeps: simplification tolerance and decimals, in degrees."""

    tolerance: float
    decimals: int


# Map zoom z is served by the smallest bucket >= z. A bucket's tolerance is about half a screen
# pixel at its zoom (at Ningbo's latitude one pixel is 135,700 / 2**z metres) and its rounding
# about a quarter pixel, so the simplification cannot be seen. Zooms above 14 get full detail.
ZOOM_DETAIL: dict[int, ZoomDetail] = {
    8: ZoomDetail(0.0024, 3),
    10: ZoomDetail(0.0006, 4),
    12: ZoomDetail(0.00015, 5),
    14: ZoomDetail(0.00004, 5),
}
FULL_DETAIL = ZoomDetail(0.0, 6)
MAX_ZOOM = 22

# Checkpoint kinds as stored in the atlas.
CHECKPOINT_KINDS = ("community_gate", "road", "transport_hub")


# ---------------------------------------------------------------------------------------------
# Parameter checks (messages name the bad value and what is allowed)
# ---------------------------------------------------------------------------------------------

def zoom_bucket(zoom: int | None) -> int | None:
    """The bucket of ``ZOOM_DETAIL`` that serves map zoom ``zoom`` (None = full detail)."""
    if zoom is None:
        return None
    if isinstance(zoom, bool) or not isinstance(zoom, (int, np.integer)) or not 0 <= zoom <= MAX_ZOOM:
        raise BadParameter(f"zoom {zoom!r} must be a whole number from 0 to {MAX_ZOOM}")
    for bucket in ZOOM_DETAIL:
        if zoom <= bucket:
            return bucket
    return None


def check_crs(crs: str) -> str:
    """Return ``crs`` if it is a coordinate system the map can be served in, else BadParameter."""
    if crs not in CRS_CHOICES:
        raise BadParameter(f"unknown coordinate system {crs!r}; allowed: {', '.join(CRS_CHOICES)}")
    return crs


def display_levels(area_level: str) -> list[str]:
    """The levels whose areas a map of an ``area_level`` area can colour (children first)."""
    if area_level == "grid":
        return ["grid"]
    return list(LEVELS[LEVELS.index(area_level) + 1:])


def display_level(area_level: str, level: str | None) -> str:
    """Resolve the requested level (None = the children) for a map of an ``area_level`` area."""
    allowed = display_levels(area_level)
    if level is None:
        return allowed[0]
    if level not in allowed:
        raise BadParameter(f"level {level!r} cannot be shown inside a {area_level}; allowed: {', '.join(allowed)}")
    return level


def resolve_period(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """Fill a missing start or end with the data period, then check the period."""
    start = start or PERIOD_START
    end = end or PERIOD_END
    check_period(start, end)
    return start, end


def check_search(text: str | None, limit: int) -> str:
    """The search text, stripped, or BadParameter when it is empty or too long."""
    text = (text or "").strip()
    if not text:
        raise BadParameter("search text q is empty")
    if len(text) > 50:
        raise BadParameter(f"search text q has {len(text)} characters; at most 50 are allowed")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 50:
        raise BadParameter(f"limit {limit!r} must be a whole number from 1 to 50")
    return text


# ---------------------------------------------------------------------------------------------
# Geometry per zoom bucket (cached on the atlas: the areas never change while it is loaded)
# ---------------------------------------------------------------------------------------------

_geometry_lock = threading.Lock()


def _cache(atlas: Atlas) -> dict:
    # Stored on the atlas itself, so it lives and dies with the loaded areas.
    return atlas.__dict__.setdefault("_mapdata_cache", {})


def _shift(geoms: np.ndarray, crs: str) -> np.ndarray:
    if crs == "wgs84":
        return geoms

    def to_gcj(coords: np.ndarray) -> np.ndarray:
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, to_gcj)


def _simplify(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    if tolerance <= 0:
        return geoms
    try:
        # Simplifies shared edges once, so neighbours stay glued (no slivers or gaps).
        return shapely.coverage_simplify(geoms, tolerance)
    except (shapely.errors.GEOSException, AttributeError):  # pragma: no cover - old GEOS
        return shapely.simplify(geoms, tolerance, preserve_topology=True)


def _layer_shapes(atlas: Atlas, level: str, zoom: int | None, crs: str) -> tuple[np.ndarray, ZoomDetail]:
    """The shapely geometries of every area of ``level`` as served for ``zoom`` and ``crs``
    (simplified, shifted, rounded, RFC 7946 winding), and the bucket's detail. Cached."""
    if level not in atlas.layers:
        raise BadParameter(f"unknown level {level!r}; allowed: {', '.join(atlas.layers)}")
    bucket = zoom_bucket(zoom)
    check_crs(crs)
    detail = ZOOM_DETAIL.get(bucket, FULL_DETAIL)
    key = ("shapes", level, bucket, crs)
    cache = _cache(atlas)
    if key not in cache:
        with _geometry_lock:
            if key not in cache:
                geoms = _simplify(atlas.layers[level].geometry.to_numpy(), detail.tolerance)
                geoms = _shift(geoms, crs)
                geoms = shapely.transform(geoms, lambda c: np.round(c, detail.decimals))
                # RFC 7946 winding (exteriors counter-clockwise, holes clockwise): the map fills
                # many polygons as one path with the nonzero rule, which needs it for holes.
                cache[key] = shapely.orient_polygons(geoms, exterior_cw=False)
    return cache[key], detail


def layer_geometries(atlas: Atlas, level: str, zoom: int | None = None, crs: str = "wgs84") -> list[dict]:
    """GeoJSON geometry dicts of every area of ``level``, in the layer's (code) order.

    Simplified and rounded for map zoom ``zoom`` (None: full detail) and shifted to GCJ-02
    when ``crs`` is "gcj02". Computed once per (level, zoom bucket, crs) and cached.
    """
    geoms, _ = _layer_shapes(atlas, level, zoom, crs)
    key = ("geometry", level, zoom_bucket(zoom), crs)
    cache = _cache(atlas)
    if key not in cache:
        with _geometry_lock:
            if key not in cache:
                cache[key] = [json.loads(text) for text in shapely.to_geojson(geoms)]
    return cache[key]


@dataclass(frozen=True)
class PackedLayer:
    """Every area of a level as integer arrays: the polygons of each area, the rings of each
    polygon (exterior first), the points of each ring (without the closing point) and the
    points themselves as integers of 10**-decimals degrees (exact: the coordinates are rounded
    to that many decimals). ``*_start`` arrays hold where each item's children begin (n + 1)."""

    decimals: int
    multi: np.ndarray  # 1 where the area is a MultiPolygon (also with one part), else 0
    area_polygons: np.ndarray  # polygons of each area
    polygon_rings: np.ndarray  # rings of each polygon
    ring_points: np.ndarray  # points of each ring
    area_start: np.ndarray  # first polygon of each area
    polygon_start: np.ndarray  # first ring of each polygon
    ring_start: np.ndarray  # first point of each ring
    points: np.ndarray  # (m, 2) int64


def _starts(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Indices starts[0]..ends[0]-1, starts[1]..ends[1]-1, ... as one array."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - _starts(lengths)[:-1], lengths)
    return offsets + np.arange(total)


def packed_layer(atlas: Atlas, level: str, zoom: int | None = None, crs: str = "wgs84") -> PackedLayer:
    """The geometry of ``layer_geometries`` as a :class:`PackedLayer` (same coordinates). Cached."""
    geoms, detail = _layer_shapes(atlas, level, zoom, crs)
    key = ("packed", level, zoom_bucket(zoom), crs)
    cache = _cache(atlas)
    if key not in cache:
        with _geometry_lock:
            if key not in cache:
                polygons, owner = shapely.get_parts(geoms, return_index=True)
                rings, ring_owner = shapely.get_rings(polygons, return_index=True)
                coords, point_owner = shapely.get_coordinates(rings, return_index=True)
                ring_sizes = np.bincount(point_owner, minlength=len(rings))
                closing = _starts(ring_sizes)[1:] - 1  # the last point repeats the first
                keep = np.ones(len(coords), dtype=bool)
                keep[closing] = False
                area_polygons = np.bincount(owner, minlength=len(geoms))
                polygon_rings = np.bincount(ring_owner, minlength=len(polygons))
                cache[key] = PackedLayer(
                    decimals=detail.decimals, multi=(shapely.get_type_id(geoms) == 6).astype(np.int64),
                    area_polygons=area_polygons, polygon_rings=polygon_rings,
                    ring_points=ring_sizes - 1, area_start=_starts(area_polygons),
                    polygon_start=_starts(polygon_rings), ring_start=_starts(ring_sizes - 1),
                    points=np.rint(coords[keep] * 10.0 ** detail.decimals).astype(np.int64))
    return cache[key]


def pack_rows(packed: PackedLayer, rows: np.ndarray) -> dict:
    """The geometry of the areas at ``rows`` of a packed layer, for JSON: ``decimals``,
    ``polygons`` (per area), ``multi`` (per area: 1 for a MultiPolygon), ``rings`` (per
    polygon), ``points`` (per ring, the closing point left out) and ``coords``: x, y of every point as integers of 10**-decimals degrees, each
    point after the first given as its difference from the one before (small numbers)."""
    rows = np.asarray(rows, dtype=np.int64)
    polygons = _ranges(packed.area_start[rows], packed.area_start[rows + 1])
    rings = _ranges(packed.polygon_start[polygons], packed.polygon_start[polygons + 1])
    points = packed.points[_ranges(packed.ring_start[rings], packed.ring_start[rings + 1])]
    deltas = np.diff(points, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    return {"decimals": packed.decimals, "polygons": packed.area_polygons[rows].tolist(),
            "multi": packed.multi[rows].tolist(),
            "rings": packed.polygon_rings[polygons].tolist(), "points": packed.ring_points[rings].tolist(),
            "coords": deltas.ravel().tolist()}


def unpack_geometries(packed: dict) -> list[dict]:
    """GeoJSON geometries (Polygon or MultiPolygon) of a :func:`pack_rows` answer: the reverse
    of the packing, as the map's script does it (used by the tests and by scripts)."""
    scale = 10.0 ** packed["decimals"]
    xy = np.cumsum(np.asarray(packed["coords"], dtype=np.int64).reshape(-1, 2), axis=0) / scale
    rings_left, points_left = iter(packed["rings"]), iter(packed["points"])
    at, out = 0, []
    for n_polygons, multi in zip(packed["polygons"], packed["multi"]):
        polygons = []
        for _ in range(n_polygons):
            rings = []
            for _ in range(next(rings_left)):
                n = next(points_left)
                ring = xy[at:at + n].tolist()
                rings.append(ring + ring[:1])
                at += n
            polygons.append(rings)
        out.append({"type": "MultiPolygon", "coordinates": polygons} if multi
                   else {"type": "Polygon", "coordinates": polygons[0] if polygons else []})
    return out


def _rows_under(atlas: Atlas, level: str, code: str) -> np.ndarray:
    """Row numbers of the areas of ``level`` inside area ``code`` (a grid counts as inside itself)."""
    codes = atlas.layers[level]["code"].to_numpy(dtype=str)
    if code == CITY_CODE:
        return np.arange(len(codes))
    lo = np.searchsorted(codes, code, side="left")
    hi = np.searchsorted(codes, code + "\uffff", side="left")
    return np.arange(lo, hi)


# ---------------------------------------------------------------------------------------------
# Values, classes and the choropleth collection
# ---------------------------------------------------------------------------------------------

@dataclass
class ClassedValues:
    """The values of one metric for the areas of one level inside an area, with their classes."""

    area: dict
    level: str
    metric: Metric
    start: dt.date
    end: dt.date
    frame: pd.DataFrame  # code, level, name, value, class, color; in code order
    classes: Classes
    rows: np.ndarray = field(repr=False)  # row numbers in atlas.layers[level]

    def legend(self) -> dict:
        """Metric, unit, period, method and class limits, with the number of areas per class."""
        counts = np.bincount(self.frame["class"].to_numpy(dtype=int), minlength=len(self.classes.bounds))
        labels = self.classes.labels()
        return {
            "metric": metric_dict(self.metric),
            "period": {"from": self.start.isoformat(), "to": self.end.isoformat()},
            "level": self.level,
            "method": self.classes.method,
            "method_name_zh": METHODS[self.classes.method][0],
            "method_name_en": METHODS[self.classes.method][1],
            "lower": self.classes.lower,
            "classes": [
                {"color": color, "upper": upper, "label": label, "count": int(n)}
                for color, upper, label, n in zip(self.classes.colors, self.classes.bounds, labels, counts)
            ],
            "total": int(self.frame["value"].sum()),
            "areas": len(self.frame),
        }


def metric_dict(metric: Metric) -> dict:
    """JSON form of a metric: key, names and units in both languages."""
    return {"key": metric.key, "name_zh": metric.name_zh, "name_en": metric.name_en,
            "unit_zh": metric.unit_zh, "unit_en": metric.unit_en}


def classed_values(service, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None,
                   method: str = DEFAULT_METHOD, k: int = DEFAULT_K, level: str | None = None) -> ClassedValues:
    """Values of ``metric`` over start..end for the areas of ``level`` inside ``code``, classed.

    ``level`` defaults to the children (a grid shows itself). The children's values come from
    the shared query (``service.child_values``), deeper levels from the same cube rolled up.
    """
    atlas = service.atlas
    area = atlas.get(code)
    m = get_metric(metric)
    start, end = resolve_period(start, end)
    level = display_level(area["level"], level)
    rows = _rows_under(atlas, level, code)
    layer = atlas.layers[level]
    if level == (child_level(area["level"]) or "grid"):
        frame = service.child_values(code, metric, start, end)
    else:
        sums = roll_up(atlas, service.cube().grid_totals(metric, start, end), level)
        frame = layer.iloc[rows][["code", "level", "name"]].reset_index(drop=True)
        frame["value"] = sums.reindex(frame["code"]).fillna(0).astype(np.int64).to_numpy()
    frame = frame.reset_index(drop=True)
    if len(frame) != len(rows):  # pragma: no cover - the atlas and the counts disagree
        raise RuntimeError(f"{len(frame)} values for {len(rows)} {level} areas inside {code}")
    classes = classify(frame["value"].to_numpy(), method, k)
    frame["class"] = classes.classify(frame["value"].to_numpy())
    frame["color"] = classes.color_of(frame["value"].to_numpy())
    return ClassedValues({"code": area["code"], "name": area["name"], "level": area["level"],
                          "parent": area["parent"]},
                         level, m, start, end, frame, classes, rows)


def choropleth(service, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None,
               method: str = DEFAULT_METHOD, k: int = DEFAULT_K, level: str | None = None,
               zoom: int | None = None, crs: str = "wgs84", fmt: str = "geojson") -> dict:
    """A GeoJSON FeatureCollection of the areas of ``level`` inside ``code`` with their values.

    Each feature has ``code``, ``name``, ``level``, ``value``, ``class`` (0 = lowest) and
    ``color``. The collection also carries ``area``, ``legend`` (metric, unit, period, method,
    class limits), ``zoom`` and ``crs`` as foreign members, which GIS tools ignore.
    ``fmt="packed"`` answers the same in columns instead (:func:`choropleth_packed`).
    """
    if fmt not in CHOROPLETH_FORMATS:
        raise BadParameter(f"unknown format {fmt!r}; allowed: {', '.join(CHOROPLETH_FORMATS)}")
    if fmt == "packed":
        return choropleth_packed(service, code, metric, start, end, method, k, level, zoom, crs)
    check_crs(crs)
    zoom_bucket(zoom)
    cv = classed_values(service, code, metric, start, end, method, k, level)
    geometries = layer_geometries(service.atlas, cv.level, zoom, crs)
    records = cv.frame[["code", "level", "name", "value", "class", "color"]].to_dict("records")
    features = [
        {"type": "Feature", "id": rec["code"], "geometry": geometries[row],
         "properties": {"code": rec["code"], "name": rec["name"], "level": rec["level"],
                        "value": int(rec["value"]), "class": int(rec["class"]), "color": rec["color"]}}
        for row, rec in zip(cv.rows, records)
    ]
    return {"type": "FeatureCollection", "area": cv.area, "legend": cv.legend(),
            "zoom": zoom_bucket(zoom), "crs": crs, "features": features}


def choropleth_packed(service, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None,
                      method: str = DEFAULT_METHOD, k: int = DEFAULT_K, level: str | None = None,
                      zoom: int | None = None, crs: str = "wgs84") -> dict:
    """The choropleth of :func:`choropleth` in columns, for maps of thousands of areas.

    Same areas, order, values, classes and coordinates, but one list per property (``codes``,
    ``names``, ``values``, ``classes``; ``colors`` per class, ``level`` once) and the geometry
    packed by :func:`pack_rows` (:func:`unpack_geometries` turns it back into GeoJSON). The
    city's 10,205 grids are 5x smaller than as GeoJSON and the browser builds no objects for
    them; ``area``, ``legend``, ``zoom`` and ``crs`` are as in the GeoJSON.
    """
    check_crs(crs)
    zoom_bucket(zoom)
    cv = classed_values(service, code, metric, start, end, method, k, level)
    packed = packed_layer(service.atlas, cv.level, zoom, crs)
    frame = cv.frame
    return {"format": "packed", "area": cv.area, "legend": cv.legend(), "zoom": zoom_bucket(zoom), "crs": crs,
            "level": cv.level, "codes": frame["code"].tolist(), "names": frame["name"].tolist(),
            "values": frame["value"].astype(np.int64).tolist(), "classes": frame["class"].astype(int).tolist(),
            "colors": list(cv.classes.colors), **pack_rows(packed, cv.rows)}


def values_table(service, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None,
                 method: str = DEFAULT_METHOD, k: int = DEFAULT_K, level: str | None = None) -> dict:
    """The choropleth's numbers without geometry: ``area``, ``legend`` and one row per area
    (``code``, ``name``, ``level``, ``value``, ``class``, ``color``)."""
    cv = classed_values(service, code, metric, start, end, method, k, level)
    rows = [{"code": c, "name": n, "level": lv, "value": int(v), "class": int(cl), "color": col}
            for c, n, lv, v, cl, col in cv.frame[["code", "name", "level", "value", "class", "color"]]
            .itertuples(index=False, name=None)]
    return {"area": cv.area, "legend": cv.legend(), "values": rows}


def daily_values(service, code: str, metric: str, start: dt.date | None = None,
                 end: dt.date | None = None) -> dict:
    """Daily totals of ``metric`` inside ``code``: ``area``, ``metric``, ``period`` and ``days``
    (a list of {date, value})."""
    area = service.atlas.get(code)
    m = get_metric(metric)
    start, end = resolve_period(start, end)
    series = service.daily_series(code, metric, start, end)
    return {"area": {"code": area["code"], "name": area["name"], "level": area["level"]},
            "metric": metric_dict(m), "period": {"from": start.isoformat(), "to": end.isoformat()},
            "days": [{"date": d.isoformat(), "value": int(v)} for d, v in series.items()]}


def outlines(atlas: Atlas, level: str, zoom: int | None = None, crs: str = "wgs84", within: str = CITY_CODE) -> dict:
    """A GeoJSON FeatureCollection of the outlines of every ``level`` area inside ``within``.

    Features carry ``code``, ``name``, ``level`` and ``parent``. The map draws the districts
    and towns of the whole city as its base (there is no default tile layer).
    """
    area = atlas.get(within)
    if level not in atlas.layers:
        raise BadParameter(f"unknown level {level!r}; allowed: {', '.join(atlas.layers)}")
    if LEVELS.index(level) < LEVELS.index(area["level"]):
        raise BadParameter(f"level {level!r} is above the {area['level']} {within}")
    geometries = layer_geometries(atlas, level, zoom, crs)
    layer = atlas.layers[level]
    rows = _rows_under(atlas, level, within)  # an area of the same level is "inside" itself
    sub = layer.iloc[rows]
    features = [
        {"type": "Feature", "id": c, "geometry": geometries[row],
         "properties": {"code": c, "name": n, "level": level, "parent": p}}
        for row, c, n, p in zip(rows, sub["code"], sub["name"], sub["parent"])
    ]
    return {"type": "FeatureCollection", "zoom": zoom_bucket(zoom), "crs": crs, "features": features}


def area_feature(atlas: Atlas, code: str, zoom: int | None = None, crs: str = "wgs84") -> dict:
    """One area as a GeoJSON Feature (code, name, level, parent); the city is its districts' union."""
    area = atlas.get(code)
    if area["level"] == "city":
        detail = ZOOM_DETAIL.get(zoom_bucket(zoom), FULL_DETAIL)
        check_crs(crs)
        geom = _simplify(np.array([atlas.city_outline]), detail.tolerance)
        geom = shapely.transform(_shift(geom, crs), lambda c: np.round(c, detail.decimals))[0]
        geometry = json.loads(shapely.to_geojson(geom))
    else:
        row = int(np.searchsorted(atlas.layers[area["level"]]["code"].to_numpy(dtype=str), code))
        geometry = layer_geometries(atlas, area["level"], zoom, crs)[row]
    return {"type": "Feature", "id": code, "geometry": geometry,
            "properties": {"code": code, "name": area["name"], "level": area["level"], "parent": area["parent"]}}


def area_bounds(atlas: Atlas, code: str, crs: str = "wgs84") -> list[list[float]]:
    """Leaflet bounds [[south, west], [north, east]] of an area, in ``crs``."""
    check_crs(crs)
    west, south, east, north = atlas.geometry_of(code).bounds
    if crs == "gcj02":
        (west, east), (south, north) = wgs84_to_gcj02([west, east], [south, north])
    return [[float(south), float(west)], [float(north), float(east)]]


# ---------------------------------------------------------------------------------------------
# Checkpoints: heat weights from the checkpoint_checks table
# ---------------------------------------------------------------------------------------------

def checkpoint_checks(store: Store, codes, start: dt.date, end: dt.date) -> np.ndarray:
    """Checks over start..end of each checkpoint in ``codes`` (0 where none), from the store's
    daily checks per checkpoint (held in memory until the store's version moves)."""
    known, daily = count_store.checkpoint_daily(store)
    codes = list(codes)
    out = np.zeros(len(codes), dtype=np.int64)
    at = pd.Index(known).get_indexer(codes)
    hit = at >= 0
    out[hit] = daily[at[hit], day_index(start): day_index(end) + 1].sum(axis=1)
    return out


def checkpoint_weights(service, code: str, start: dt.date | None = None, end: dt.date | None = None,
                       crs: str = "wgs84") -> dict:
    """A GeoJSON FeatureCollection of the checkpoints inside ``code`` with their checks over start..end.

    The heat layer weights each checkpoint location by ``checks`` (persons checked); the
    clustered markers show the same points. Features carry ``code``, ``name``, ``kind``,
    ``grid`` and ``checks``; the collection carries ``period``, ``total`` and ``max``.
    """
    atlas = service.atlas
    area = atlas.get(code)
    start, end = resolve_period(start, end)
    check_crs(crs)
    cps = atlas.checkpoints
    inside = np.ones(len(cps), dtype=bool) if area["level"] == "city" else \
        cps["grid_code"].str.startswith(code).to_numpy()
    idx = np.flatnonzero(inside)
    checks = checkpoint_checks(service.store, cps["code"].to_numpy()[idx], start, end)
    xs = cps.geometry.x.to_numpy()[idx]
    ys = cps.geometry.y.to_numpy()[idx]
    if crs == "gcj02":
        xs, ys = wgs84_to_gcj02(xs, ys)
    sub = cps.iloc[idx]
    features = [
        {"type": "Feature", "id": c,
         "geometry": {"type": "Point", "coordinates": [round(float(x), 6), round(float(y), 6)]},
         "properties": {"code": c, "name": n, "kind": kd, "grid": g, "checks": int(v)}}
        for c, n, kd, g, x, y, v in zip(sub["code"], sub["name"], sub["kind"], sub["grid_code"], xs, ys, checks)
    ]
    return {"type": "FeatureCollection", "area": {"code": code, "name": area["name"], "level": area["level"]},
            "period": {"from": start.isoformat(), "to": end.isoformat()},
            "total": int(checks.sum()), "max": int(checks.max()) if len(checks) else 0,
            "crs": crs, "features": features}


# ---------------------------------------------------------------------------------------------
# Summaries, search and the whole page view
# ---------------------------------------------------------------------------------------------

STAFF_COLUMNS = ("households", "population", "leaders", "workers")


def area_summary(service, code: str, start: dt.date | None = None, end: dt.date | None = None) -> dict:
    """Everything a popup shows about one area: every metric over start..end, the households,
    population, grid leaders and grid workers, and how many children and grids it has."""
    atlas = service.atlas
    area = atlas.get(code)
    start, end = resolve_period(start, end)
    grids = atlas.grids.iloc[_rows_under(atlas, "grid", code)]
    out = {
        "code": code, "name": area["name"], "level": area["level"], "parent": area["parent"],
        "lineage": atlas.lineage(code),
        "period": {"from": start.isoformat(), "to": end.isoformat()},
        "metrics": [dict(metric_dict(m), value=service.area_total(code, key, start, end))
                    for key, m in METRICS.items()],
        "grids": int(len(grids)),
        "children": int(len(atlas.children(code))) if area["level"] != "grid" else 0,
        "checkpoints": int(atlas.checkpoints["grid_code"].str.startswith(
            "" if area["level"] == "city" else code).sum()),
    }
    for col in STAFF_COLUMNS:
        out[col] = int(grids[col].sum()) if col in grids else None
    return out


def search_areas(atlas: Atlas, text: str, limit: int = 10, within: str | None = None) -> list[dict]:
    """Areas whose name contains ``text`` or whose code starts with it, best first.

    Each result has ``code``, ``name``, ``level`` and ``path`` (the names of its ancestors
    below the city, e.g. ["鄞州区"] for 云龙镇).
    """
    text = check_search(text, limit)
    hits = atlas.search(text, limit=limit, within=within)
    out = []
    for code, name, level in zip(hits["code"], hits["name"], hits["level"]):
        path = [a["name"] for a in atlas.lineage(code)[1:-1]]
        out.append({"code": code, "name": name, "level": level, "path": path})
    return out


@dataclass
class MapView:
    """Everything the page of one area needs, except the geometry (which the map fetches)."""

    area: dict
    lineage: list[dict]
    level: str
    levels: list[str]
    values: ClassedValues
    summary: dict
    series: list[dict]  # [{date, value}] of the chosen metric
    ranking: dict
    bounds: list[list[float]]
    crs: str
    store_version: int

    @property
    def legend(self) -> dict:
        """The legend of the choropleth (same as the JSON endpoint's)."""
        return self.values.legend()


def _ranking(frame: pd.DataFrame, n: int = 5) -> dict:
    """The n areas with the highest and the n with the lowest values (lowest = where work may
    lag). With 2n areas or fewer, ``top`` lists them all and ``bottom`` is empty."""
    cols = ["code", "name", "level", "value", "color"]
    # The frame is in code order, so a stable sort by value keeps ties in code order (numpy:
    # a pandas sort on two keys costs 60 ms for the city's 10,205 grids).
    values = frame["value"].to_numpy()
    highest = np.argsort(-values, kind="stable")
    if len(frame) <= 2 * n:
        return {"top": frame.iloc[highest][cols].to_dict("records"), "bottom": []}
    lowest = np.argsort(values, kind="stable")
    return {"top": frame.iloc[highest[:n]][cols].to_dict("records"),
            "bottom": frame.iloc[lowest[:n]][cols].to_dict("records")}


# Recent page views per loaded atlas: the same view is served again until the counts change.
VIEWS_KEPT = 32
_views_lock = threading.Lock()


def map_view(service, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None,
             method: str = DEFAULT_METHOD, k: int = DEFAULT_K, level: str | None = None,
             crs: str = "wgs84") -> MapView:
    """Assemble the page of area ``code``: breadcrumb, classed values and legend, the summary of
    every metric, the daily series of ``metric``, the highest/lowest areas and the bounds.

    The last :data:`VIEWS_KEPT` views are kept with the loaded atlas, keyed by their arguments
    and the store version (an import changes it), so the same page is not summed up again; a
    kept view is shared, so callers must not change it.
    """
    check_crs(crs)
    atlas = service.atlas
    key = (code, metric, start, end, method, k, level, crs, service.store.version())
    with _views_lock:
        views = _cache(atlas).setdefault("views", OrderedDict())
        if key in views:
            views.move_to_end(key)
            return views[key]
    cv = classed_values(service, code, metric, start, end, method, k, level)
    view = MapView(
        area=cv.area,
        lineage=atlas.lineage(code),
        level=cv.level,
        levels=display_levels(cv.area["level"]),
        values=cv,
        summary=area_summary(service, code, cv.start, cv.end),
        series=daily_values(service, code, metric, cv.start, cv.end)["days"],
        ranking=_ranking(cv.frame),
        bounds=area_bounds(atlas, code, crs),
        crs=crs,
        store_version=key[-1],
    )
    with _views_lock:
        views[key] = view
        while len(views) > VIEWS_KEPT:
            views.popitem(last=False)
    return view
