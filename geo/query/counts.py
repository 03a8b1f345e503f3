"""Counts per grid, metric and day, and the one query every view uses.

:func:`child_values` answers "values of metric M over dates D1..D2 for the children of area
A". The web map, the wall and the exporter all call it, so they always agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo.atlas.areas import Atlas
from geo.atlas.hierarchy import CITY_CODE, CODE_LENGTHS, child_level
from geo.atlas.metrics import N_DAYS, PERIOD_END, PERIOD_START, check_period, day_index, get_metric
from geo.store import Store
from geo.store import counts as count_store

METRIC_KEYS = count_store.METRIC_KEYS


@dataclass
class CountCube:
    """Counts held in memory as an int64 array [metric, grid, day], grids in atlas order."""

    values: np.ndarray
    version: int

    @classmethod
    def empty(cls, n_grids: int, version: int = 0) -> "CountCube":
        """A cube of zeros."""
        return cls(np.zeros((len(METRIC_KEYS), n_grids, N_DAYS), dtype=np.int64), version)

    @classmethod
    def load(cls, store: Store, atlas: Atlas) -> "CountCube":
        """Read the counts of ``store`` into a cube aligned with ``atlas``'s grids."""
        # One snapshot, so the version and the series belong to the same commit.
        with store.snapshot() as con:
            version = int(con.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0])
            values = count_store.read_all(con, atlas.grid_codes)
        cube = cls(values, version)
        return cube

    def grid_totals(self, metric: str, start: dt.date, end: dt.date) -> np.ndarray:
        """Per-grid sum of ``metric`` over start..end inclusive."""
        m = METRIC_KEYS.index(metric)
        return self.values[m, :, day_index(start): day_index(end) + 1].sum(axis=1)

    def grid_daily(self, metric: str, start: dt.date, end: dt.date) -> np.ndarray:
        """Per-grid daily values [grid, day] of ``metric`` over start..end inclusive."""
        m = METRIC_KEYS.index(metric)
        return self.values[m, :, day_index(start): day_index(end) + 1]


def _period(start, end) -> tuple[dt.date, dt.date]:
    start = start or PERIOD_START
    end = end or PERIOD_END
    check_period(start, end)
    return start, end


def roll_up(atlas: Atlas, grid_values: np.ndarray, level: str) -> pd.Series:
    """Sum per-grid values to every area of ``level`` (a Series indexed by area code)."""
    if level == "city":
        return pd.Series([grid_values.sum()], index=[CITY_CODE])
    keys = pd.Series(atlas.grid_codes).str.slice(0, CODE_LENGTHS[level]).to_numpy()
    return pd.Series(grid_values).groupby(keys).sum()


def _grid_slice(atlas: Atlas, code: str) -> slice:
    """Grid indexes of all grids inside area ``code`` (grids are sorted, so it is one run)."""
    codes = atlas.grid_codes
    if atlas.get(code)["level"] == "city":
        return slice(0, len(codes))
    lo = np.searchsorted(codes, code, side="left")
    hi = np.searchsorted(codes, code + "\uffff", side="left")
    return slice(int(lo), int(hi))


def child_values(atlas: Atlas, cube: CountCube, code: str, metric: str,
                 start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """Values of ``metric`` over start..end for the children of area ``code``.

    Returns one row per child (for a grid: the grid itself) with ``code``, ``level``,
    ``name`` and ``value``, sorted by code. Raises AreaNotFound / BadParameter on bad input.
    """
    area = atlas.get(code)
    get_metric(metric)
    start, end = _period(start, end)
    children = atlas.children(code) if area["level"] != "grid" else atlas.get(code).to_frame().T
    level = child_level(area["level"]) or "grid"
    sl = _grid_slice(atlas, code)
    totals = cube.grid_totals(metric, start, end)[sl]
    keys = pd.Series(atlas.grid_codes[sl]).str.slice(0, CODE_LENGTHS[level])
    sums = pd.Series(totals).groupby(keys.to_numpy()).sum()
    out = children[["code", "level", "name"]].reset_index(drop=True).copy()
    out["value"] = sums.reindex(out["code"]).fillna(0).astype(np.int64).to_numpy()
    return out


def area_total(atlas: Atlas, cube: CountCube, code: str, metric: str,
               start: dt.date | None = None, end: dt.date | None = None) -> int:
    """Total of ``metric`` over start..end inside area ``code``."""
    atlas.get(code)
    get_metric(metric)
    start, end = _period(start, end)
    return int(cube.grid_totals(metric, start, end)[_grid_slice(atlas, code)].sum())


def daily_series(atlas: Atlas, cube: CountCube, code: str, metric: str,
                 start: dt.date | None = None, end: dt.date | None = None) -> pd.Series:
    """Daily totals of ``metric`` inside area ``code``, indexed by date."""
    atlas.get(code)
    get_metric(metric)
    start, end = _period(start, end)
    values = cube.grid_daily(metric, start, end)[_grid_slice(atlas, code)].sum(axis=0)
    return pd.Series(values, index=pd.date_range(start, end, freq="D").date)
