"""Tests for geo.chinacrs: published reference pairs, the real Amap outline, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geo.spatial import chinacrs
from geo.spatial.chinacrs import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    out_of_china,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

ROOT = Path(__file__).resolve().parents[3]
GCJ_FIXTURE = ROOT / "tests" / "fixtures" / "yinzhou_amap_gcj02.geojson"
WGS_DISTRICTS = ROOT / "data" / "shapes" / "districts_wgs84.geojson"

# Widely cited reference outputs for the input (116.404, 39.915) (Tiananmen), e.g. the README
# of wandergis/coordtransform. The forward formulas are exact; that library's inverses are the
# one-step approximations, ours iterate, hence the looser tolerance for the inverses.
REFERENCE = [
    (wgs84_to_gcj02, (116.41024449916938, 39.91640428150164), 1e-9),
    (gcj02_to_bd09, (116.41036949371029, 39.92133699351021), 1e-9),
    (wgs84_to_bd09, (116.41662724378733, 39.922699552216216), 1e-9),
    (gcj02_to_wgs84, (116.39775550083061, 39.91359571849836), 1e-6),
    (bd09_to_gcj02, (116.39762729119315, 39.90865673957631), 1e-6),
]

FUNCTIONS = [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09, bd09_to_wgs84]
ROUND_TRIPS = [
    (wgs84_to_gcj02, gcj02_to_wgs84),
    (gcj02_to_bd09, bd09_to_gcj02),
    (wgs84_to_bd09, bd09_to_wgs84),
]


@pytest.mark.parametrize(("func", "expected", "tol"), REFERENCE, ids=lambda v: getattr(v, "__name__", ""))
def test_published_reference_pair(func, expected, tol):
    lon, lat = func(116.404, 39.915)
    assert float(lon) == pytest.approx(expected[0], abs=tol)
    assert float(lat) == pytest.approx(expected[1], abs=tol)


def test_gcj_offset_is_a_few_hundred_metres_in_ningbo():
    lon, lat = wgs84_to_gcj02(121.55, 29.87)
    # 1e-3 degree is about 100 m here; the Ningbo offset is roughly 480 m east, 260 m north.
    assert 0.003 < float(lon) - 121.55 < 0.006
    assert -0.004 < float(lat) - 29.87 < -0.001 or 0.001 < float(lat) - 29.87 < 0.004


@pytest.mark.parametrize(("forward", "inverse"), ROUND_TRIPS, ids=lambda f: f.__name__)
def test_round_trip_is_exact_within_1e_9_degree(forward, inverse):
    rng = np.random.default_rng(2020)
    lon = rng.uniform(74.0, 134.0, 2000)
    lat = rng.uniform(19.0, 53.0, 2000)
    back_lon, back_lat = inverse(*forward(lon, lat))
    assert np.abs(back_lon - lon).max() < 1e-9
    assert np.abs(back_lat - lat).max() < 1e-9


def test_inverse_is_better_than_the_one_step_approximation():
    wlon, wlat = np.array([121.55, 87.6, 126.6]), np.array([29.87, 43.8, 45.75])
    glon, glat = wgs84_to_gcj02(wlon, wlat)
    one_step_lon = 2 * glon - wgs84_to_gcj02(glon, glat)[0]
    lon, _ = gcj02_to_wgs84(glon, glat)
    assert np.abs(one_step_lon - wlon).max() > 1e-6  # the approximation is off by about a metre
    assert np.abs(lon - wlon).max() < 1e-9


def _yinzhou_rings():
    gcj = json.loads(GCJ_FIXTURE.read_text(encoding="utf-8"))
    districts = json.loads(WGS_DISTRICTS.read_text(encoding="utf-8"))
    wgs = next(f["geometry"] for f in districts["features"] if f["properties"]["adcode"] == "330212")
    return np.array(gcj["coordinates"][0][0]), np.array(wgs["coordinates"][0][0])


def test_amap_outline_vertices_correspond_one_to_one():
    gcj, wgs = _yinzhou_rings()
    assert gcj.shape == wgs.shape == (745, 2)
    lon, lat = gcj02_to_wgs84(gcj[:, 0], gcj[:, 1])
    # Same order: every vertex lands a couple of metres at most from its WGS84 counterpart,
    # while the GCJ-02 offset itself is about 500 m.
    assert np.abs(gcj - wgs).max() > 3e-3
    assert np.abs(lon - wgs[:, 0]).max() < 2e-5
    assert np.abs(lat - wgs[:, 1]).max() < 2e-5


def test_amap_outline_reference_file_is_the_one_step_approximation():
    """The committed WGS84 outline was made with the common one-step inverse (rounded to 6
    decimals), which is off by up to ~1.6e-5 degree (~1.5 m); ours inverts to ~1e-10."""
    gcj, wgs = _yinzhou_rings()
    glon, glat = wgs84_to_gcj02(gcj[:, 0], gcj[:, 1])
    np.testing.assert_array_equal(np.round(2 * gcj[:, 0] - glon, 6), wgs[:, 0])
    np.testing.assert_array_equal(np.round(2 * gcj[:, 1] - glat, 6), wgs[:, 1])

    lon, lat = gcj02_to_wgs84(gcj[:, 0], gcj[:, 1])
    ours = np.column_stack(wgs84_to_gcj02(lon, lat))
    theirs = np.column_stack(wgs84_to_gcj02(wgs[:, 0], wgs[:, 1]))
    assert np.abs(ours - gcj).max() < 1e-9
    assert np.abs(theirs - gcj).max() > 1e-5


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(2.3522, 48.8566), (139.6917, 35.6895), (-74.006, 40.7128), (151.2093, -33.8688)],
)
@pytest.mark.parametrize("func", [wgs84_to_gcj02, gcj02_to_wgs84], ids=lambda f: f.__name__)
def test_points_outside_china_are_unchanged_by_gcj(func, lon, lat):
    assert out_of_china(lon, lat)
    out_lon, out_lat = func(lon, lat)
    assert (float(out_lon), float(out_lat)) == (lon, lat)


def test_out_of_china_box():
    lon = np.array([72.0, 72.1, 137.9, 121.5, 121.5, np.nan])
    lat = np.array([30.0, 30.0, 30.0, 0.5, 55.9, 30.0])
    assert out_of_china(lon, lat).tolist() == [True, False, True, True, True, False]


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_vectorised_keeps_shape_nan_and_inputs(func):
    lon = np.array([[121.5, np.nan], [121.6, 121.7]])
    lat = np.array([[29.8, 29.9], [np.nan, 30.0]])
    before = lon.copy(), lat.copy()
    out_lon, out_lat = func(lon, lat)
    assert out_lon.shape == out_lat.shape == (2, 2)
    assert out_lon.dtype == np.float64
    assert np.isnan(out_lon[0, 1]) and np.isnan(out_lat[1, 0])
    assert np.isfinite(out_lon[1, 1]) and np.isfinite(out_lat[1, 1])
    np.testing.assert_array_equal(lon, before[0])
    np.testing.assert_array_equal(lat, before[1])


@pytest.mark.parametrize("func", FUNCTIONS, ids=lambda f: f.__name__)
def test_accepts_lists_and_scalars(func):
    lon, lat = func([121.5, 121.6], [29.8, 29.9])
    assert lon.shape == (2,)
    slon, slat = func(121.5, 29.8)
    assert float(slon) == pytest.approx(lon[0]) and float(slat) == pytest.approx(lat[0])


def test_bd09_is_about_a_kilometre_from_wgs84_in_ningbo():
    lon, lat = wgs84_to_bd09(121.55, 29.87)
    assert 0.008 < float(lon) - 121.55 < 0.014
    assert 0.001 < float(lat) - 29.87 < 0.006


def test_tolerance_constant_is_1e_minus_7_degrees():
    assert chinacrs._TOLERANCE_DEG == 1e-7
