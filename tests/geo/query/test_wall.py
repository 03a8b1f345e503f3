"""The wall's figures: "today", the KPI tiles, the ranking, the options and the online rates."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point

from geo.atlas.hierarchy import CITY_CODE
from geo.atlas.metrics import N_DAYS, PERIOD_END, PERIOD_START, POINT_METRICS
from geo.atlas.online import ONLINE_FILE, online_by_day, read_online
from geo.demo.online import SEED_ONLINE_RATE, synthesise_online
from geo.errors import AreaNotFound, BadParameter, DataNotReady, InputFileError
from geo.query import wall
from geo.query.service import AtlasService
from geo.settings import get_settings
from geo.store import counts as count_store
from tests.stores import copy_settings, location

YINZHOU = "330212"
YUNLONG = "330212108"


@pytest.fixture(scope="module")
def service(demo_settings):
    return AtlasService(demo_settings)


@pytest.fixture
def copy_service(demo_settings, tmp_path):
    """A service on a copy of the demo data, free to change."""
    return AtlasService(copy_settings(demo_settings, tmp_path / "data", secret_key="test"))


def _sql(service, query, *params):
    con = service.store.connect()
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def _counts(service):
    con = service.store.connect()
    try:
        return count_store.counts_rows(con)
    finally:
        con.close()


def _replace_counts(service, change):
    """Rewrite the stored cube with ``change(cube)`` applied, in one transaction."""
    codes = service.atlas.grid_codes
    with service.store.transaction() as con:
        cube = count_store.read_all(con, codes)
        change(cube)
        count_store.write_all(con, codes, cube)


def test_today_is_the_latest_day_with_data(service):
    last = _counts(service)["day"].max()
    assert wall.data_day(service) == dt.date.fromisoformat(last) == PERIOD_END


@pytest.mark.both_stores
def test_today_follows_the_data_when_the_last_day_goes(copy_service):
    _replace_counts(copy_service, lambda cube: cube[:, :, N_DAYS - 1].fill(0))
    assert wall.data_day(copy_service) == PERIOD_END - dt.timedelta(days=1)
    board = wall.wall_board(copy_service, None, "visits")
    assert board["day"] == "2020-03-30"


@pytest.mark.both_stores
def test_no_counts_means_data_not_ready(copy_service):
    _replace_counts(copy_service, lambda cube: cube.fill(0))
    with pytest.raises(DataNotReady, match="no counts"):
        wall.data_day(copy_service)


@pytest.mark.parametrize("code", [CITY_CODE, YINZHOU])
def test_count_tiles_are_totals_to_today_with_todays_count(service, code):
    day = wall.data_day(service)
    tiles = {t["key"]: t for t in wall.kpis(service, code, day)}
    assert [t["key"] for t in wall.kpis(service, code, day)] == [*POINT_METRICS, "active_checkpoints", "online_rate"]
    for key in POINT_METRICS:
        t = tiles[key]
        assert t["kind"] == "count"
        assert t["value"] == service.area_total(code, key, PERIOD_START, day)
        assert t["today"] == service.area_total(code, key, day, day)
        assert t["yesterday"] == service.area_total(code, key, day - dt.timedelta(days=1), day - dt.timedelta(days=1))
    assert tiles["visits"]["name_zh"] == "走访排查"


@pytest.mark.parametrize("code", [CITY_CODE, YINZHOU, YUNLONG])
def test_active_checkpoints_are_those_that_checked_anyone_today(service, atlas, code):
    day = wall.data_day(service)
    cps = atlas.checkpoints
    inside = set(cps["code"][cps["grid_code"].str.startswith("" if code == CITY_CODE else code)])
    # The truth is the demo's file of daily checks, not the store the wall reads.
    checks = pd.read_parquet(service.settings.demo_dir / "checkpoint_checks.parquet")
    checks = checks[checks["checks"] > 0]
    active = {d: set(checks["checkpoint_code"][checks["date"].dt.date == d]) & inside
              for d in (day, day - dt.timedelta(days=1))}
    tile = next(t for t in wall.kpis(service, code, day) if t["key"] == "active_checkpoints")
    assert tile["value"] == len(active[day]) > 0
    assert tile["today"] == len(active[day]) - len(active[day - dt.timedelta(days=1)])
    assert tile["of"] == len(inside)


def test_online_rate_comes_from_the_daily_district_figures(service):
    day = wall.data_day(service)
    rows = _sql(service, "SELECT SUM(online), SUM(total) FROM worker_online WHERE day = ?", day.isoformat())
    online, total = rows[0]
    tile = next(t for t in wall.kpis(service, CITY_CODE, day) if t["key"] == "online_rate")
    assert (tile["online"], tile["of"]) == (online, total)
    assert tile["value"] == round(100 * online / total, 1)
    assert 90 < tile["value"] < 99
    before = _sql(service, "SELECT SUM(online), SUM(total) FROM worker_online WHERE day = ?",
                  (day - dt.timedelta(days=1)).isoformat())[0]
    assert tile["today"] == round(tile["value"] - round(100 * before[0] / before[1], 1), 1)
    (d_online, d_total), = _sql(service, "SELECT online, total FROM worker_online WHERE day = ? AND district_code = ?",
                                day.isoformat(), YINZHOU)
    district = next(t for t in wall.kpis(service, YINZHOU, day) if t["key"] == "online_rate")
    assert (district["online"], district["of"]) == (d_online, d_total)


def test_online_figures_are_kept_per_district_only(service):
    assert online_by_day(service.store, YUNLONG, [PERIOD_END]) == {}
    tile = next(t for t in wall.kpis(service, YUNLONG, PERIOD_END) if t["key"] == "online_rate")
    assert tile["value"] is None and tile["today"] is None


def test_the_demo_online_figures_match_the_seed(atlas):
    frame = synthesise_online(atlas.grids, 7)
    assert len(frame) == len(atlas.layers["district"]) * N_DAYS
    assert (frame["online"] <= frame["total"]).all() and (frame["online"] > 0).all()
    workers = atlas.grids.groupby(atlas.grids["code"].str.slice(0, 6))["workers"].sum()
    assert frame.groupby("district_code")["total"].first().to_dict() == workers.to_dict()
    assert frame["online"].sum() / frame["total"].sum() == pytest.approx(SEED_ONLINE_RATE, abs=0.001)


def test_the_rebuild_loads_the_demo_online_file(service, demo_settings):
    assert (demo_settings.demo_dir / ONLINE_FILE).exists()
    (n,) = _sql(service, "SELECT COUNT(*) FROM worker_online")[0]
    assert n == 10 * N_DAYS


def test_a_bad_online_file_is_refused(tmp_path):
    path = tmp_path / ONLINE_FILE
    pd.DataFrame({"district_code": ["330212"], "date": [pd.Timestamp("2020-03-31")], "online": [11], "total": [10]}) \
        .to_parquet(path)
    with pytest.raises(InputFileError, match="online is above total"):
        read_online(path)
    pd.DataFrame({"district_code": ["330212"], "online": [1]}).to_parquet(path)
    with pytest.raises(InputFileError, match="missing column.*date.*total"):
        read_online(path)
    assert read_online(tmp_path / "absent.parquet") is None


def test_city_ranking_lists_the_districts_highest_first(service, atlas):
    day = wall.data_day(service)
    r = wall.ranking(service, CITY_CODE, "risk_code", day)
    expected = service.child_values(CITY_CODE, "risk_code", PERIOD_START, day)
    assert r["level"] == "district" and r["count"] == 10 == len(r["rows"])
    assert [row["rank"] for row in r["rows"]] == list(range(1, 11))
    values = [row["value"] for row in r["rows"]]
    assert values == sorted(values, reverse=True) and r["max"] == values[0]
    assert dict((row["code"], row["value"]) for row in r["rows"]) == dict(zip(expected["code"], expected["value"]))
    today = service.child_values(CITY_CODE, "risk_code", day, day).set_index("code")["value"]
    assert all(row["today"] == today[row["code"]] for row in r["rows"])


def test_district_ranking_lists_its_towns_and_counts_the_rest(service, atlas):
    day = wall.data_day(service)
    r = wall.ranking(service, YINZHOU, "visits", day, rows=5)
    towns = atlas.children(YINZHOU)
    assert r["level"] == "town" and r["count"] == len(towns) > 5
    assert len(r["rows"]) == 5
    assert all(row["code"].startswith(YINZHOU) for row in r["rows"])
    best = service.child_values(YINZHOU, "visits", PERIOD_START, day)["value"].max()
    assert r["rows"][0]["value"] == best


@pytest.mark.both_stores
def test_the_board_moves_when_the_store_changes(copy_service):
    before = wall.wall_board(copy_service, YINZHOU, "visits")
    grid = copy_service.atlas.grids["code"][copy_service.atlas.grids["code"].str.startswith(YUNLONG)].iloc[0]
    g = int(np.searchsorted(copy_service.atlas.grid_codes, grid))
    with copy_service.store.transaction() as con:
        count_store.add(con, copy_service.atlas.grid_codes, np.array([0]), np.array([g]), np.array([N_DAYS - 1]),
                        np.array([1000]))
    after = wall.wall_board(copy_service, YINZHOU, "visits")
    assert after["version"] == before["version"] + 1
    tile = {t["key"]: t for t in after["kpis"]}["visits"]
    old = {t["key"]: t for t in before["kpis"]}["visits"]
    assert (tile["value"], tile["today"]) == (old["value"] + 1000, old["today"] + 1000)
    row = next(r for r in after["ranking"]["rows"] if r["code"] == YUNLONG)
    old_row = next((r for r in before["ranking"]["rows"] if r["code"] == YUNLONG), None)
    assert row["rank"] == 1 and (old_row is None or row["value"] == old_row["value"] + 1000)


def test_board_names_the_view_and_today(service):
    board = wall.wall_board(service, None, None)
    assert board["area"] == {"code": CITY_CODE, "name": "宁波市", "level": "city"}
    assert board["metric"]["key"] == "visits"
    assert board["day"] == board["period"]["to"] == PERIOD_END.isoformat()
    assert board["version"] == service.store.version()


def test_options_defaults(service):
    o = wall.wall_options(service)
    assert (o.metric, o.area, o.level, o.tour) == ("visits", CITY_CODE, "district", False)
    assert (o.refresh, o.dwell) == (service.settings.wall_refresh_seconds, service.settings.wall_tour_seconds)
    assert wall.wall_options(service, tour="on").level == "town"
    assert wall.wall_options(service, area=YINZHOU).level == "town"
    o = wall.wall_options(service, metric=" risk_code ", area=YINZHOU, level="district", tour="1", dwell="12.5",
                          refresh="0.5")
    assert (o.metric, o.area, o.level, o.tour) == ("risk_code", YINZHOU, "district", True)
    assert (o.dwell, o.refresh) == (12.5, 0.5)
    assert o.query() == {"metric": "risk_code", "area": YINZHOU, "level": "district", "tour": "1", "dwell": "12.5",
                         "refresh": "0.5", "playback": "0", "step": "1.5"}


def test_settings_give_the_default_refresh_and_dwell(demo_settings):
    custom = AtlasService(get_settings(**location(demo_settings), wall_refresh_seconds=7, wall_tour_seconds=45))
    o = wall.wall_options(custom)
    assert (o.refresh, o.dwell) == (7, 45)


@pytest.mark.parametrize("params, error, message", [
    ({"metric": "cases"}, BadParameter, "unknown metric 'cases'"),
    ({"area": YUNLONG}, BadParameter, "is a town; the wall shows the city or one district"),
    ({"area": "330299"}, AreaNotFound, "330299"),
    ({"area": "abc"}, AreaNotFound, "abc"),
    ({"level": "grid"}, BadParameter, "unknown level 'grid'; allowed: district, town"),
    ({"tour": "maybe"}, BadParameter, "tour 'maybe' is not on or off"),
    ({"refresh": "0"}, BadParameter, "refresh '0' must be a number of seconds from 0.25 to 3600"),
    ({"refresh": "soon"}, BadParameter, "refresh 'soon' is not a number of seconds"),
    ({"refresh": "nan"}, BadParameter, "refresh 'nan' must be"),
    ({"refresh": "inf"}, BadParameter, "refresh 'inf' must be"),
    ({"dwell": "1"}, BadParameter, "dwell '1' must be a number of seconds from 2 to 3600"),
    ({"playback": "69"}, BadParameter, "playback '69' must be a number of days from 2 to 68, on or off"),
    ({"playback": "soon"}, BadParameter, "playback 'soon' must be"),
    ({"step": "0.1"}, BadParameter, "step '0.1' must be a number of seconds from 0.2 to 60"),
])
def test_bad_options_name_the_value(service, params, error, message):
    with pytest.raises(error, match=message):
        wall.wall_options(service, **params)


def test_tour_stops_are_the_city_then_each_district(service, atlas):
    view = wall.wall_view(service, area=YINZHOU, tour="1")
    assert [s["code"] for s in view.stops] == [CITY_CODE, *atlas.layers["district"]["code"]]
    assert view.stops[view.start]["code"] == YINZHOU
    assert view.board["area"]["code"] == YINZHOU


@pytest.mark.parametrize("code", [CITY_CODE, YINZHOU, "330225"])
def test_view_bounds_frame_the_area_without_far_islets(atlas, code):
    (south, west), (north, east) = wall.view_bounds(atlas, code)
    geometry = atlas.geometry_of(code)
    w, s, e, n = geometry.bounds
    assert w - 1e-5 <= west < east <= e + 1e-5 and s - 1e-5 <= south < north <= n + 1e-5
    box = shapely.box(west, south, east, north)
    assert shapely.intersection(geometry, box).area >= 0.99 * geometry.area


def test_labels_sit_inside_their_areas(atlas):
    labels = wall.label_points(atlas)
    assert len(labels) == len(atlas.layers["district"]) + len(atlas.layers["town"])
    assert [lb["level"] for lb in labels[:10]] == ["district"] * 10
    for lb in labels:
        assert atlas.geometry_of(lb["code"]).contains(Point(lb["lon"], lb["lat"])), lb["name"]
    towns = [lb for lb in labels if lb["level"] == "town"]
    areas = np.array([atlas.geometry_of(lb["code"]).area for lb in towns])
    assert (np.diff(areas) <= 1e-12).all()  # largest first


def test_playback_options_and_period(service, demo_settings):
    assert wall.wall_options(service).playback == 0
    assert wall.wall_options(service, playback="14", step="0.5").playback == 14
    assert wall.wall_options(service, playback="on").playback == wall.PLAYBACK_DAYS == 14
    assert wall.wall_options(service, playback="off").playback == 0
    custom = AtlasService(get_settings(**location(demo_settings), wall_playback_days=7,
                                       wall_playback_step_seconds=3))
    assert (wall.wall_options(custom).playback, wall.wall_options(custom).step) == (7, 3)
    assert wall.playback_period(PERIOD_END, 14) == (PERIOD_END - dt.timedelta(days=13), PERIOD_END)
    assert wall.playback_period(PERIOD_START + dt.timedelta(days=3), 14) == (PERIOD_START,
                                                                             PERIOD_START + dt.timedelta(days=3))


def test_a_district_wall_shows_only_its_district(service, atlas):
    view = wall.wall_view(service, root=YINZHOU)
    assert [s["code"] for s in view.stops] == [YINZHOU] and view.root == YINZHOU
    assert view.options.level == "town" and view.board["ranking"]["level"] == "town"
    assert {a["code"] for a in view.labels} == {YINZHOU, *atlas.children(YINZHOU)["code"]}
    with pytest.raises(BadParameter, match="level 'district' shows the whole city"):
        wall.wall_view(service, root=YINZHOU, level="district")
    with pytest.raises(BadParameter, match="not a view of the wall of 330212"):
        wall.wall_view(service, root=YINZHOU, area="330203")
