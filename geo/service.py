"""The Grid Atlas service object: the atlas, the store and the cached counts, in one place.

The CLI, the web app, the wall and the exporter each hold one :class:`AtlasService` and call
its methods. Counts are cached in memory and reloaded when the store's version moves, so an
import shows up everywhere without a restart.
"""

from __future__ import annotations

import datetime as dt
import threading
from functools import cached_property

import pandas as pd

from . import counts as _counts
from .areas import Atlas
from .metrics import METRICS, PERIOD_END, PERIOD_START, get_metric
from .settings import Settings
from .store import Store


class AtlasService:
    """Answers every question the views ask, from one settings object."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = Store(settings.store_path)
        self._lock = threading.Lock()
        self._cube: _counts.CountCube | None = None

    @cached_property
    def atlas(self) -> Atlas:
        """The areas and checkpoints (loaded on first use)."""
        return Atlas.load(self.settings.demo_dir)

    def cube(self) -> _counts.CountCube:
        """The counts, reloaded when another process (or this one) committed a change."""
        version = self.store.version()
        with self._lock:
            if self._cube is None or self._cube.version != version:
                self._cube = _counts.CountCube.load(self.store, self.atlas)
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


def default_period() -> tuple[dt.date, dt.date]:
    """The whole data period."""
    return PERIOD_START, PERIOD_END


__all__ = ["AtlasService", "default_period", "get_metric"]
