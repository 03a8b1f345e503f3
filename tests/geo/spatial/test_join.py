"""The exact join: equal to geopandas.sjoin(within) off edges, one grid per edge point."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from geo.errors import BadParameter
from geo.spatial.join import OUTSIDE, GridIndex, assign_grids


def _sjoin_index(polygons, x, y) -> np.ndarray:
    grids = gpd.GeoDataFrame(geometry=list(polygons), crs="EPSG:4326")
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs="EPSG:4326")
    joined = gpd.sjoin(pts, grids, predicate="within", how="left")
    joined = joined[~joined.index.duplicated()]
    ref = np.full(len(x), OUTSIDE)
    hit = joined["index_right"].notna().to_numpy()
    ref[joined.index[hit]] = joined["index_right"][hit].astype(int)
    return ref


def test_oracle_against_sjoin_on_100k_random_points(atlas):
    """At least 100,000 points over the whole city's bounding box, inside and outside."""
    rng = np.random.default_rng(42)
    minx, miny, maxx, maxy = atlas.grids.total_bounds
    n = 120_000
    # Half uniform over the box, half concentrated in the dense urban core.
    x = np.concatenate([rng.uniform(minx, maxx, n // 2), rng.normal(121.55, 0.03, n // 2)])
    y = np.concatenate([rng.uniform(miny, maxy, n // 2), rng.normal(29.875, 0.03, n // 2)])
    polygons = atlas.grids.geometry.to_numpy()
    ours = GridIndex(polygons).assign(x, y)
    ref = _sjoin_index(polygons, x, y)
    assert (ours >= 0).sum() > 60_000 and (ours == OUTSIDE).sum() > 10_000
    np.testing.assert_array_equal(ours, ref)


def test_raster_and_exact_paths_agree(atlas):
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = atlas.grids.total_bounds
    x, y = rng.uniform(minx, maxx, 50_000), rng.uniform(miny, maxy, 50_000)
    index = GridIndex(atlas.grids.geometry.to_numpy())
    np.testing.assert_array_equal(index.assign(x, y), index.assign_exact(x, y))


# Four unit squares around (1, 1), a square with a hole, and a two-part multipolygon.
SQUARES = [box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2), box(1, 1, 2, 2)]
HOLED = Polygon([(3, 0), (6, 0), (6, 3), (3, 3)], [[(4, 1), (5, 1), (5, 2), (4, 2)]])
ISLAND = box(4.25, 1.25, 4.75, 1.75)  # inside the hole
MULTI = MultiPolygon([box(7, 0, 8, 1), box(9, 0, 10, 1)])
SHAPES = SQUARES + [HOLED, ISLAND, MULTI]


@pytest.mark.parametrize("x, y, expected, why", [
    (0.5, 0.5, 0, "interior"),
    (1.0, 0.5, 0, "edge between 0 and 1: smaller index"),
    (1.5, 1.0, 1, "edge between 1 and 3: smaller index"),
    (1.0, 1.0, 0, "vertex shared by four grids: smallest index"),
    (0.0, 0.5, 0, "outer edge belongs to its only grid"),
    (4.5, 1.1, OUTSIDE, "in a hole"),
    (4.5, 1.5, 5, "on an island inside the hole"),
    (4.25, 1.5, 5, "on the island's edge (the hole's inside)"),
    (3.5, 0.5, 4, "in the holed polygon"),
    (9.5, 0.5, 6, "second part of a multipolygon"),
    (8.5, 0.5, OUTSIDE, "between the parts of a multipolygon"),
    (50.0, 50.0, OUTSIDE, "far outside"),
    (np.nan, 0.5, OUTSIDE, "NaN coordinate"),
])
def test_edge_rule_holes_islands_multipolygons(x, y, expected, why):
    index = GridIndex(SHAPES, cell_size=0.1)
    assert index.assign([x], [y])[0] == expected, why
    assert index.assign_exact([x], [y])[0] == expected, why


def test_points_on_every_shared_edge_go_to_exactly_one_grid(atlas):
    """Vertices of the grid boundaries themselves: each lands in one of its grids."""
    polygons = atlas.grids.geometry.to_numpy()
    coords = shapely.get_coordinates(shapely.boundary(polygons[:300]))[::7]
    idx = GridIndex(polygons).assign(coords[:, 0], coords[:, 1])
    assert (idx >= 0).all()
    touching = shapely.STRtree(polygons).query(shapely.points(coords), predicate="intersects")
    smallest = np.full(len(coords), 10**9)
    np.minimum.at(smallest, touching[0], touching[1])
    np.testing.assert_array_equal(idx, smallest)


def test_assign_grids_returns_codes_and_refuses_projected_grids():
    grids = gpd.GeoDataFrame({"code": ["b", "a"]}, geometry=[box(1, 0, 2, 1), box(0, 0, 1, 1)], crs="EPSG:4326")
    assert list(assign_grids(grids, [0.5, 1.0, 5.0], [0.5, 0.5, 5.0])) == ["a", "a", None]
    with pytest.raises(BadParameter, match="EPSG:4326"):
        assign_grids(grids.set_crs("EPSG:3857", allow_override=True), [0.5], [0.5])
