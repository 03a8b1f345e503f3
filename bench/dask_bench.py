"""Local engine against the Dask engine on the same points, in the same run.

    .venv/bin/python bench/dask_bench.py [--data-dir DIR] [--workers 2] [--scheduler tcp://HOST:PORT]

Reads the visit points of the demo at ``DIR`` (``GRIDATLAS_DATA_DIR`` by default; 12.13 M
points at scale 1), joins them with the local engine (both cores of this machine) and with
``--engine dask`` on a LocalCluster of ``--workers`` worker processes (or on ``--scheduler``)
both ways the engine has: the rebuild's, where the workers read the file's row groups
themselves and send back sums per (grid, day), and the import's, where the client ships the
points. It checks that every way gives the local engine's answer, and prints throughput, the
ratios and the workers' peak memory. On one 2-core machine the cluster cannot be faster
than the local engine, which already uses both cores: the figure that matters is its overhead,
which a real cluster of N machines divides by N.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from geo.atlas.areas import Atlas  # noqa: E402
from geo.atlas.metrics import N_DAYS  # noqa: E402
from geo.ingest.dask_engine import POINTS_PER_PARTITION, assign_dask, count_event_files  # noqa: E402
from geo.ingest.eventfiles import event_path, read_event_arrays  # noqa: E402
from geo.settings import get_settings  # noqa: E402


def _worker_peak_mb(client) -> float:
    """The largest peak RSS among the cluster's workers (MB), read on the workers themselves."""
    import resource

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    return max(client.run(peak).values())


def main(argv=None) -> int:
    """Run the comparison and print its table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="data folder with demo/ (default: the settings' data dir)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--scheduler", help="a running dask scheduler; default: a LocalCluster")
    p.add_argument("--points-per-partition", type=int, default=POINTS_PER_PARTITION)
    p.add_argument("--points-sent", action="store_true",
                   help="also time the import's way (the client ships every point: minutes at scale 1)")
    args = p.parse_args(argv)
    settings = get_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    atlas = Atlas.load(settings.demo_dir)
    visits = event_path(settings.demo_dir / "events", "visits")
    x, y, day = read_event_arrays(visits)
    n = len(x)
    print(f"Grid Atlas dask bench: {n:,} visit points, {len(atlas.grid_codes):,} grids")

    atlas.grid_index.raster  # built once, as a serving process or rebuild would have it
    t = time.perf_counter()
    local = atlas.grid_index.assign(x, y)
    t_local = time.perf_counter() - t
    ok = (local >= 0) & (day >= 0) & (day < N_DAYS)
    local_sums = np.bincount(local[ok].astype(np.int64) * N_DAYS + day[ok],
                             minlength=len(atlas.grid_codes) * N_DAYS).reshape(-1, N_DAYS)

    from distributed import Client, LocalCluster

    cluster = None
    if args.scheduler:
        address = args.scheduler
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        address = cluster.scheduler_address
    try:
        t = time.perf_counter()
        sums, _ = count_event_files(atlas.grids.geometry.to_numpy(), {0: visits}, scheduler=address)
        t_files = time.perf_counter() - t
        distributed, t_dask = local, None
        if args.points_sent:
            t = time.perf_counter()
            distributed = assign_dask(atlas.grids.geometry.to_numpy(), x, y, scheduler=address,
                                      points_per_partition=args.points_per_partition)
            t_dask = time.perf_counter() - t
        with Client(address) as client:
            peak = _worker_peak_mb(client)
            workers = len(client.scheduler_info()["workers"])
    finally:
        if cluster is not None:
            cluster.close()
    mismatches = int((local != distributed).sum())
    sum_mismatches = int((sums[0] != local_sums).sum())
    row_groups = pq.ParquetFile(visits).num_row_groups
    partitions = -(-n // args.points_per_partition)
    print(f"local engine      {n / t_local / 1e6:.2f} M pts/s ({t_local:.1f} s, both cores, index built)")
    print(f"dask, files read  {n / t_files / 1e6:.2f} M pts/s ({t_files:.1f} s, {workers} workers, one task per "
          f"row group: {row_groups}); {t_local / t_files:.2f}x the local throughput; "
          f"{sum_mismatches} of {local_sums.size:,} (grid, day) sums differ")
    if t_dask is not None:
        print(f"dask, points sent {n / t_dask / 1e6:.2f} M pts/s ({t_dask:.1f} s, {workers} workers, "
              f"{partitions} Hilbert partitions of <= {args.points_per_partition:,} points); "
              f"{t_local / t_dask:.2f}x the local throughput; {mismatches} mismatches")
    print(f"worker peak RSS   {peak:,.0f} MB (largest worker)")
    return 1 if mismatches or sum_mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
