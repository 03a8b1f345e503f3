"""The demo hierarchy: Ningbo's real towns, counts, codes, names, exact nesting and tiling,
realistic placement and density."""

import numpy as np
import pandas as pd
import pytest
import shapely

from geo.demo.areas import DISTRICTS, N_GRIDS, read_towns
from geo.demo.density import density
from geo.demo.tessellate import allocate
from geo.settings import PROJECT_ROOT

M2_CRS = "EPSG:4549"  # CGCS2000 Gauss-Krüger, metres
TOWNS_FILE = PROJECT_ROOT / "data" / "shapes" / "towns_2020.csv"
# Where each district's streets should cluster: 三江口 for the three central districts, the
# county seat's centre for the others.
SANJIANGKOU = (121.550, 29.875)
CORES = {"330203": SANJIANGKOU, "330205": SANJIANGKOU, "330212": SANJIANGKOU,
         "330206": (121.85, 29.905), "330211": (121.715, 29.955), "330281": (121.155, 30.04),
         "330282": (121.255, 30.17), "330213": (121.405, 29.655), "330226": (121.43, 29.29),
         "330225": (121.875, 29.475)}
KIND = {"0": "街道", "1": "镇", "2": "乡", "4": "special"}


def test_level_counts(atlas):
    sizes = {lv: len(df) for lv, df in atlas.layers.items()}
    assert sizes["district"] == 10
    assert sizes["town"] == 160
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


def test_towns_are_the_official_2020_units_by_code_and_name(atlas):
    official = pd.read_csv(TOWNS_FILE, dtype=str)
    assert len(official) == 160
    towns = atlas.layers["town"]
    demo = set(zip(towns["code"], towns["name"], towns["parent"]))
    assert demo == set(zip(official["code"], official["name"], official["district"]))
    assert atlas.get("330212101")["name"] == "咸祥镇"


def test_no_district_holds_a_town_of_another(atlas):
    official = pd.read_csv(TOWNS_FILE, dtype=str).set_index("code")["district"]
    towns = atlas.layers["town"].to_crs(M2_CRS)
    districts = atlas.layers["district"].to_crs(M2_CRS)
    # The district each town's area lies in, found by geometry rather than by code.
    inner = towns.geometry.representative_point()
    where = shapely.STRtree(districts.geometry.to_numpy()).query(inner.to_numpy(), predicate="within")
    holder = pd.Series(districts["code"].to_numpy()[where[1]], index=towns["code"].to_numpy()[where[0]])
    assert len(holder) == len(towns) and holder.index.is_unique
    assert (holder == official.reindex(holder.index)).all(), holder[holder != official.reindex(holder.index)]


def _km_to_core(layer):
    pts = layer.geometry.representative_point()
    core = np.array([CORES[c[:6]] for c in layer["code"]])
    dx = (pts.x.to_numpy() - core[:, 0]) * 111.2 * np.cos(np.radians(29.9))
    dy = (pts.y.to_numpy() - core[:, 1]) * 111.2
    return np.hypot(dx, dy)


def test_streets_form_each_districts_core_towns_around_them_townships_further_out(atlas):
    towns = atlas.layers["town"].copy()
    towns["kind"] = towns["code"].str.slice(6, 7).map(KIND)
    towns["km"] = _km_to_core(towns)
    mean = towns.groupby(["parent", "kind"])["km"].mean().unstack()
    for district, row in mean.iterrows():
        present = [row[k] for k in ("街道", "镇", "乡") if not np.isnan(row.get(k, np.nan))]
        assert present == sorted(present), f"{district}: mean km to the core {row.to_dict()}"
    # 鄞州's streets sit around 三江口, its towns (镇) in the countryside beyond.
    assert mean.loc["330212", "街道"] < 12 < mean.loc["330212", "镇"]
    special = towns[towns["kind"] == "special"]
    streets = mean["街道"].reindex(special["parent"]).to_numpy()
    assert (special["km"].to_numpy() > streets).all()


def test_smaller_towns_where_the_density_is_higher(atlas):
    towns = atlas.layers["town"]
    km2 = towns.to_crs(M2_CRS).area.to_numpy() / 1e6
    pts = towns.geometry.representative_point()
    dens = density(pts.x.to_numpy(), pts.y.to_numpy())
    rank_corr = pd.Series(km2).rank().corr(pd.Series(dens).rank())
    assert rank_corr < -0.5
    kind = towns["code"].str.slice(6, 7).to_numpy()
    assert np.median(km2[kind == "0"]) * 2 < np.median(km2[kind == "1"])


def test_village_names_are_villages_under_towns_and_communities_under_streets(atlas):
    villages = atlas.layers["village"]
    kind = villages["parent"].str.slice(6, 7)
    assert villages.loc[kind == "0", "name"].str.endswith("社区").all()
    assert villages.loc[kind.isin(["1", "2"]), "name"].str.endswith("村").all()
    assert (kind == "0").sum() > 500 and kind.isin(["1", "2"]).sum() > 1000


def test_yunlong_is_330212108_with_seven_villages_the_first_jiacun(atlas):
    town = atlas.get("330212108")
    assert town["name"] == "云龙镇" and town["parent"] == "330212"
    villages = atlas.children("330212108").sort_values("code")
    assert villages["code"].tolist() == [f"330212108{k:03d}" for k in range(1, 8)]
    assert villages["name"].iloc[0] == "甲村"
    assert villages["name"].str.endswith("村").all()


def test_yunlong_has_three_road_checkpoints(atlas):
    cps = atlas.checkpoints
    roads = cps[(cps["kind"] == "road") & cps["grid_code"].str.startswith("330212108")]
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


@pytest.mark.parametrize("rows, bad", [
    ("330212108,云龙镇,330212\n330212108,云龙镇,330212\n", "330212108"),   # repeated
    ("330203001,南门街道,330212\n", "330203001"),                          # in another district
    ("33021210,云龙镇,330212\n", "33021210"),                              # 8 digits
    ("330212308,云龙镇,330212\n", "330212308"),                            # no such kind (3xx)
])
def test_a_town_list_with_bad_codes_is_refused_by_name(tmp_path, rows, bad):
    path = tmp_path / "towns.csv"
    path.write_text("code,name,district\n" + rows, encoding="utf-8")
    with pytest.raises(ValueError, match=f"town codes: {bad}$"):
        read_towns(path)
