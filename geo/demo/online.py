"""Synthesise the grid workers' daily online figures: per district and day, how many of its
grid workers were online out of how many there are.

The seed says the grid workers' daily online rate was about 95.2%. Each district gets a steady
offset of its own (some teams are better staffed), every day a little noise, and the first days
of the Spring Festival a dip, as the teams were being called back; the city-wide mean over the
period stays at 95.2%.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.atlas.metrics import N_DAYS, PERIOD_START

SEED_ONLINE_RATE = 0.952
# Days (from 2020-01-24) of the holiday call-back and how far the rate dips on the first of them.
HOLIDAY_DAYS = 5
HOLIDAY_DIP = 0.03


def synthesise_online(grids: gpd.GeoDataFrame, seed: int) -> pd.DataFrame:
    """Daily online figures per district: columns district_code, date, online, total.

    ``total`` is the district's grid workers (the sum of its grids' ``workers``); ``online`` is
    drawn around the seed's 95.2% and is never above ``total``.
    """
    rng = np.random.default_rng(seed + 3)
    totals = grids.groupby(grids["code"].str.slice(0, 6))["workers"].sum().sort_index()
    n = len(totals)
    dip = np.zeros(N_DAYS)
    dip[:HOLIDAY_DAYS] = HOLIDAY_DIP * np.linspace(1.0, 0.2, HOLIDAY_DAYS)
    rate = (rng.normal(0.0, 0.006, n)[:, None] + rng.normal(0.0, 0.004, (n, N_DAYS)) - dip[None, :])
    total = np.repeat(totals.to_numpy(np.int64)[:, None], N_DAYS, axis=1)
    # The period's city-wide rate (all workers online / all workers) is the seed's figure.
    rate = np.clip(rate + SEED_ONLINE_RATE - np.average(rate, weights=total), 0.80, 0.995)
    online = rng.binomial(total, rate)
    return pd.DataFrame({
        "district_code": np.repeat(totals.index.to_numpy(dtype=str), N_DAYS),
        "date": np.tile(pd.to_datetime(PERIOD_START) + pd.to_timedelta(np.arange(N_DAYS), unit="D"), n),
        "online": online.ravel().astype(np.int64),
        "total": total.ravel(),
    })
