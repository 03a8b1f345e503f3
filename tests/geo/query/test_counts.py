"""Counts roll up consistently, and the one query answers per child area."""

import datetime as dt

import numpy as np
import pytest

from geo.atlas.metrics import METRICS, PERIOD_START
from geo.errors import AreaNotFound, BadParameter
from geo.ingest.eventfiles import event_path, read_event_arrays
from geo.query.counts import CountCube, area_total, child_values, daily_series, roll_up
from geo.spatial.join import GridIndex
from geo.store import open_store


@pytest.fixture(scope="module")
def cube(demo_settings, atlas):
    return CountCube.load(open_store(demo_settings), atlas)


@pytest.mark.parametrize("metric", list(METRICS))
def test_sums_agree_at_every_level(atlas, cube, metric):
    grid_totals = cube.grid_totals(metric, dt.date(2020, 1, 24), dt.date(2020, 3, 31))
    city = grid_totals.sum()
    assert city > 0
    for level in ("district", "town", "village"):
        per_area = roll_up(atlas, grid_totals, level)
        assert per_area.sum() == city
        assert set(per_area.index) <= set(atlas.layers[level]["code"])
    # Each parent equals the sum of its children through the query API, at every level.
    for code in ("330200", "330212", "330212108", "330212108001"):
        kids = child_values(atlas, cube, code, metric)
        assert kids["value"].sum() == area_total(atlas, cube, code, metric)


def test_counts_match_the_events_joined_directly(demo_settings, atlas, cube):
    x, y, day = read_event_arrays(event_path(demo_settings.demo_dir / "events", "home_quarantine"))
    grid = GridIndex(atlas.grids.geometry.to_numpy()).assign(x, y)
    in_feb = (day >= (dt.date(2020, 2, 1) - PERIOD_START).days) & (day <= (dt.date(2020, 2, 29) - PERIOD_START).days)
    yinzhou = np.char.startswith(atlas.grid_codes[grid], "330212") & (grid >= 0)
    expected = int((in_feb & yinzhou).sum())
    assert area_total(atlas, cube, "330212", "home_quarantine", dt.date(2020, 2, 1), dt.date(2020, 2, 29)) == expected


def test_child_values_lists_every_child_with_names(atlas, cube):
    kids = child_values(atlas, cube, "330212108", "visits")
    assert list(kids.columns) == ["code", "level", "name", "value"]
    assert len(kids) == 7 and "甲村" in set(kids["name"])
    grid = atlas.grids["code"].iloc[0]
    only = child_values(atlas, cube, grid, "visits")
    assert list(only["code"]) == [grid]


def test_daily_series_adds_up_to_the_total(atlas, cube):
    series = daily_series(atlas, cube, "330203", "visits", dt.date(2020, 2, 1), dt.date(2020, 2, 10))
    assert len(series) == 10 and series.index[0] == dt.date(2020, 2, 1)
    assert series.sum() == area_total(atlas, cube, "330203", "visits", dt.date(2020, 2, 1), dt.date(2020, 2, 10))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"code": "999999", "metric": "visits"}, AreaNotFound, "999999"),
    ({"code": "330212", "metric": "steps"}, BadParameter, "unknown metric 'steps'; allowed: visits"),
    ({"code": "330212", "metric": "visits", "start": dt.date(2020, 3, 2), "end": dt.date(2020, 3, 1)},
     BadParameter, "after"),
    ({"code": "330212", "metric": "visits", "start": dt.date(2019, 12, 1), "end": dt.date(2020, 3, 1)},
     BadParameter, "outside the data period"),
])
def test_bad_queries_are_refused_by_name(atlas, cube, kwargs, error, match):
    with pytest.raises(error, match=match):
        child_values(atlas, cube, **kwargs)
