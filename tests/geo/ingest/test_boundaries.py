"""Grid boundary updates: checked before anything changes; on success counts move with them.

The new grids are built from the demo's own grids of 云龙镇 (330212108): moving one grid to
the neighbouring village re-zones without changing the outline, and spoiling the copy in
several ways at once must list every problem.
"""

from __future__ import annotations

import hashlib
import re

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.atlas.areas import areas_file
from geo.cli.main import main
from geo.ingest.boundaries import GridUpdateRefused, check_tiling, update_grids
from geo.ingest.imports import ingest_file, recent_imports
from geo.ingest.rebuild import compute_cube
from geo.query.counts import CountCube
from geo.query.service import AtlasService
from geo.store import counts as count_store
from geo.store import open_store
from tests.stores import copy_settings, use_location

TOWN = "330212108"  # 云龙镇


@pytest.fixture
def settings(demo_settings, tmp_path):
    data = tmp_path / "data"
    return copy_settings(demo_settings, data, secret_key="test")


@pytest.fixture(scope="module")
def town_grids(atlas) -> gpd.GeoDataFrame:
    grids = atlas.grids
    return grids[grids["code"].str.startswith(TOWN)][["code", "name", "geometry"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def move(atlas, town_grids):
    """(grid code, from village, to village, new code): a grid of one village that touches another."""
    villages = atlas.children(TOWN)["code"].tolist()
    geoms = {v: shapely.union_all(town_grids[town_grids["code"].str.startswith(v)].geometry.to_numpy()) for v in villages}
    for a in villages:
        mine = town_grids[town_grids["code"].str.startswith(a)]
        if len(mine) < 2:
            continue
        for b in villages:
            if b == a:
                continue
            touching = mine[mine.geometry.intersects(geoms[b])]
            if len(touching):
                code = touching["code"].iloc[0]
                last = max(int(c[12:]) for c in town_grids["code"] if c.startswith(b))
                return code, a, b, f"{b}{last + 1:03d}"
    raise AssertionError("no movable grid in the town")


def _write(gdf: gpd.GeoDataFrame, path) -> str:
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    return str(path)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _store_state(settings):
    with open_store(settings).snapshot() as con:
        return (con.execute("SELECT key, value FROM meta WHERE key IN ('version', 'areas_version') "
                            "ORDER BY key").fetchall(),
                con.execute("SELECT * FROM records ORDER BY 1, 2").fetchall(),
                count_store.counts_rows(con).to_records(index=False).tolist())


def test_the_demo_grids_tile_their_town(atlas, town_grids):
    assert check_tiling(atlas, town_grids, TOWN) == []


@pytest.mark.both_stores
def test_a_boundary_update_moves_a_village_s_counts(settings, atlas, town_grids, move, tmp_path):
    code, village_a, village_b, new_code = move
    # Three records inside the grid that moves, so that it certainly carries counts.
    point = town_grids.set_index("code").geometry[code].representative_point()
    records = tmp_path / "records.csv"
    records.write_text("id,date,lon,lat\n" + "".join(f"M{i},2020-02-0{i + 1},{point.x!r},{point.y!r}\n" for i in range(3)))
    ingest_file(settings, records, metric="visits", atlas=atlas)

    service = AtlasService(settings)
    before = service.child_values(TOWN, "visits").set_index("code")["value"]
    moving = service.child_values(code, "visits")["value"].iloc[0]
    assert moving >= 3

    new = town_grids.copy()
    new.loc[new["code"] == code, "code"] = new_code
    path = _write(new.drop(columns="name"), tmp_path / "yunlong.geojson")

    gpkg_before, state_before = _digest(areas_file(settings.demo_dir)), _store_state(settings)
    dry = update_grids(settings, path, dry_run=True)
    assert (_digest(areas_file(settings.demo_dir)), _store_state(settings)) == (gpkg_before, state_before)
    assert {c["code"] for c in dry.count_changes if c["metric"] == "visits"} == {village_a, village_b}

    report = update_grids(settings, path)
    assert (report.added, report.removed, report.grids_after) == ([new_code], [code], len(town_grids))
    assert report.records_moved >= 3
    text = "\n".join(report.lines())
    assert f"{village_a} " in text and f"visits {before[village_a]:,} -> {before[village_a] - moving:,}" in text

    # The same service object, no restart: new areas and new counts.
    after = service.child_values(TOWN, "visits").set_index("code")["value"]
    assert after[village_a] == before[village_a] - moving
    assert after[village_b] == before[village_b] + moving
    assert after.sum() == before.sum()
    assert service.child_values(new_code, "visits")["value"].iloc[0] == moving
    assert new_code in service.atlas.grid_codes and code not in service.atlas.grid_codes

    # The records follow, the villages are re-outlined, and the counts equal a full rebuild.
    store = open_store(settings)
    assert {r[0] for r in store.query("SELECT grid_code FROM records WHERE record_id LIKE 'M%'")} == {new_code}
    fresh = store.load_atlas(settings.demo_dir)
    outline = fresh.geometry_of(village_b)
    assert outline.contains(point) and not fresh.geometry_of(village_a).contains(point)
    assert fresh.grids.loc[fresh.grids["code"] == new_code, "name"].iloc[0].endswith(f"第{int(new_code[12:])}网格")
    cube, _, _ = compute_cube(fresh, store, settings.demo_dir / "events",
                              settings.demo_dir / "checkpoint_checks.parquet")
    assert np.array_equal(CountCube.load(store, fresh).values, cube)
    assert check_tiling(fresh, fresh.grids[fresh.grids["code"].str.startswith(TOWN)], TOWN) == []
    assert recent_imports(settings)[0]["kind"] == "grids"  # the update is in the import log


def _spoiled(atlas, town_grids) -> gpd.GeoDataFrame:
    """The town's grids with one problem of every kind."""
    bad = town_grids.drop(columns="name").copy()
    codes = bad["code"].tolist()
    geoms = bad.geometry.to_numpy().copy()
    geoms[0] = shapely.buffer(geoms[0], 0.0005)  # about 50 m: overlaps its neighbours
    x0, y0, x1, y1 = geoms[3].bounds
    geoms[3] = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # a bow tie: invalid
    codes[5] = codes[6]                                # duplicate code
    codes[7] = "330212102001001"                       # belongs to another town
    codes[8] = f"{TOWN}999001"                         # no such village
    bad = gpd.GeoDataFrame({"code": codes}, geometry=geoms, crs=town_grids.crs)
    return bad.drop(index=[10])                         # a hole where grid 10 was


@pytest.mark.both_stores
def test_bad_grids_are_refused_with_every_problem_and_nothing_changes(settings, atlas, town_grids, tmp_path):
    bad = _spoiled(atlas, town_grids)
    path = _write(bad, tmp_path / "bad.geojson")
    gpkg_before, state_before = _digest(areas_file(settings.demo_dir)), _store_state(settings)
    with pytest.raises(GridUpdateRefused) as caught:
        update_grids(settings, path, area=TOWN)
    problems = "\n".join(caught.value.problems)
    for pattern in [r"#3 \(code=\d{15}\): invalid geometry \(Self-intersection",
                    rf"code {town_grids['code'][6]} appears 2 times \(#5, #6\); codes must be unique",
                    rf"grid 330212102001001 is not inside {TOWN} 云龙镇",
                    rf"grid {TOWN}999001: village {TOWN}999 does not exist in {TOWN} 云龙镇",
                    r"gap of [\d,.]+ m² covered by no grid near \(121\.\d+, 29\.\d+\)",
                    rf"grids {town_grids['code'][0]} and \d+ overlap by [\d,.]+ m²|grids \d+ and {town_grids['code'][0]} overlap"]:
        assert re.search(pattern, problems), f"{pattern!r} not in:\n{problems}"
    assert "grid update refused, nothing was changed" in str(caught.value)
    assert (_digest(areas_file(settings.demo_dir)), _store_state(settings)) == (gpkg_before, state_before)


def test_a_village_left_without_grids_is_refused(atlas, town_grids):
    from geo.ingest.boundaries import prepare_grids

    villages = atlas.children(TOWN)["code"].tolist()
    gone, keep = villages[-1], villages[0]
    new = town_grids.drop(columns="name").copy()
    mine = new["code"].str.startswith(gone)
    new.loc[mine, "code"] = [f"{keep}{900 + i:03d}" for i in range(int(mine.sum()))]
    _, _, problems = prepare_grids(atlas, new, None)
    assert problems == [f"village {gone} {atlas.get(gone)['name']} would have no grid left"]


def test_cli_refusal_lists_the_problems_and_exits_non_zero(settings, atlas, town_grids, tmp_path, monkeypatch, capsys):
    use_location(monkeypatch, settings)
    path = _write(_spoiled(atlas, town_grids), tmp_path / "bad.geojson")
    assert main(["grids", "update", path]) == 4
    err = capsys.readouterr().err
    assert "grid update refused, nothing was changed" in err and "  - " in err and "Traceback" not in err


def test_an_area_that_is_not_a_town_or_district_is_a_bad_parameter(settings, town_grids, tmp_path):
    from geo.errors import BadParameter

    path = _write(town_grids.drop(columns="name"), tmp_path / "g.geojson")
    with pytest.raises(BadParameter, match="is a village; a grid update replaces a town"):
        update_grids(settings, path, area=f"{TOWN}001")
