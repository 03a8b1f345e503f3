"""The counts' layout in the store: one daily series per (metric, grid) and per checkpoint."""

import sqlite3

import numpy as np
import pytest

from geo.atlas.metrics import N_DAYS
from geo.store import SqliteStore
from geo.store import counts as count_store

CODES = np.array(["330203001001001", "330203001001002", "330203001002001"])


def _cube(rng):
    cube = np.zeros((len(count_store.METRIC_KEYS), len(CODES), N_DAYS), dtype=np.int64)
    cube[0] = rng.poisson(3, size=(len(CODES), N_DAYS))
    cube[3, 1, 10] = 7
    return cube


def test_a_cube_comes_back_as_written_and_empty_series_take_no_row(new_store):
    store = new_store()
    cube = _cube(np.random.default_rng(1))
    with store.transaction() as con:
        written = count_store.write_all(con, CODES, cube)
    con = store.connect()
    try:
        assert written == len(CODES) + 1  # visits of every grid, risk codes of one
        assert con.execute("SELECT COUNT(*) FROM grid_series").fetchone()[0] == written
        np.testing.assert_array_equal(count_store.read_all(con, CODES), cube)
        rows = count_store.counts_rows(con)
    finally:
        con.close()
    assert len(rows) == np.count_nonzero(cube) and rows["value"].sum() == cube.sum()
    risk = rows[rows["metric"] == "risk_code"].iloc[0]
    assert (risk["grid_code"], risk["day"], risk["value"]) == (CODES[1], "2020-02-03", 7)


def test_adding_deltas_moves_single_days_and_drops_series_that_reach_zero(new_store):
    store = new_store()
    cube = _cube(np.random.default_rng(2))
    with store.transaction() as con:
        count_store.write_all(con, CODES, cube)
        # +5 visits on day 0 of grid 2, and the one risk-code count of grid 1 taken away.
        count_store.add(con, CODES, np.array([0, 3]), np.array([2, 1]), np.array([0, 10]), np.array([5, -7]))
    cube[0, 2, 0] += 5
    cube[3, 1, 10] = 0
    con = store.connect()
    try:
        np.testing.assert_array_equal(count_store.read_all(con, CODES), cube)
        assert con.execute("SELECT COUNT(*) FROM grid_series WHERE metric = 'risk_code'").fetchone()[0] == 0
    finally:
        con.close()


def test_a_delta_below_zero_is_refused_and_the_transaction_changes_nothing(new_store):
    store = new_store()
    cube = _cube(np.random.default_rng(3))
    with store.transaction() as con:
        count_store.write_all(con, CODES, cube)
    with pytest.raises(ValueError, match="below zero"):
        with store.transaction() as con:
            count_store.add(con, CODES, np.array([3]), np.array([0]), np.array([0]), np.array([-1]))
    con = store.connect()
    try:
        np.testing.assert_array_equal(count_store.read_all(con, CODES), cube)
    finally:
        con.close()


def test_checkpoint_series_round_trip(new_store):
    store = new_store()
    codes = np.array(["330203001K0001", "330203001K0002", "330203001K0003"])
    daily = np.zeros((3, N_DAYS), dtype=np.int64)
    daily[0, :5] = [1, 2, 3, 4, 5]
    daily[2, -1] = 9
    with store.transaction() as con:
        assert count_store.write_checkpoints(con, codes, daily) == 2  # the idle checkpoint has no row
    known, got = count_store.checkpoint_daily(store)
    assert list(known) == [codes[0], codes[2]]
    np.testing.assert_array_equal(got, daily[[0, 2]])


def test_a_sqlite_store_with_the_old_per_day_tables_is_migrated_on_open(tmp_path):
    # SQLite only: PostGIS stores started with the series tables.
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('version', '4');
        CREATE TABLE counts (metric TEXT, grid_code TEXT, day TEXT, value INTEGER,
                             PRIMARY KEY (metric, grid_code, day)) WITHOUT ROWID;
        INSERT INTO counts VALUES ('visits', '330203001001001', '2020-01-24', 3),
                                  ('visits', '330203001001001', '2020-03-31', 4),
                                  ('appeals', '330203001002001', '2020-02-01', 1);
        CREATE TABLE checkpoint_checks (checkpoint_code TEXT, day TEXT, checks INTEGER,
                                        PRIMARY KEY (checkpoint_code, day)) WITHOUT ROWID;
        INSERT INTO checkpoint_checks VALUES ('330203001K0001', '2020-01-25', 12);
    """)
    con.close()
    store = SqliteStore(path)
    con = store.connect()
    try:
        tables = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        cube = count_store.read_all(con, CODES)
    finally:
        con.close()
    assert "counts" not in tables and "checkpoint_checks" not in tables
    assert store.version() == 4
    assert (cube[0, 0, 0], cube[0, 0, N_DAYS - 1], cube[6, 2, 8], cube.sum()) == (3, 4, 1, 8)
    known, daily = count_store.checkpoint_daily(store)
    assert list(known) == ["330203001K0001"] and daily[0, 1] == 12 and daily.sum() == 12


def test_adding_to_thousands_of_series_at_once_matches_one_by_one(new_store):
    # Over 2,000 (metric, grid) pairs are read in one scan instead of by key: same result.
    codes = np.array([f"330203001{i:06d}" for i in range(1500)])
    rng = np.random.default_rng(4)
    cube = np.zeros((len(count_store.METRIC_KEYS), len(codes), N_DAYS), dtype=np.int64)
    cube[:2] = rng.poisson(2, size=(2, len(codes), N_DAYS))
    store = new_store()
    with store.transaction() as con:
        count_store.write_all(con, codes, cube[:, :1000])  # the last 500 grids have no series yet
    m = np.repeat([0, 1], len(codes))
    g = np.tile(np.arange(len(codes)), 2)
    d = rng.integers(0, N_DAYS, len(m))
    delta = rng.integers(1, 4, len(m))
    with store.transaction() as con:
        count_store.add(con, codes, m, g, d, delta)
    expected = np.zeros_like(cube)
    expected[:, :1000] = cube[:, :1000]
    np.add.at(expected, (m, g, d), delta)
    con = store.connect()
    try:
        np.testing.assert_array_equal(count_store.read_all(con, codes), expected)
    finally:
        con.close()
