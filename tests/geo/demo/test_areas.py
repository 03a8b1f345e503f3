"""The demo hierarchy: counts, codes, names, exact nesting and tiling, realistic density."""

import numpy as np
import pytest
import shapely

from geo.demo.areas import DISTRICTS, N_GRIDS
from geo.demo.tessellate import allocate

M2_CRS = "EPSG:4549"  # CGCS2000 Gauss-Krüger, metres


def test_level_counts(atlas):
    sizes = {lv: len(df) for lv, df in atlas.layers.items()}
    assert sizes["district"] == 10
    assert sizes["town"] == 156
    assert 3_100 <= sizes["village"] <= 3_300
    assert sizes["grid"] == 10_205


@pytest.mark.parametrize("level, digits", [("district", 6), ("town", 9), ("village", 12), ("grid", 15)])
def test_codes_nest_by_prefix_and_are_unique(atlas, level, digits):
    layer = atlas.layers[level]
    assert layer["code"].is_unique
    assert (layer["code"].str.len() == digits).all()
    assert layer["code"].str.isdigit().all()
    if level != "district":
        assert (layer["code"].str.slice(0, digits - 3) == layer["parent"]).all()
        parents = atlas.layers[{"town": "district", "village": "town", "grid": "village"}[level]]
        assert set(layer["parent"]) == set(parents["code"])  # every parent has children


def test_names_are_chinese_and_unique_within_parent(atlas):
    for level in ("town", "village"):
        layer = atlas.layers[level]
        assert layer["name"].str.contains(r"[\u4e00-\u9fff]").all()
        assert not layer.duplicated(["parent", "name"]).any()


def test_yunlong_has_seven_villages_with_jiacun(atlas):
    town = atlas.get("330212101")
    assert town["name"] == "云龙镇"
    villages = atlas.children("330212101")
    assert len(villages) == 7
    assert "甲村" in set(villages["name"])


def test_yunlong_has_three_road_checkpoints(atlas):
    cps = atlas.checkpoints
    roads = cps[(cps["kind"] == "road") & cps["grid_code"].str.startswith("330212101")]
    assert len(roads) == 3


def test_grid_counts_follow_population(atlas):
    per_district = atlas.grids["code"].str.slice(0, 6).value_counts()
    expected = allocate(N_GRIDS, [DISTRICTS[c][1] for c in DISTRICTS])
    assert [per_district[c] for c in DISTRICTS] == list(expected)
    # 慈溪 (183.0) has more grids than 江北 (48.9), by about the population ratio.
    assert per_district["330282"] / per_district["330205"] == pytest.approx(183.0 / 48.9, rel=0.01)


@pytest.mark.parametrize("child, parent", [("town", "district"), ("village", "town"), ("grid", "village")])
def test_each_area_lies_in_its_parent(atlas, child, parent):
    kids = atlas.layers[child].to_crs(M2_CRS)
    parents = atlas.layers[parent].to_crs(M2_CRS).set_index("code").geometry
    outside = shapely.area(shapely.difference(kids.geometry.to_numpy(), parents.loc[kids["parent"]].to_numpy()))
    assert outside.max() < 1.0, f"{kids['code'].iloc[outside.argmax()]} sticks out of its parent by {outside.max():.3f} m²"


@pytest.mark.parametrize("level", ["town", "village", "grid"])
def test_no_overlaps_between_siblings(atlas, level):
    layer = atlas.layers[level].to_crs(M2_CRS)
    geoms = layer.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    overlap = shapely.area(shapely.intersection(geoms[left[keep]], geoms[right[keep]]))
    assert keep.sum() > len(geoms)  # neighbours do touch
    assert overlap.max() < 1.0, f"overlap of {overlap.max():.3f} m²"


@pytest.mark.parametrize("level", ["town", "village", "grid"])
def test_no_gaps_inside_each_district(atlas, level):
    layer = atlas.layers[level].to_crs(M2_CRS)
    districts = atlas.layers["district"].to_crs(M2_CRS).set_index("code").geometry
    for dcode, group in layer.groupby(layer["code"].str.slice(0, 6)):
        gap = shapely.area(shapely.difference(districts[dcode], shapely.union_all(group.geometry.to_numpy())))
        assert gap < 1.0, f"{level}s leave {gap:.3f} m² uncovered in {dcode}"


def test_grids_are_small_in_the_urban_core_and_large_in_the_hills(atlas):
    grids = atlas.grids.to_crs(M2_CRS)
    area_km2 = grids.area / 1e6
    centroid = atlas.grids.representative_point()
    core = (centroid.distance(shapely.Point(121.55, 29.875)) < 0.03).to_numpy()  # about 3 km around 三江口
    assert core.sum() > 100
    assert 0.05 <= np.median(area_km2[core]) <= 0.3
    assert area_km2.max() > 3.0
    assert np.median(area_km2[~core]) > 2 * np.median(area_km2[core])


def test_every_geometry_is_valid_and_polygonal(atlas):
    for level, layer in atlas.layers.items():
        assert layer.is_valid.all(), level
        assert set(layer.geom_type) <= {"Polygon", "MultiPolygon"}, level
