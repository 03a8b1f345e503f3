"""Map data: choropleth collections, outlines per zoom, checkpoint heat weights, summaries, search."""

import datetime as dt
import json
import math
import types

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import shape

from geo.atlas.metrics import METRICS
from geo.errors import AreaNotFound, BadParameter
from geo.query import mapdata
from geo.query.classify import classify
from geo.query.service import AtlasService
from geo.spatial.chinacrs import wgs84_to_gcj02

YINZHOU, YUNLONG, JIACUN = "330212", "330212108", "330212108001"
FEB = (dt.date(2020, 2, 1), dt.date(2020, 2, 29))


@pytest.fixture(scope="module")
def service(demo_settings):
    return AtlasService(demo_settings)


def _metres(lon1, lat1, lon2, lat2):
    dx = (lon2 - lon1) * 111_320 * math.cos(math.radians(lat1))
    return math.hypot(dx, (lat2 - lat1) * 110_574)


@pytest.mark.parametrize("zoom, bucket", [(0, 8), (8, 8), (9, 10), (10, 10), (12, 12), (13, 14), (14, 14),
                                          (15, None), (22, None), (None, None)])
def test_each_zoom_is_served_by_the_next_bucket_up(zoom, bucket):
    assert mapdata.zoom_bucket(zoom) == bucket


@pytest.mark.parametrize("zoom", [-1, 23, 9.5, "10", True])
def test_a_bad_zoom_is_refused(zoom):
    with pytest.raises(BadParameter, match="zoom .* must be a whole number from 0 to 22"):
        mapdata.zoom_bucket(zoom)


@pytest.mark.parametrize("area_level, level, shown", [
    ("city", None, "district"), ("city", "grid", "grid"), ("district", None, "town"),
    ("town", "grid", "grid"), ("village", None, "grid"), ("grid", None, "grid"), ("grid", "grid", "grid"),
])
def test_display_level_defaults_to_the_children(area_level, level, shown):
    assert mapdata.display_level(area_level, level) == shown


@pytest.mark.parametrize("area_level, level", [("town", "district"), ("town", "town"), ("village", "village"),
                                               ("city", "city"), ("district", "street")])
def test_a_level_that_is_not_below_the_area_is_refused(area_level, level):
    with pytest.raises(BadParameter, match=f"level '{level}' cannot be shown inside a {area_level}; allowed: "):
        mapdata.display_level(area_level, level)


def test_simplified_districts_still_tile_the_city_without_gaps(atlas):
    full = atlas.city_outline
    coords = []
    for zoom in (8, 10, 12, 14, None):
        geoms = [shape(g) for g in mapdata.layer_geometries(atlas, "district", zoom)]
        union = shapely.union_all(geoms)
        # Coverage simplification moves shared edges together: the union keeps the city's
        # area (within 1 %) and the districts do not overlap.
        assert abs(union.area - full.area) / full.area < 0.01
        assert abs(sum(g.area for g in geoms) - union.area) / union.area < 0.001
        coords.append(sum(shapely.get_num_coordinates(g) for g in geoms))
    assert coords == sorted(coords), "less zoom must mean less detail"
    assert coords[0] < coords[-1] / 3


def test_coordinates_are_rounded_to_the_bucket(atlas):
    geom = mapdata.layer_geometries(atlas, "town", 8)[0]
    xs = shapely.get_coordinates(shape(geom))[:, 0]
    assert np.allclose(xs, np.round(xs, 3))


