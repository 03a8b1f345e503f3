"""The join on a Dask cluster (``--engine dask``), with dask-geopandas on ``dask.distributed``.

Two ways in, one join:

* :func:`count_event_files` (the rebuild): the workers read the event files themselves, one
  Parquet row group per task, join its points and send back only their sums per (grid, day).
  The client never holds the points. The files must be readable by every worker at the same
  path (the same machine, or a shared file system).
* :func:`assign_dask` (an import, whose rows the client has already parsed and checked): the
  points go to the cluster and their grid comes back.

For :func:`assign_dask` the points are partitioned spatially (dask-geopandas' Hilbert ``spatial_shuffle``), so each
partition covers a compact patch of the city. Each worker then joins its partition with the
same exact :class:`geo.join.GridIndex` as the local engine, built over only the grids that
meet the partition's bounding box. The results are therefore identical to the local engine:
every grid that contains a point of the partition meets its bounding box, and the subset
keeps the global order, so "smallest code on a shared edge" still picks the same grid.

What crosses the network: the grid polygons once per worker (scattered as WKB, about 30 MB
for 10,205 grids), then 24 bytes per point (x, y, position) out and 12 back.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely

from geo.atlas.metrics import N_DAYS
from geo.spatial.join import GridIndex

POINTS_PER_PARTITION = 2_000_000
# Above this share of all grids near a partition, a worker joins it with its one full index.
FULL_INDEX_SHARE = 0.25


def _assign_near(x: np.ndarray, y: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Grid index of each point (-1 outside), joined against only the grids that meet the
    points' bounding box (the subset keeps the global order, so the answer is the local engine's)."""
    grid = np.full(len(x), -1, dtype=np.int32)
    usable = np.isfinite(x) & np.isfinite(y)
    if not usable.any():
        return grid
    xs, ys = x[usable], y[usable]
    near = np.sort(shapely.STRtree(polygons).query(shapely.box(xs.min(), ys.min(), xs.max(), ys.max()),
                                                    predicate="intersects"))
    if len(near) > FULL_INDEX_SHARE * len(polygons):
        # A partition that spans the city (a file not written in grid order): one index of all
        # grids, built once per worker, beats building a nearly full one for every partition.
        return _full_index(polygons).assign(x, y)
    if len(near):
        local = GridIndex(polygons[near]).assign(x, y)
        grid[local >= 0] = near[local[local >= 0]]
    return grid


def _full_index(polygons: np.ndarray) -> GridIndex:
    key = ("full", id(polygons))
    if key not in _CACHE:
        _CACHE[key] = GridIndex(polygons)
    return _CACHE[key]


def _join_partition(part: pd.DataFrame, grid_wkb: np.ndarray) -> pd.DataFrame:
    """Join one spatially compact partition: (pos, grid) rows, grid -1 outside."""
    if not len(part):
        return pd.DataFrame({"pos": np.zeros(0, np.int64), "grid": np.zeros(0, np.int32)})
    grid = _assign_near(part["x"].to_numpy(), part["y"].to_numpy(), _polygons(grid_wkb))
    return pd.DataFrame({"pos": part["pos"].to_numpy(), "grid": grid})


def _count_row_group(task: tuple[int, str, int], grid_wkb: np.ndarray) -> tuple:
    """On a worker: read one row group of an event file, join it, and return (metric, keys,
    counts, points, outside, out of period), keys being grid * N_DAYS + day."""
    from geo.ingest.eventfiles import arrays_of_table

    metric, path, row_group = task
    table = pq.ParquetFile(path).read_row_group(row_group, columns=["date", "geometry"])
    x, y, day = arrays_of_table(table)
    grid = _assign_near(x, y, _polygons(grid_wkb))
    in_grid = grid >= 0
    in_period = (day >= 0) & (day < N_DAYS)
    ok = in_grid & in_period
    keys, counts = np.unique(grid[ok].astype(np.int64) * N_DAYS + day[ok], return_counts=True)
    return metric, keys, counts, len(x), int((~in_grid).sum()), int((in_grid & ~in_period).sum())


def count_event_files(polygons, files: dict[int, str], *, scheduler: str | None = None,
                      n_workers: int = 2) -> tuple[np.ndarray, dict]:
    """Points of each event file summed per (grid, day) on a Dask cluster, the workers reading
    the files: returns (cube [metric, grid, day] for the metric indexes of ``files``, stats
    {metric index: (points, outside, out of period)}).

    One task per Parquet row group: a worker reads it, joins it against the grids that meet its
    bounding box and sends back at most one (key, count) pair per (grid, day). Files written in
    grid order (as the demo writes them) make each row group a compact patch of the city.
    """
    from distributed import Client, LocalCluster, as_completed

    polygons = np.asarray(polygons, dtype=object)
    tasks = [(m, str(path), rg) for m, path in sorted(files.items())
             for rg in range(pq.ParquetFile(path).num_row_groups)]
    cube = np.zeros((max(files, default=-1) + 1, len(polygons), N_DAYS), dtype=np.int64)
    stats = {m: [0, 0, 0] for m in files}
    if not tasks:
        return cube, {m: tuple(v) for m, v in stats.items()}
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        grid_wkb = client.scatter(shapely.to_wkb(polygons), broadcast=True)
        futures = client.map(_count_row_group, tasks, grid_wkb=grid_wkb, pure=False)
        for _, (m, keys, counts, n, outside, late) in as_completed(futures, with_results=True):
            cube[m].reshape(-1)[keys] += counts
            stats[m][0] += n
            stats[m][1] += outside
            stats[m][2] += late
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return cube, {m: tuple(v) for m, v in stats.items()}


# Per worker process: the decoded grids (keyed by the scattered WKB) and their full index.
_CACHE: dict = {}


def _polygons(grid_wkb: np.ndarray) -> np.ndarray:
    """Decode the scattered grids once per worker process."""
    key = id(grid_wkb)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = shapely.from_wkb(grid_wkb)
    return _CACHE[key]


def assign_dask(polygons, x, y, *, scheduler: str | None = None, n_workers: int = 2,
                points_per_partition: int = POINTS_PER_PARTITION) -> np.ndarray:
    """Grid index of each point (-1 outside), computed on a Dask cluster.

    ``scheduler`` is the address of a running scheduler (``tcp://host:8786``); without one a
    LocalCluster of ``n_workers`` processes is started for the call and closed after it.
    """
    import dask.dataframe as dd
    import dask_geopandas
    from distributed import Client, LocalCluster

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))  # NaN points are outside: no work to ship
    frame = pd.DataFrame({"x": x[finite], "y": y[finite], "pos": finite.astype(np.int64)})
    nparts = max(1, int(np.ceil(len(frame) / points_per_partition)))
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        grid_wkb = client.scatter(shapely.to_wkb(np.asarray(polygons, dtype=object)), broadcast=True)
        ddf = dd.from_pandas(frame, npartitions=nparts)
        gddf = dask_geopandas.from_dask_dataframe(ddf, geometry=dask_geopandas.points_from_xy(ddf, "x", "y"))
        gddf = gddf.set_crs("EPSG:4326").spatial_shuffle(by="hilbert", npartitions=nparts, shuffle_method="tasks")
        meta = pd.DataFrame({"pos": np.zeros(0, np.int64), "grid": np.zeros(0, np.int32)})
        joined = gddf[["x", "y", "pos"]].map_partitions(_join_partition, grid_wkb, meta=meta)
        result = joined.compute()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    out = np.full(len(x), -1, dtype=np.int32)
    out[result["pos"].to_numpy()] = result["grid"].to_numpy()
    return out
