"""How counts are kept in the store: one row per metric and grid, the daily values as a JSON array.

A dense table of (metric, grid, day) rows holds about 2.2 million rows at the seed's scale,
and SQLite needs far longer to write them than the whole join takes. One row per metric and
grid (about 80,000 rows, each with the 68 daily values) is written in a fraction of a second,
read back into the in-memory cube just as fast, and still answers per-day questions in SQL:
the view ``counts`` unpacks the arrays into (metric, grid_code, day, value) rows with
SQLite's ``json_each``. This module is the only code that knows the layout.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np

from .metrics import METRICS, N_DAYS, PERIOD_START

METRIC_KEYS = tuple(METRICS)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS count_series (
    metric TEXT NOT NULL, grid_code TEXT NOT NULL, daily TEXT NOT NULL,
    PRIMARY KEY (metric, grid_code)
) WITHOUT ROWID;
CREATE VIEW IF NOT EXISTS counts (metric, grid_code, day, value) AS
    SELECT s.metric, s.grid_code, date('{PERIOD_START.isoformat()}', '+' || d.key || ' days'), d.value
    FROM count_series AS s, json_each(s.daily) AS d WHERE d.value != 0;
"""


def _encode(values: np.ndarray) -> str:
    return "[" + ",".join(map(str, values.tolist())) + "]"


def write_all(con, grid_codes: np.ndarray, cube: np.ndarray) -> int:
    """Replace every count with ``cube`` [metric, grid, day] inside the caller's transaction."""
    con.execute("DELETE FROM count_series")
    m, g = np.nonzero(cube.any(axis=2))
    rows = ((METRIC_KEYS[i], grid_codes[j], _encode(cube[i, j])) for i, j in zip(m.tolist(), g.tolist()))
    con.executemany("INSERT INTO count_series VALUES (?, ?, ?)", rows)
    return len(m)


def read_all(con, grid_codes: np.ndarray) -> np.ndarray:
    """The stored counts as an int64 cube [metric, grid, day] aligned with ``grid_codes``."""
    cube = np.zeros((len(METRIC_KEYS), len(grid_codes), N_DAYS), dtype=np.int64)
    position = {c: i for i, c in enumerate(grid_codes.tolist())}
    metric_pos = {k: i for i, k in enumerate(METRIC_KEYS)}
    for metric, grid_code, daily in con.execute("SELECT metric, grid_code, daily FROM count_series"):
        g = position.get(grid_code)
        m = metric_pos.get(metric)
        if g is not None and m is not None:
            cube[m, g] = json.loads(daily)
    return cube


def add(con, grid_codes: np.ndarray, metric: np.ndarray, grid: np.ndarray, day: np.ndarray, delta: np.ndarray) -> None:
    """Add ``delta`` at each (metric index, grid index, day index) inside the caller's transaction.

    Used by imports, which change a few series: each touched (metric, grid) row is read,
    changed and written back; rows that fall to all zeros are removed.
    """
    keys = metric.astype(np.int64) * len(grid_codes) + grid.astype(np.int64)
    for key in np.unique(keys).tolist():
        m, g = divmod(key, len(grid_codes))
        sel = keys == key
        row = con.execute("SELECT daily FROM count_series WHERE metric = ? AND grid_code = ?",
                          (METRIC_KEYS[m], grid_codes[g])).fetchone()
        values = np.array(json.loads(row[0]) if row else [0] * N_DAYS, dtype=np.int64)
        np.add.at(values, day[sel].astype(np.int64), delta[sel].astype(np.int64))
        if (values < 0).any():
            raise ValueError(f"count of {METRIC_KEYS[m]} in grid {grid_codes[g]} would fall below zero")
        if values.any():
            con.execute("INSERT OR REPLACE INTO count_series VALUES (?, ?, ?)",
                        (METRIC_KEYS[m], grid_codes[g], _encode(values)))
        else:
            con.execute("DELETE FROM count_series WHERE metric = ? AND grid_code = ?", (METRIC_KEYS[m], grid_codes[g]))


def day_text(day_index: int) -> str:
    """ISO date of a day index."""
    return (PERIOD_START + dt.timedelta(days=int(day_index))).isoformat()