def test_choropleth_has_one_feature_per_child_with_class_colours(service, atlas):
    fc = mapdata.choropleth(service, YINZHOU, "visits", zoom=10)
    kids = atlas.children(YINZHOU)
    assert fc["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in fc["features"]] == list(kids["code"])
    values = [f["properties"]["value"] for f in fc["features"]]
    assert values == list(service.child_values(YINZHOU, "visits")["value"])
    classes = classify(values, "quantiles")
    assert [f["properties"]["color"] for f in fc["features"]] == classes.color_of(values)
    assert sum(values) == service.area_total(YINZHOU, "visits")
    first = fc["features"][0]["properties"]
    assert set(first) == {"code", "name", "level", "value", "class", "color"}
    assert first["level"] == "town"


def test_the_legend_names_metric_unit_period_method_and_limits(service):
    fc = mapdata.choropleth(service, YINZHOU, "risk_code", *FEB, method="natural_breaks", k=4)
    legend = fc["legend"]
    assert legend["metric"]["key"] == "risk_code"
    assert legend["metric"]["name_zh"] == "红码/黄码人员" and legend["metric"]["unit_zh"] == "人"
    assert legend["period"] == {"from": "2020-02-01", "to": "2020-02-29"}
    assert legend["method"] == "natural_breaks"
    assert legend["method_name_zh"].startswith("自然断点")
    assert 1 <= len(legend["classes"]) <= 4
    assert sum(c["count"] for c in legend["classes"]) == len(fc["features"])
    uppers = [c["upper"] for c in legend["classes"]]
    assert uppers == sorted(uppers)
    assert all(c["label"] for c in legend["classes"])


def test_all_grids_of_the_city_in_one_collection(service, atlas):
    fc = mapdata.choropleth(service, "330200", "visits", level="grid", zoom=10)
    assert len(fc["features"]) == len(atlas.grids) == 10205
    assert sum(f["properties"]["value"] for f in fc["features"]) == service.area_total("330200", "visits")


def test_deeper_levels_roll_up_the_same_numbers(service):
    villages = mapdata.values_table(service, YINZHOU, "home_quarantine", level="village")
    by_town = {}
    for row in villages["values"]:
        by_town[row["code"][:9]] = by_town.get(row["code"][:9], 0) + row["value"]
    towns = service.child_values(YINZHOU, "home_quarantine")
    assert by_town == {c: v for c, v in zip(towns["code"], towns["value"]) if c in by_town}


def test_a_grid_shows_itself(service):
    grid = JIACUN + "003"
    fc = mapdata.choropleth(service, grid, "visits")
    assert [f["properties"]["code"] for f in fc["features"]] == [grid]


def test_gcj02_shifts_the_overlays_by_hundreds_of_metres(service):
    wgs = mapdata.choropleth(service, YUNLONG, "visits", zoom=14)["features"][0]["geometry"]
    gcj = mapdata.choropleth(service, YUNLONG, "visits", zoom=14, crs="gcj02")["features"][0]["geometry"]
    (lon, lat), (glon, glat) = shapely.get_coordinates(shape(wgs))[0], shapely.get_coordinates(shape(gcj))[0]
    elon, elat = wgs84_to_gcj02(lon, lat)
    assert glon == pytest.approx(float(elon), abs=2e-5) and glat == pytest.approx(float(elat), abs=2e-5)
    assert 200 < _metres(lon, lat, glon, glat) < 1000


def test_unknown_crs_metric_area_and_period_are_refused(service):
    with pytest.raises(BadParameter, match="unknown coordinate system 'bd09'; allowed: wgs84, gcj02"):
        mapdata.choropleth(service, YINZHOU, "visits", crs="bd09")
    with pytest.raises(BadParameter, match="unknown metric 'steps'"):
        mapdata.choropleth(service, YINZHOU, "steps")
    with pytest.raises(AreaNotFound, match="no area with code '330299'"):
        mapdata.choropleth(service, "330299", "visits")
    with pytest.raises(BadParameter, match="is outside the data period"):
        mapdata.choropleth(service, YINZHOU, "visits", dt.date(2019, 12, 1), dt.date(2020, 1, 31))


def test_checkpoint_weights_are_the_checks_table_summed_at_checkpoint_locations(service, demo_settings, atlas):
    fc = mapdata.checkpoint_weights(service, YUNLONG, *FEB)
    inside = atlas.checkpoints[atlas.checkpoints["grid_code"].str.startswith(YUNLONG)]
    assert sorted(f["properties"]["code"] for f in fc["features"]) == sorted(inside["code"])
    # The truth is the demo's file of daily checks, not the store the map reads.
    checks = pd.read_parquet(demo_settings.demo_dir / "checkpoint_checks.parquet")
    feb = checks[(checks["date"] >= "2020-02-01") & (checks["date"] <= "2020-02-29")]
    expected = feb.groupby("checkpoint_code")["checks"].sum().to_dict()
    for f in fc["features"]:
        p = f["properties"]
        assert p["checks"] == expected.get(p["code"], 0)
        # The point is the checkpoint's own location: no household point ever leaves the core.
        row = inside[inside["code"] == p["code"]].iloc[0]
        assert f["geometry"]["coordinates"] == pytest.approx([row.geometry.x, row.geometry.y], abs=1e-6)
        assert set(p) == {"code", "name", "kind", "grid", "checks"}
    assert fc["total"] == sum(f["properties"]["checks"] for f in fc["features"]) > 0
    assert fc["max"] == max(f["properties"]["checks"] for f in fc["features"])


def test_city_checkpoint_weights_cover_every_checkpoint(service, atlas):
    whole = mapdata.checkpoint_weights(service, "330200")
    feb = mapdata.checkpoint_weights(service, "330200", *FEB)
    assert len(whole["features"]) == len(atlas.checkpoints)
    assert 0 < feb["total"] < whole["total"]
    assert whole["total"] == service.area_total("330200", "checkpoint_checks")


def test_summary_has_every_metric_and_the_staff(service, atlas):
    s = mapdata.area_summary(service, YUNLONG, *FEB)
    assert [m["key"] for m in s["metrics"]] == list(METRICS)
    assert {m["key"]: m["value"] for m in s["metrics"]} == {k: service.area_total(YUNLONG, k, *FEB) for k in METRICS}
    grids = atlas.grids[atlas.grids["code"].str.startswith(YUNLONG)]
    assert s["leaders"] == grids["leaders"].sum() and s["workers"] == grids["workers"].sum()
    assert s["grids"] == len(grids) and s["children"] == 7
    assert [a["name"] for a in s["lineage"]] == ["宁波市", "鄞州区", "云龙镇"]


@pytest.mark.parametrize("text, code", [("云龙镇", YUNLONG), ("云龙", YUNLONG), ("甲村", JIACUN), (YUNLONG, YUNLONG)])
def test_search_by_name_part_or_code(atlas, text, code):
    hits = mapdata.search_areas(atlas, text)
    assert hits[0]["code"] == code
    assert hits[0]["path"][0] == "鄞州区"


@pytest.mark.parametrize("text, limit, message", [
    ("", 10, "search text q is empty"), ("  ", 10, "search text q is empty"),
    ("x" * 51, 10, "search text q has 51 characters; at most 50 are allowed"),
    ("云龙", 0, "limit 0 must be a whole number from 1 to 50"),
])
def test_bad_searches_are_refused(atlas, text, limit, message):
    with pytest.raises(BadParameter, match=message):
        mapdata.search_areas(atlas, text, limit)


def test_outlines_of_a_level_inside_an_area(atlas):
    towns = mapdata.outlines(atlas, "town", 10)
    assert len(towns["features"]) == len(atlas.layers["town"])
    grids = mapdata.outlines(atlas, "grid", None, within=JIACUN)
    assert {f["properties"]["parent"] for f in grids["features"]} == {JIACUN}
    with pytest.raises(BadParameter, match="level 'district' is above the town 330212108"):
        mapdata.outlines(atlas, "district", within=YUNLONG)


def test_map_view_gathers_the_page(service, atlas):
    view = mapdata.map_view(service, "330200", "visits", level="grid")
    assert view.level == "grid" and view.levels == ["district", "town", "village", "grid"]
    top = [r["value"] for r in view.ranking["top"]]
    bottom = [r["value"] for r in view.ranking["bottom"]]
    assert top == sorted(top, reverse=True) and bottom == sorted(bottom) and bottom[0] <= top[-1]
    assert len(view.series) == 68 and sum(d["value"] for d in view.series) == view.legend["total"]
    (south, west), (north, east) = view.bounds
    minx, miny, maxx, maxy = atlas.city_outline.bounds
    assert (west, south, east, north) == pytest.approx((minx, miny, maxx, maxy))
    small = mapdata.map_view(service, YUNLONG, "visits")
    assert len(small.ranking["top"]) == 7 and small.ranking["bottom"] == []


@pytest.mark.parametrize("code, level, zoom, crs", [
    ("330200", "grid", 10, "wgs84"),  # the whole city's grids (MultiPolygons)
    ("330200", None, 8, "wgs84"),  # districts with islands and a coastline
    (YUNLONG, "grid", None, "wgs84"),  # full detail, a run of grids in the middle of the layer
    (YINZHOU, None, 12, "gcj02"),
])
def test_packed_choropleth_unpacks_to_the_same_areas_values_and_coordinates(service, code, level, zoom, crs):
    fc = mapdata.choropleth(service, code, "visits", level=level, zoom=zoom, crs=crs)
    packed = mapdata.choropleth(service, code, "visits", level=level, zoom=zoom, crs=crs, fmt="packed")
    assert packed["format"] == "packed"
    props = [f["properties"] for f in fc["features"]]
    assert packed["codes"] == [p["code"] for p in props]
    assert packed["names"] == [p["name"] for p in props]
    assert packed["values"] == [p["value"] for p in props]
    assert packed["classes"] == [p["class"] for p in props]
    assert [packed["colors"][c] for c in packed["classes"]] == [p["color"] for p in props]
    assert {p["level"] for p in props} == {packed["level"]}
    assert packed["legend"] == fc["legend"] and packed["area"] == fc["area"]
    assert (packed["zoom"], packed["crs"]) == (fc["zoom"], fc["crs"])
    # Exactly the GeoJSON's coordinates (floats compared with ==), rings, holes and parts.
    assert mapdata.unpack_geometries(packed) == [f["geometry"] for f in fc["features"]]
    # Integers in steps: far fewer characters than the GeoJSON.
    assert all(isinstance(c, int) for c in packed["coords"])
    assert len(json.dumps(packed)) < len(json.dumps(fc)) / 2


def test_packed_geometry_keeps_holes_and_islands():
    import geopandas as gpd
    from shapely.geometry import MultiPolygon, Polygon

    ring = Polygon([(121.0, 29.0), (121.1, 29.0), (121.1, 29.1), (121.0, 29.1)], [[(121.02, 29.02), (121.02, 29.05),
                                                                                   (121.05, 29.05), (121.05, 29.02)]])
    island = Polygon([(121.2, 29.0), (121.25, 29.0), (121.25, 29.05)])
    layer = gpd.GeoDataFrame({"code": ["a", "b", "c"]}, crs=4326,
                             geometry=[ring, MultiPolygon([Polygon(ring.exterior), island]),
                                       MultiPolygon([island])])
    fake = types.SimpleNamespace(layers={"grid": layer})  # what the geometry functions read of an atlas
    geoms = mapdata.layer_geometries(fake, "grid", None)
    packed = mapdata.pack_rows(mapdata.packed_layer(fake, "grid", None), np.arange(3))
    assert packed["polygons"] == [1, 2, 1] and packed["rings"] == [2, 1, 1, 1] and packed["multi"] == [0, 1, 1]
    assert mapdata.unpack_geometries(packed) == geoms
    # Only the last two areas: the first point is absolute, the rest are steps.
    tail = mapdata.pack_rows(mapdata.packed_layer(fake, "grid", None), np.arange(1, 3))
    assert mapdata.unpack_geometries(tail) == geoms[1:]


def test_an_unknown_choropleth_format_is_refused(service):
    with pytest.raises(BadParameter, match="unknown format 'topojson'; allowed: geojson, packed"):
        mapdata.choropleth(service, YINZHOU, "visits", fmt="topojson")


def test_a_page_view_is_kept_until_its_arguments_change(service):
    first = mapdata.map_view(service, YUNLONG, "visits", *FEB)
    assert mapdata.map_view(service, YUNLONG, "visits", *FEB) is first
    other = mapdata.map_view(service, YUNLONG, "risk_code", *FEB)
    assert other is not first and other.values.metric.key == "risk_code"
    assert first.store_version == service.store.version()
