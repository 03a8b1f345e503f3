"""The Dask engine gives exactly the local engine's answer, on a real LocalCluster of 2 workers,
for the join itself and for a whole import."""


import numpy as np
import pandas as pd
import pytest

from geo.ingest.dask_engine import assign_dask
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

    from geo.cli.main import main
    from geo.ingest.imports import ingest_file
    from geo.store import counts as count_store

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


@pytest.mark.slow
def test_a_rebuild_on_dask_reads_the_files_on_the_workers_and_equals_the_local_one(atlas, tmp_path):
    from geo.atlas.metrics import N_DAYS
    from geo.ingest.dask_engine import count_event_files
    from geo.ingest.eventfiles import read_event_arrays, write_events

    rng = np.random.default_rng(11)
    minx, miny, maxx, maxy = atlas.geometry_of("330212").bounds  # 鄞州区 and its neighbours
    files = {}
    for m, n in ((0, 20_000), (4, 6_000)):
        x = rng.uniform(minx, maxx, n)
        y = rng.uniform(miny, maxy, n)
        x[:5] = [np.nan, 100.0, 121.0, 125.0, 121.5]  # unusable, and far outside the city
        day = rng.integers(-3, N_DAYS + 3, n)  # a few outside the period
        order = np.lexsort((day, atlas.grid_index.assign(x, y)))  # grid order, as the demo writes
        files[m] = tmp_path / f"m{m}.parquet"
        write_events(files[m], np.arange(n), day[order], x[order], y[order], row_group_size=4_000)

    cube, stats = count_event_files(atlas.grids.geometry.to_numpy(), files, n_workers=2)

    for m, path in files.items():
        x, y, day = read_event_arrays(path)
        grid = atlas.grid_index.assign(x, y)
        ok = (grid >= 0) & (day >= 0) & (day < N_DAYS)
        expected = np.zeros((len(atlas.grid_codes), N_DAYS), dtype=np.int64)
        np.add.at(expected, (grid[ok], day[ok]), 1)
        np.testing.assert_array_equal(cube[m], expected)
        assert stats[m] == (len(x), int((grid < 0).sum()), int(((grid >= 0) & ~ok).sum()))
        assert expected.sum() > 1000 and stats[m][1] > 0 and stats[m][2] > 0
    assert not cube[[1, 2, 3]].any()
