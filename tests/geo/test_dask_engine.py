"""The Dask engine gives exactly the local engine's answer, on a real LocalCluster of 2 workers,
for the join itself and for a whole import."""


import numpy as np
import pandas as pd
import pytest

from geo.dask_engine import assign_dask
from geo.store import open_store
from tests.stores import copy_settings, use_location


@pytest.mark.slow
def test_dask_join_equals_local_join_on_a_real_local_cluster(atlas):
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = atlas.grids.total_bounds
    n = 60_000
    x = np.concatenate([rng.uniform(minx, maxx, n // 2), rng.normal(121.55, 0.03, n // 2)])
    y = np.concatenate([rng.uniform(miny, maxy, n // 2), rng.normal(29.875, 0.03, n // 2)])
    x[:3] = [np.nan, np.inf, 200.0]  # unusable and far-away points stay outside
    local = atlas.grid_index.assign(x, y)
    # Small partitions force several spatial partitions, each joined against its own grid subset.
    distributed = assign_dask(atlas.grids.geometry.to_numpy(), x, y, n_workers=2, points_per_partition=15_000)
    assert (local >= 0).sum() > 30_000
    np.testing.assert_array_equal(distributed, local)


@pytest.mark.slow
def test_ingest_on_a_dask_scheduler_stores_what_the_local_engine_stores(demo_settings, atlas, tmp_path, monkeypatch):
    from distributed import LocalCluster

    from geo import count_store
    from geo.cli import main
    from geo.ingest import ingest_file

    rng = np.random.default_rng(8)
    minx, miny, maxx, maxy = atlas.grids.total_bounds
    n = 4000
    frame = pd.DataFrame({
        "编号": [f"D{i}" for i in range(n)],
        "日期": (np.datetime64("2020-02-01") + rng.integers(0, 40, n).astype("timedelta64[D]")).astype(str),
        "经度": rng.uniform(minx, maxx, n), "纬度": rng.uniform(miny, maxy, n),
    })
    frame.to_csv(tmp_path / "visits.csv", index=False)

    def state(settings):
        con = open_store(settings).connect()
        try:
            return (con.execute("SELECT metric, record_id, day, lon, lat, grid_code FROM records "
                                "ORDER BY 1, 2").fetchall(),
                    count_store.counts_rows(con).to_records(index=False).tolist())
        finally:
            con.close()

    copies = {}
    for name in ("local", "dask"):
        copies[name] = copy_settings(demo_settings, tmp_path / name, secret_key="test")
    local = ingest_file(copies["local"], tmp_path / "visits.csv", metric="visits", atlas=atlas)
    assert local.accepted > 1000 and local.rejected > 100  # part of the box is outside the city
    # The command line with --scheduler: the join runs on a real cluster of 2 worker processes.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        use_location(monkeypatch, copies["dask"])
        assert main(["ingest", str(tmp_path / "visits.csv"), "--metric", "visits",
                     "--engine", "dask", "--scheduler", cluster.scheduler_address]) == 0
        assert cluster.scheduler.transition_counter > 0  # the join did run on this cluster
    assert state(copies["dask"]) == state(copies["local"])
