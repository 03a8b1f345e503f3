"""Event files: one GeoParquet file per metric, one row per record.

The geometry column uses GeoParquet 1.1's native ``point`` encoding (a struct of x and y),
so GeoPandas reads the files as ordinary GeoDataFrames (``geopandas.read_parquet``) while the
rebuild reads the coordinates straight into NumPy without building 12 million shapely objects.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geo.atlas.metrics import PERIOD_START

_GEO_META = {
    "version": "1.1.0",
    "primary_column": "geometry",
    "columns": {"geometry": {"encoding": "point", "geometry_types": ["Point"]}},
}  # No "crs" key: GeoParquet then means OGC:CRS84 (lon/lat WGS84).


def write_events(path: Path, record_id: np.ndarray, day: np.ndarray, x: np.ndarray, y: np.ndarray,
                 row_group_size: int = 1_000_000) -> None:
    """Write events (``day`` as 0-based index from PERIOD_START) to a GeoParquet file, atomically.

    Each row group is one task of the Dask engine's rebuild (:mod:`geo.dask_engine`)."""
    dates = pa.array(np.datetime64(PERIOD_START, "D") + day.astype("timedelta64[D]"), type=pa.date32())
    geom = pa.StructArray.from_arrays([pa.array(x, pa.float64()), pa.array(y, pa.float64())], names=["x", "y"])
    meta = dict(_GEO_META)
    meta["columns"] = {"geometry": dict(_GEO_META["columns"]["geometry"],
                                        bbox=[float(x.min()), float(y.min()), float(x.max()), float(y.max())] if len(x) else [])}
    table = pa.table({"record_id": pa.array(record_id, pa.int64()), "date": dates, "geometry": geom},
                     metadata={b"geo": json.dumps(meta).encode()})
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, row_group_size=row_group_size)
    tmp.replace(path)


def read_event_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (x, y, day index) arrays of an event file."""
    return arrays_of_table(pq.read_table(path, columns=["date", "geometry"]))


def arrays_of_table(table: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, day index) arrays of a table (or row group) read from an event file."""
    geom = table.column("geometry").combine_chunks()
    x = geom.field("x").to_numpy(zero_copy_only=False)
    y = geom.field("y").to_numpy(zero_copy_only=False)
    days = table.column("date").to_numpy().astype("datetime64[D]")
    day = (days - np.datetime64(PERIOD_START, "D")).astype(np.int64)
    return x, y, day


def event_path(events_dir: Path, metric: str) -> Path:
    """The file of one metric's events."""
    return Path(events_dir) / f"{metric}.parquet"

