"""Daily values, series and changes, checked against counts computed straight from the records."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from geo.atlas.metrics import N_DAYS, PERIOD_END, PERIOD_START
from geo.errors import BadParameter
from geo.export.charts import trend_svg
from geo.ingest.eventfiles import event_path, read_event_arrays
from geo.query import timeseries
from geo.query.service import AtlasService

CITY, YINZHOU, YUNLONG = "330200", "330212", "330212108"
D = dt.date


@pytest.fixture(scope="module")
def service(demo_settings):
    return AtlasService(demo_settings)


@pytest.fixture(scope="module")
def records(demo_settings, atlas):
    """metric -> (grid code of each record, day index of each record), joined here directly."""
    out = {}
    for metric in ("visits", "new_arrivals"):
        x, y, day = read_event_arrays(event_path(demo_settings.demo_dir / "events", metric))
        grid = atlas.grid_index.assign(x, y)
        ok = grid >= 0
        out[metric] = (atlas.grid_codes[grid[ok]], day[ok])
    return out


def _count(records, metric, prefix, start, end):
    """Records of ``metric`` inside area ``prefix`` (a code prefix) on days start..end."""
    codes, day = records[metric]
    lo, hi = (start - PERIOD_START).days, (end - PERIOD_START).days
    inside = np.char.startswith(codes.astype(str), prefix) if prefix != CITY else np.ones(len(codes), bool)
    return int((inside & (day >= lo) & (day <= hi)).sum())


def test_daily_children_gives_every_day_of_every_child_from_the_records(service, records, atlas):
    start, end = D(2020, 2, 1), D(2020, 2, 14)
    d = timeseries.daily_children(service, YINZHOU, "visits", start, end)
    towns = list(atlas.children(YINZHOU)["code"])
    assert [a["code"] for a in d["areas"]] == towns
    assert len(d["days"]) == 14 and d["days"][0] == "2020-02-01" and d["days"][-1] == "2020-02-14"
    for i in (0, 6, 13):
        day = start + dt.timedelta(days=i)
        for j, town in enumerate(towns[:8]):
            assert d["values"][i][j] == _count(records, "visits", town, day, day)
        assert d["totals"][i] == _count(records, "visits", YINZHOU, day, day)


def test_playback_classes_are_fixed_over_the_whole_period(service):
    d = timeseries.daily_children(service, CITY, "visits")
    assert len(d["days"]) == N_DAYS and len(d["areas"]) == 10
    legend = d["legend"]
    assert legend["fixed"] is True and legend["period"] == {"from": "2020-01-24", "to": "2020-03-31"}
    everything = np.array(d["values"])
    # The classes span every area-day value, so every day maps into the same legend.
    assert legend["lower"] == everything.min() and legend["bounds"][-1] == everything.max()
    bounds = np.array(legend["bounds"])
    for i in (0, 30, N_DAYS - 1):
        expected = np.minimum(np.searchsorted(bounds, everything[i], side="left"), len(bounds) - 1)
        assert d["classes"][i] == expected.tolist()
    # Colours change over the period (the epidemic was not flat).
    assert d["classes"][0] != d["classes"][30]


def test_daily_children_at_a_deeper_level(service, records, atlas):
    d = timeseries.daily_children(service, YUNLONG, "visits", D(2020, 3, 1), D(2020, 3, 3), level="grid")
    grids = [c for c in atlas.grid_codes if c.startswith(YUNLONG)]
    assert [a["code"] for a in d["areas"]] == grids
    assert sum(d["values"][1]) == _count(records, "visits", YUNLONG, D(2020, 3, 2), D(2020, 3, 2))


def test_area_series_and_its_childrens_sparklines_match_the_records(service, records, atlas):
    s = timeseries.area_series(service, YUNLONG, "visits")
    assert len(s["values"]) == N_DAYS
    assert s["values"][10] == _count(records, "visits", YUNLONG, D(2020, 2, 3), D(2020, 2, 3))
    villages = list(atlas.children(YUNLONG)["code"])
    assert [c["code"] for c in s["children"]] == villages
    for child in s["children"]:
        assert child["total"] == _count(records, "visits", child["code"], PERIOD_START, PERIOD_END)
    # The children add up to the area, day by day.
    assert np.array([c["values"] for c in s["children"]]).sum(axis=0).tolist() == s["values"]
    grid = villages[0] + "001"
    assert timeseries.area_series(service, grid, "visits")["children"] == []


def test_change_between_two_weeks_matches_the_records(service, records, atlas):
    a, b = (D(2020, 2, 1), D(2020, 2, 7)), (D(2020, 2, 8), D(2020, 2, 14))
    c = timeseries.change(service, YINZHOU, "new_arrivals", a, b)
    assert c["per_day"] is False and c["a"]["days"] == c["b"]["days"] == 7
    for row in c["values"]:
        va = _count(records, "new_arrivals", row["code"], *a)
        vb = _count(records, "new_arrivals", row["code"], *b)
        assert (row["a"], row["b"], row["diff"]) == (va, vb, vb - va)
        assert row["pct"] == (None if va == 0 else round(100 * (vb - va) / va, 1))
    total_a = _count(records, "new_arrivals", YINZHOU, *a)
    assert c["total"]["a"] == total_a


def test_change_classes_are_diverging_and_symmetric(service):
    c = timeseries.change(service, CITY, "visits", (D(2020, 1, 24), D(2020, 2, 6)), (D(2020, 3, 18), D(2020, 3, 31)))
    legend = c["legend"]
    n = len(legend["steps"])
    assert legend["colors"][n] == "#f7f7f7" and len(legend["colors"]) == 2 * n + 1
    assert legend["colors"][0].startswith("#2") and legend["colors"][-1] == "#b2182b"  # blue ... red
    for row in c["values"]:
        if row["diff"] < 0:
            assert row["class"] < n
        elif row["diff"] > 0:
            assert row["class"] > n
        else:
            assert row["class"] == n
    # Symmetric: -x and +x fall into mirrored classes.
    classes = timeseries.DivergingClasses(tuple(legend["steps"]), True)
    for x in [1, legend["steps"][0], legend["steps"][-1]]:
        lo, hi = classes.classify([-x, x])
        assert lo + hi == 2 * n


def test_change_in_per_cent_leaves_areas_without_a_first_value_unclassed(service):
    c = timeseries.change(service, YINZHOU, "risk_code", (D(2020, 1, 24), D(2020, 1, 24)),
                          (D(2020, 3, 31), D(2020, 3, 31)), basis="percent", level="village")
    empty = [r for r in c["values"] if r["a"] == 0]
    assert empty, "some villages had no red/yellow-code persons on the first day"
    assert all(r["pct"] is None and r["class"] is None and r["color"] == "#bababa" for r in empty)
    assert c["legend"]["labels"][len(c["legend"]["steps"])] == "0%"


def test_periods_of_different_length_are_compared_per_day(service, records):
    a, b = (D(2020, 2, 1), D(2020, 2, 10)), (D(2020, 2, 11), D(2020, 2, 15))
    c = timeseries.change(service, CITY, "visits", a, b)
    assert c["per_day"] is True
    row = c["values"][0]
    assert row["a"] == pytest.approx(_count(records, "visits", row["code"], *a) / 10, abs=0.01)
    assert row["b"] == pytest.approx(_count(records, "visits", row["code"], *b) / 5, abs=0.01)


@pytest.mark.parametrize("kwargs, message", [
    ({"a": (D(2020, 2, 10), D(2020, 2, 1))}, "period a: start 2020-02-10 is after end 2020-02-01"),
    ({"b": (D(2020, 3, 25), D(2020, 4, 5))}, "period b 2020-03-25..2020-04-05 is outside the data period"),
    ({"basis": "ratio"}, "unknown change basis 'ratio'; allowed: absolute, percent"),
    ({"metric": "cats"}, "unknown metric 'cats'"),
    ({"level": "district", "code": YINZHOU}, "level 'district' cannot be shown inside a district"),
])
def test_change_refuses_bad_parameters(service, kwargs, message):
    kwargs = {"code": CITY, "metric": "visits", **kwargs}
    with pytest.raises(BadParameter, match=message.replace("(", r"\(").replace(".", r"\.")):
        timeseries.change(service, **kwargs)


def test_trend_chart_is_svg_with_escaped_names(service):
    s = timeseries.area_series(service, YINZHOU, "visits")
    for child in s["children"]:
        child["name"] = "<i>&x"
    svg = trend_svg(s, {"title": "走访排查 per day"})
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<i>" not in svg and "&lt;i&gt;&amp;x" in svg
    assert svg.count('class="ga-spark"') == min(12, len(s["children"]))
    assert "鄞州区" in svg


def test_wall_tiles_carry_the_last_seven_days(service):
    from geo.query import wall

    day = wall.data_day(service)
    tiles = {t["key"]: t for t in wall.kpis(service, CITY, day)}
    week = service.daily_series(CITY, "visits", day - dt.timedelta(days=6), day)
    assert tiles["visits"]["trend"] == week.tolist()
    assert tiles["visits"]["trend"][-1] == tiles["visits"]["today"]
    assert len(tiles["active_checkpoints"]["trend"]) == 7
    assert tiles["active_checkpoints"]["trend"][-1] == tiles["active_checkpoints"]["value"]
    assert tiles["online_rate"]["trend"][-1] == tiles["online_rate"]["value"]


def test_exports_take_the_two_period_change(service):
    from geo.export.exporter import map_data, parse_options

    opts = parse_options(YINZHOU, "png", {"metric": "visits", "a_from": "2020-02-01", "a_to": "2020-02-07",
                                          "b_from": "2020-02-08", "b_to": "2020-02-14"})
    assert opts.compare == (D(2020, 2, 1), D(2020, 2, 7)) and (opts.start, opts.end) == (D(2020, 2, 8), D(2020, 2, 14))
    data = map_data(service, opts)
    ch = timeseries.change(service, YINZHOU, "visits", opts.compare, (opts.start, opts.end))
    assert data.values["value"].tolist() == [r["diff"] for r in ch["values"]]
    assert data.classes.color_of(data.values["value"]) == [r["color"] for r in ch["values"]]
    assert data.classes.labels() == ch["legend"]["labels"]
    with pytest.raises(BadParameter, match="period a: start 2020-02-09 is after end 2020-02-01"):
        parse_options(YINZHOU, "png", {"a_from": "2020-02-09", "a_to": "2020-02-01"})
