"""Synthesise dated event points for every point metric, matching the seed's totals at scale 1.

Each metric has its own daily curve (mass visiting in early February, health codes from
mid-February, returning workers after the holiday...) and its own spread over grids (by
households, with new arrivals leaning to the industrial county seats).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np

from geo.atlas.metrics import METRICS, N_DAYS, POINT_METRICS
from geo.demo.points import PolygonSampler
from geo.ingest.eventfiles import event_path, write_events

_T = np.arange(N_DAYS, dtype=float)


def _bump(peak: float, width: float, start: float = 0.0, floor: float = 0.05) -> np.ndarray:
    curve = floor + np.exp(-((_T - peak) ** 2) / (2 * width ** 2))
    curve[_T < start] = 0.0
    return curve


# Day 0 is 2020-01-24; day 18 is 11 February, when Zhejiang's health codes started.
DAILY_CURVES = {
    "visits": _bump(12, 10, floor=0.15),
    "home_observation": _bump(20, 9),
    "home_quarantine": _bump(22, 10),
    "risk_code": _bump(25, 8, start=18),
    "new_arrivals": _bump(30, 9, start=8, floor=0.1),
    "disputes": _bump(45, 20, floor=0.4),
    "appeals": _bump(22, 14, floor=0.2),
}
# Exponent on household counts: >1 concentrates a metric in dense grids.
GRID_POWER = {"visits": 1.0, "home_observation": 1.0, "home_quarantine": 1.05,
              "risk_code": 1.2, "new_arrivals": 1.3, "disputes": 0.9, "appeals": 1.0}


def synthesise_events(grids: gpd.GeoDataFrame, out_dir: Path, scale: float, seed: int) -> dict[str, int]:
    """Write one event file per point metric into ``out_dir``; return the number of events of each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sampler = PolygonSampler(grids.geometry.to_numpy())
    households = grids["households"].to_numpy(float)
    written = {}
    for i, key in enumerate(POINT_METRICS):
        rng = np.random.default_rng([seed, i])
        n = int(round(METRICS[key].seed_total * scale))
        w = households ** GRID_POWER[key]
        owner = rng.choice(len(grids), n, p=w / w.sum())
        curve = DAILY_CURVES[key]
        day = rng.choice(N_DAYS, n, p=curve / curve.sum())
        x, y = sampler.sample(owner, rng)
        # Grid order (codes nest district > town > village), then date: each row group of the
        # file is then a compact patch of the city, which the Dask engine's workers join against
        # only the grids near it.
        order = np.lexsort((day, owner))
        write_events(event_path(out_dir, key), np.arange(1, n + 1), day[order], x[order], y[order])
        written[key] = n
    return written
