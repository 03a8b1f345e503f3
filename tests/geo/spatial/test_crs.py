"""Tests for geo.crs: parsing CRS text and converting coordinates and geometries to WGS84."""

from __future__ import annotations

import geopandas
import numpy as np
import pytest
from pyproj import CRS
from shapely.geometry import LineString, Point, Polygon

from geo.errors import BadParameter
from geo.spatial import chinacrs
from geo.spatial.crs import CrsSpec, crs_from_pyproj, geometry_to_wgs84, parse_crs, to_wgs84


@pytest.mark.parametrize(
    ("text", "kind", "name"),
    [
        ("EPSG:4326", "proj", "EPSG:4326"),
        ("epsg:4490", "proj", "EPSG:4490"),
        (" EPSG:4549 ", "proj", "EPSG:4549"),
        ("EPSG:3857", "proj", "EPSG:3857"),
        ("EPSG:32651", "proj", "EPSG:32651"),
        ("wgs84", "proj", "EPSG:4326"),
        ("WGS-84", "proj", "EPSG:4326"),
        ("gcj02", "gcj02", "gcj02"),
        ("GCJ-02", "gcj02", "gcj02"),
        ("bd09", "bd09", "bd09"),
        ("BD09", "bd09", "bd09"),
    ],
)
def test_parse_crs_accepts(text, kind, name):
    spec = parse_crs(text)
    assert (spec.kind, spec.name) == (kind, name)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("EPSG:999999", r"'EPSG:999999': unknown EPSG code; allowed: .*gcj02"),
        ("mars", r"'mars' is not recognised; allowed: .*EPSG:4549.*bd09"),
        ("4326", r"'4326' is not recognised"),
        ("", r"'' is not a CRS"),
        (None, r"None is not a CRS"),
        (4326, r"4326 is not a CRS"),
        ("EPSG:5773", r"'EPSG:5773' is a Vertical CRS, not a 2D"),
        ("EPSG:4978", r"'EPSG:4978' is a Geocentric CRS"),
    ],
)
def test_parse_crs_rejects_naming_value_and_allowed(value, match):
    with pytest.raises(BadParameter, match=match):
        parse_crs(value)


def test_parse_crs_passes_specs_through():
    spec = parse_crs("gcj02")
    assert parse_crs(spec) is spec


@pytest.mark.parametrize(
    ("text", "geographic", "wgs84"),
    [("EPSG:4326", True, True), ("EPSG:4490", True, False), ("EPSG:4549", False, False),
     ("gcj02", True, False), ("bd09", True, False)],
)
def test_spec_properties(text, geographic, wgs84):
    spec = parse_crs(text)
    assert spec.is_geographic is geographic
    assert spec.is_wgs84 is wgs84


def test_same_as_ignores_axis_order_and_spelling():
    assert crs_from_pyproj(CRS("OGC:CRS84")).same_as(parse_crs("EPSG:4326"))
    assert parse_crs("wgs84").same_as(parse_crs("epsg:4326"))
    assert not parse_crs("EPSG:4490").same_as(parse_crs("EPSG:4326"))
    assert not parse_crs("gcj02").same_as(parse_crs("bd09"))
    assert not parse_crs("gcj02").same_as(parse_crs("EPSG:4326"))


def test_crs_from_pyproj_reduces_3d_and_keeps_custom():
    assert crs_from_pyproj(CRS("EPSG:4979")).name == "EPSG:4326"
    custom = crs_from_pyproj(CRS("+proj=tmerc +lon_0=121 +x_0=500000 +ellps=GRS80 +units=m"))
    assert custom.kind == "proj" and not custom.is_geographic
    lon, lat = to_wgs84(500000.0, 3300000.0, custom)
    assert float(lon) == pytest.approx(121.0, abs=1e-9)


