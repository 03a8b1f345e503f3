"""The demo events: totals that follow the seed × scale, the period, determinism."""

import json
import subprocess

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geo.atlas.metrics import METRICS, N_DAYS, POINT_METRICS
from geo.demo.build import build_demo
from geo.demo.checkpoints import YUNLONG_CHECKS
from geo.demo.events import synthesise_events
from geo.ingest.eventfiles import event_path, read_event_arrays
from geo.settings import PROJECT_ROOT
from tests.conftest import DISTRICTS_FILE, TEST_SCALE


@pytest.mark.parametrize("metric", POINT_METRICS)
def test_event_totals_are_seed_times_scale(demo_settings, metric):
    x, y, day = read_event_arrays(event_path(demo_settings.demo_dir / "events", metric))
    assert len(x) == round(METRICS[metric].seed_total * TEST_SCALE)
    assert day.min() >= 0 and day.max() < N_DAYS


def test_event_files_are_geoparquet_that_geopandas_reads(demo_settings):
    gdf = gpd.read_parquet(event_path(demo_settings.demo_dir / "events", "disputes"))
    assert gdf.crs.to_epsg() == 4326 or gdf.crs.name.startswith("WGS 84")
    assert (gdf.geom_type == "Point").all()
    assert {"record_id", "date"} <= set(gdf.columns)
    assert gdf["record_id"].is_unique


def test_about_ten_thousand_checkpoints_denser_where_people_live(atlas):
    cps = atlas.checkpoints
    assert 9_500 <= len(cps) <= 10_500
    assert set(cps["kind"]) == {"road", "community_gate", "transport_hub"}
    assert cps["code"].is_unique
    grids = atlas.grids.set_index("code")
    per_grid = cps["grid_code"].value_counts().reindex(grids.index, fill_value=0)
    km2 = grids.geometry.to_crs("EPSG:4549").area / 1e6
    people_density = grids["households"] / km2
    dense = people_density >= people_density.quantile(0.9)
    sparse = people_density <= people_density.quantile(0.5)
    # Checkpoints per km² where people are densest vs where they are sparsest.
    assert per_grid[dense].sum() / km2[dense].sum() > 10 * per_grid[sparse].sum() / km2[sparse].sum()


def test_checkpoint_grid_codes_are_where_the_points_are(atlas):
    from geo.spatial.join import assign_grids

    cps = atlas.checkpoints
    codes = assign_grids(atlas.grids, cps.geometry.x.to_numpy(), cps.geometry.y.to_numpy())
    assert (codes == cps["grid_code"].to_numpy()).mean() > 0.999


def test_yunlong_road_checks_match_the_seed(demo_settings, atlas):
    checks = pd.read_parquet(demo_settings.demo_dir / "checkpoint_checks.parquet")
    cps = atlas.checkpoints
    roads = cps[(cps["kind"] == "road") & cps["code"].str.startswith("330212108")]["code"]
    assert checks[checks["checkpoint_code"].isin(roads)]["checks"].sum() == round(YUNLONG_CHECKS * TEST_SCALE)


def test_same_seed_same_areas_and_scale_changes_only_events(demo_files, tmp_path):
    """One more build with the shared demo's seed at half its scale: the same areas and
    checkpoints, half the events."""
    shared = demo_files / "demo"
    seed = json.loads((shared / "manifest.json").read_text())["seed"]
    half = build_demo(tmp_path / "half", DISTRICTS_FILE, scale=TEST_SCALE / 2, seed=seed, log=lambda *_: None)
    full = json.loads((shared / "manifest.json").read_text())
    assert half["seed"] == seed and half["events"]["visits"] == full["events"]["visits"] // 2
    for layer in ("town", "grid", "checkpoint"):
        a = gpd.read_file(shared / "areas.gpkg", layer=layer)
        b = gpd.read_file(tmp_path / "half" / "areas.gpkg", layer=layer)
        assert a["code"].tolist() == b["code"].tolist() and a.geometry.geom_equals(b.geometry).all(), layer


def test_same_seed_same_events(atlas, tmp_path):
    grids = atlas.grids
    first = synthesise_events(grids, tmp_path / "a", scale=0.0005, seed=11)
    again = synthesise_events(grids, tmp_path / "b", scale=0.0005, seed=11)
    other = synthesise_events(grids, tmp_path / "c", scale=0.0005, seed=12)
    assert first == again == other
    xa, xb, xc = (read_event_arrays(event_path(tmp_path / k, "visits")) for k in "abc")
    assert all(np.array_equal(p, q) for p, q in zip(xa, xb))
    assert not np.array_equal(xa[0], xc[0]), "another seed gives other points"


def _make_run_plan(data_dir, *args):
    """The commands `make run` would run on ``data_dir`` (a dry run, the tools taken as installed)."""
    proc = subprocess.run(["make", "-n", "-o", ".venv/bin/.installed", "-o", "web/assets/node_modules/.installed",
                           "run", f"DATA={data_dir}", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if " -m geo demo" in line]


def test_make_run_builds_the_demo_at_the_seeds_scale_once_and_a_smaller_one_on_request(tmp_path):
    assert _make_run_plan(tmp_path) == [".venv/bin/python -m geo demo --scale 1"]
    assert _make_run_plan(tmp_path, "SCALE=0.1") == [".venv/bin/python -m geo demo --scale 0.1"]
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / ".built-at-scale-1").touch()
    assert _make_run_plan(tmp_path) == []  # built already: served as it is
    assert _make_run_plan(tmp_path, "SCALE=0.1") == [".venv/bin/python -m geo demo --scale 0.1"]
