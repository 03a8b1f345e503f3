"""The Grid Atlas service object: the atlas, the store and the cached counts, in one place.

The CLI, the web app, the wall and the exporter each hold one :class:`AtlasService` and call
its methods. Counts are cached in memory and reloaded when the store's version moves, so an
import shows up everywhere without a restart.
"""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd

from geo.atlas.areas import Atlas
from geo.atlas.metrics import METRICS, PERIOD_END, PERIOD_START
from geo.query import counts as _counts
from geo.settings import Settings
from geo.store import open_store


class AtlasService:
    """Answers every question the views ask, from one settings object."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = open_store(settings)
        self._lock = threading.Lock()
        self._cube: _counts.CountCube | None = None
        self._cube_atlas: Atlas | None = None
        self._atlas_lock = threading.Lock()
        self._atlas: Atlas | None = None
        self._atlas_stamp = None

    @property
    def atlas(self) -> Atlas:
        """The areas and checkpoints, loaded on first use and again whenever the store's areas
        are replaced (a grid boundary update), so re-zoned grids show without restart."""
        stamp = self.store.areas_stamp(self.settings.demo_dir)
        with self._atlas_lock:
            if self._atlas is None or stamp != self._atlas_stamp:
                self._atlas = self.store.load_atlas(self.settings.demo_dir)
                self._atlas_stamp = stamp
            return self._atlas

    def cube(self) -> _counts.CountCube:
        """The counts, reloaded when another process (or this one) committed a change."""
        version = self.store.version()
        with self._lock:
            atlas = self.atlas
            if self._cube is None or self._cube.version != version or self._cube_atlas is not atlas:
                self._cube = _counts.CountCube.load(self.store, atlas)
                self._cube_atlas = atlas
            return self._cube

    def child_values(self, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        """Values of ``metric`` over start..end for the children of ``code`` (see counts.child_values)."""
        return _counts.child_values(self.atlas, self.cube(), code, metric, start, end)

    def area_total(self, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None) -> int:
        """Total of ``metric`` inside ``code`` over start..end."""
        return _counts.area_total(self.atlas, self.cube(), code, metric, start, end)

    def daily_series(self, code: str, metric: str, start: dt.date | None = None, end: dt.date | None = None) -> pd.Series:
        """Daily totals of ``metric`` inside ``code``."""
        return _counts.daily_series(self.atlas, self.cube(), code, metric, start, end)

    def summary(self, code: str, start: dt.date | None = None, end: dt.date | None = None) -> dict:
        """Totals of every metric inside ``code``: {metric key: value}."""
        return {k: self.area_total(code, k, start, end) for k in METRICS}

    def status(self) -> dict:
        """What is loaded: number of areas per level, checkpoints and city totals per metric."""
        atlas = self.atlas
        return {
            "areas": {lv: len(df) for lv, df in atlas.layers.items()},
            "checkpoints": len(atlas.checkpoints),
            "store_version": self.store.version(),
            "counts_built_at": self.store.get_meta("counts_built_at"),
            "totals": self.summary("330200"),
            "period": [PERIOD_START.isoformat(), PERIOD_END.isoformat()],
        }