def test_to_wgs84_gauss_kruger_4549():
    # CM 120E, false easting 500 km: the central meridian maps to x = 500000.
    lon, lat = to_wgs84(np.array([500000.0]), np.array([3306000.0]), "EPSG:4549")
    assert lon[0] == pytest.approx(120.0, abs=1e-9)
    assert 29.8 < lat[0] < 29.9


def test_to_wgs84_web_mercator():
    lon, lat = to_wgs84([13530000.0], [3485000.0], "EPSG:3857")
    assert lon[0] == pytest.approx(121.54, abs=0.01)
    assert lat[0] == pytest.approx(29.86, abs=0.01)


def test_to_wgs84_cgcs2000_is_within_a_metre_of_wgs84():
    lon, lat = to_wgs84([121.55], [29.87], "EPSG:4490")
    assert abs(lon[0] - 121.55) < 1e-5 and abs(lat[0] - 29.87) < 1e-5


def test_to_wgs84_identity_returns_copies():
    x = np.array([121.5, 121.6])
    lon, lat = to_wgs84(x, [29.8, 29.9], "wgs84")
    lon[0] = 0
    assert x[0] == 121.5 and lat.dtype == np.float64


@pytest.mark.parametrize(("text", "func"), [("gcj02", chinacrs.gcj02_to_wgs84), ("bd09", chinacrs.bd09_to_wgs84)])
def test_to_wgs84_uses_chinacrs(text, func):
    lon, lat = to_wgs84([121.555, 121.56], [29.873, 29.88], text)
    expected = func([121.555, 121.56], [29.873, 29.88])
    np.testing.assert_allclose(lon, expected[0], atol=0)
    np.testing.assert_allclose(lat, expected[1], atol=0)


def test_to_wgs84_rejects_bad_crs():
    with pytest.raises(BadParameter, match="'nope' is not recognised"):
        to_wgs84([1.0], [2.0], "nope")


def test_geometry_to_wgs84_polygons_gcj02():
    ring = [(121.55, 29.87), (121.56, 29.87), (121.56, 29.88), (121.55, 29.87)]
    series = geopandas.GeoSeries([Polygon(ring), LineString(ring[:2])], crs=None)
    out = geometry_to_wgs84(series, "gcj02")
    assert out.crs == "EPSG:4326"
    lon, lat = chinacrs.gcj02_to_wgs84(*np.array(ring).T)
    np.testing.assert_allclose(np.array(out.iloc[0].exterior.coords), np.column_stack([lon, lat]), atol=1e-12)
    assert out.iloc[1].geom_type == "LineString"


def test_geometry_to_wgs84_frame_keeps_columns_and_index():
    gdf = geopandas.GeoDataFrame(
        {"code": ["a", "b"]}, geometry=[Point(500000, 3306000), Point(510000, 3306000)], index=[7, 9]
    )
    out = geometry_to_wgs84(gdf, "EPSG:4549")
    assert list(out.index) == [7, 9] and list(out["code"]) == ["a", "b"]
    assert out.crs == "EPSG:4326"
    assert out.geometry.x.iloc[0] == pytest.approx(120.0, abs=1e-9)
    assert gdf.crs is None and gdf.geometry.x.iloc[0] == 500000  # input untouched


def test_geometry_to_wgs84_refuses_silent_reprojection():
    gdf = geopandas.GeoDataFrame(geometry=[Point(121.5, 29.8)], crs="EPSG:4326")
    with pytest.raises(BadParameter, match="data is in EPSG:4326 but crs gcj02 was given"):
        geometry_to_wgs84(gdf, "gcj02")
    # The same CRS spelled differently is fine.
    assert geometry_to_wgs84(gdf, "wgs84").geometry.x.iloc[0] == 121.5


def test_crsspec_is_hashable_and_prints_short():
    assert {parse_crs("EPSG:4549"), CrsSpec("proj", "EPSG:4549")} == {CrsSpec("proj", "EPSG:4549")}
    assert str(parse_crs("epsg:4549")) == "EPSG:4549"
