"""How the counts sit in the store: one row per (metric, grid) holding the whole daily series.

A row per (metric, grid, day) would make a scale-1 rebuild write 2.2 million rows and every
reader parse them back, which costs more than the join itself. The table ``grid_series`` holds
``daily``: the counts of every day of the period as little-endian int32 (:data:`SERIES_DTYPE`),
day 0 being :data:`geo.metrics.PERIOD_START`. A (metric, grid) with no count has no row. Loading
the whole cube is one ``frombuffer`` over at most 8 × 10,205 blobs. The checks of each smart
checkpoint are kept the same way in ``checkpoint_series``.

Everything that reads or writes counts goes through this module, so the layout is known in one
place. For SQL users, :func:`counts_rows` gives the familiar long form.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from geo.atlas.metrics import METRICS, N_DAYS, PERIOD_START

METRIC_KEYS = tuple(METRICS)
SERIES_DTYPE = np.dtype("<i4")

SCHEMA = """
CREATE TABLE IF NOT EXISTS grid_series (
    metric TEXT NOT NULL, grid_code TEXT NOT NULL, daily BLOB NOT NULL,
    PRIMARY KEY (metric, grid_code)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint_series (
    checkpoint_code TEXT PRIMARY KEY, daily BLOB NOT NULL
) WITHOUT ROWID;
"""


def _check_range(values: np.ndarray) -> None:
    if len(values) and (values.min() < np.iinfo(SERIES_DTYPE).min or values.max() > np.iinfo(SERIES_DTYPE).max):
        raise OverflowError("a daily count does not fit the store's int32 series")


def write_all(con, grid_codes: np.ndarray, cube: np.ndarray) -> int:
    """Replace every series with ``cube`` [metric, grid, day] (grids in ``grid_codes`` order),
    inside the caller's transaction. Returns the number of rows written."""
    _check_range(cube)
    con.execute("DELETE FROM grid_series")
    m, g = np.nonzero(cube.any(axis=2))
    series = cube[m, g].astype(SERIES_DTYPE)
    metrics = np.asarray(METRIC_KEYS)
    con.executemany("INSERT INTO grid_series (metric, grid_code, daily) VALUES (?, ?, ?)",
                    zip(metrics[m].tolist(), np.asarray(grid_codes)[g].tolist(), (row.tobytes() for row in series)))
    return len(m)


def read_all(con, grid_codes: np.ndarray) -> np.ndarray:
    """The cube [metric, grid, day] as int64, grids in ``grid_codes`` order. Series of grids
    or metrics that ``grid_codes``/METRICS do not know are left out."""
    cube = np.zeros((len(METRIC_KEYS), len(grid_codes), N_DAYS), dtype=np.int64)
    rows = con.execute("SELECT metric, grid_code, daily FROM grid_series").fetchall()
    if not rows:
        return cube
    metric, grid, blobs = zip(*rows)
    m = pd.Index(METRIC_KEYS).get_indexer(metric)
    g = pd.Index(grid_codes).get_indexer(grid)
    ok = (m >= 0) & (g >= 0)
    cube[m[ok], g[ok]] = _series_matrix(blobs)[ok]
    return cube


def add(con, grid_codes: np.ndarray, m: np.ndarray, g: np.ndarray, d: np.ndarray, delta: np.ndarray) -> None:
    """Add ``delta`` at each (metric index, grid index, day index), inside the caller's
    transaction. Series that fall to all zeros are removed, as a rebuild leaves them."""
    if not len(delta):
        return
    metrics = np.asarray(METRIC_KEYS)
    grid_codes = np.asarray(grid_codes)
    pair = m.astype(np.int64) * len(grid_codes) + g
    pairs, inverse = np.unique(pair, return_inverse=True)
    pm, pg = np.divmod(pairs, len(grid_codes))
    keys = list(zip(metrics[pm].tolist(), grid_codes[pg].tolist()))
    current = np.zeros((len(pairs), N_DAYS), dtype=np.int64)
    found = _fetch(con, keys)
    for i, key in enumerate(keys):
        if key in found:
            current[i] = np.frombuffer(found[key], dtype=SERIES_DTYPE)
    np.add.at(current, (inverse, d), delta)
    if (current < 0).any():
        raise ValueError("a count would fall below zero; the store and the records disagree")
    _check_range(current)
    empty = ~current.any(axis=1)
    con.executemany(UPSERT_SERIES, ((k[0], k[1], row.astype(SERIES_DTYPE).tobytes())
                     for k, row, e in zip(keys, current, empty) if not e))
    con.executemany("DELETE FROM grid_series WHERE metric = ? AND grid_code = ?",
                    (k for k, e in zip(keys, empty) if e))


UPSERT_SERIES = ("INSERT INTO grid_series (metric, grid_code, daily) VALUES (?, ?, ?) "
                 "ON CONFLICT (metric, grid_code) DO UPDATE SET daily = excluded.daily")


def _fetch(con, keys: list[tuple[str, str]]) -> dict:
    """The stored series of ``keys`` (metric, grid code). Many keys (a big import touches most
    grids) are read in one scan of their metrics; a few are looked up by key, in batches that
    fit SQLite's limit on parameters."""
    wanted = set(keys)
    if len(keys) > _LOOKUP_LIMIT:
        metrics = sorted({m for m, _ in keys})
        rows = con.execute(f"SELECT metric, grid_code, daily FROM grid_series WHERE metric IN "
                           f"({','.join('?' * len(metrics))})", metrics)
        return {(m, g): blob for m, g, blob in rows if (m, g) in wanted}
    found = {}
    for start in range(0, len(keys), 400):
        batch = keys[start:start + 400]
        marks = ",".join(["(?, ?)"] * len(batch))
        flat = [v for k in batch for v in k]
        for metric, grid, blob in con.execute(
                f"SELECT metric, grid_code, daily FROM grid_series WHERE (metric, grid_code) IN (VALUES {marks})", flat):
            found[(metric, grid)] = blob
    return found


_LOOKUP_LIMIT = 2000


def counts_rows(con) -> pd.DataFrame:
    """Every non-zero count in long form: ``metric, grid_code, day`` (ISO date) and ``value``,
    sorted by metric, grid and day; what a per-day table would hold."""
    rows = con.execute("SELECT metric, grid_code, daily FROM grid_series ORDER BY metric, grid_code").fetchall()
    if not rows:
        return pd.DataFrame({"metric": [], "grid_code": [], "day": [], "value": []})
    metric, grid, blobs = zip(*rows)
    series = _series_matrix(blobs)
    r, d = np.nonzero(series)
    return pd.DataFrame({"metric": np.asarray(metric)[r], "grid_code": np.asarray(grid)[r], "day": _DAY_TEXT[d],
                         "value": series[r, d]})


def _series_matrix(blobs) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), dtype=SERIES_DTYPE).reshape(len(blobs), N_DAYS).astype(np.int64)


def write_checkpoints(con, codes: np.ndarray, daily: np.ndarray) -> int:
    """Replace every checkpoint's daily checks with ``daily`` [checkpoint, day] (rows in
    ``codes`` order), inside the caller's transaction. Returns the number of rows written."""
    _check_range(daily)
    con.execute("DELETE FROM checkpoint_series")
    keep = np.flatnonzero(daily.any(axis=1))
    con.executemany("INSERT INTO checkpoint_series (checkpoint_code, daily) VALUES (?, ?)",
                    zip(np.asarray(codes)[keep].tolist(), (row.tobytes() for row in daily[keep].astype(SERIES_DTYPE))))
    return len(keep)


def read_checkpoints(con) -> tuple[np.ndarray, np.ndarray]:
    """(codes sorted, daily checks [checkpoint, day] as int64) of every checkpoint with checks."""
    rows = con.execute("SELECT checkpoint_code, daily FROM checkpoint_series ORDER BY checkpoint_code").fetchall()
    if not rows:
        return np.array([], dtype=object), np.zeros((0, N_DAYS), dtype=np.int64)
    codes, blobs = zip(*rows)
    return np.asarray(codes, dtype=object), _series_matrix(blobs)


def migrate(con) -> None:
    """Move the per-day tables of a store in the per-day layout (``counts``: one row per
    metric, grid and day; ``checkpoint_checks``: one per checkpoint and day) into the series
    tables and drop them. Called on every connect of a SQLite store (PostGIS stores never had
    them); a no-op once they are gone."""
    _migrate_table(con, "counts", _move_long_counts)
    _migrate_table(con, "checkpoint_checks", _move_checkpoint_checks)


def _migrate_table(con, table: str, move) -> None:
    """Run ``move(con)`` and drop ``table`` in one transaction, if ``table`` still exists."""
    def exists():
        return con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()

    if not exists():
        return
    con.execute("BEGIN IMMEDIATE")
    try:
        if exists():  # another process may have moved it while we waited for the lock
            move(con)
            con.execute(f"DROP TABLE {table}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _long_to_series(keys: np.ndarray, days: pd.Series, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys, their daily series) from rows of (key, ISO day, value); other days dropped."""
    day = _day_numbers(days)
    ok = (day >= 0) & (day < N_DAYS)
    distinct, inverse = np.unique(keys[ok], return_inverse=True)
    series = np.zeros((len(distinct), N_DAYS), dtype=np.int64)
    np.add.at(series, (inverse, day[ok]), values[ok])
    return distinct, series


def _move_long_counts(con) -> None:
    rows = pd.read_sql_query("SELECT metric, grid_code, day, value FROM counts", con)
    keys, series = _long_to_series((rows["metric"] + "|" + rows["grid_code"]).to_numpy(dtype=str), rows["day"],
                                   rows["value"].to_numpy())
    con.executemany(UPSERT_SERIES, ((*k.split("|"), row.astype(SERIES_DTYPE).tobytes()) for k, row in zip(keys, series) if row.any()))


def _move_checkpoint_checks(con) -> None:
    if con.execute("SELECT COUNT(*) FROM checkpoint_series").fetchone()[0]:
        return  # already filled by a newer writer: the old table is stale
    rows = pd.read_sql_query("SELECT checkpoint_code, day, checks FROM checkpoint_checks", con)
    codes, daily = _long_to_series(rows["checkpoint_code"].to_numpy(dtype=str), rows["day"], rows["checks"].to_numpy())
    write_checkpoints(con, codes, daily)


_DAY_TEXT = np.array([(PERIOD_START + dt.timedelta(days=i)).isoformat() for i in range(N_DAYS)])


def _day_numbers(iso_days: pd.Series) -> np.ndarray:
    return (pd.to_datetime(iso_days).to_numpy().astype("datetime64[D]") - np.datetime64(PERIOD_START, "D")).astype(np.int64)


# store key -> (version, (codes, daily)): every view asks for the same checks again and again.
_checkpoint_cache: dict[str, tuple] = {}


def checkpoint_daily(store) -> tuple[np.ndarray, np.ndarray]:
    """``read_checkpoints`` of ``store`` (a :class:`geo.store.Store`), kept until its version moves."""
    version = store.version()
    cached = _checkpoint_cache.get(store.key)
    if cached and cached[0] == version:
        return cached[1]
    with store.snapshot() as con:
        version = int(con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
        found = read_checkpoints(con)
    _checkpoint_cache[store.key] = (version, found)
    return found
