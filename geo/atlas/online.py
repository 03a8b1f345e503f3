"""Grid workers online: per district and day, how many of its grid workers were online.

The grid system reports these figures daily per district (the demo writes them to
``worker_online.parquet``); a rebuild loads them into the store's ``worker_online`` table in
its transaction. The wall's "grid-worker online rate" tile reads them from there.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from geo.atlas.hierarchy import CITY_CODE, level_of
from geo.errors import InputFileError

ONLINE_FILE = "worker_online.parquet"
COLUMNS = ("district_code", "date", "online", "total")


def read_online(path: Path | None) -> pd.DataFrame | None:
    """The online figures of ``path`` as rows (district_code, day ISO, online, total), or None
    when there is no such file. A file without the columns, or with online above total, is refused."""
    if path is None or not Path(path).exists():
        return None
    frame = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise InputFileError(path, f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    bad = frame["online"] > frame["total"]
    if bad.any():
        raise InputFileError(path, f"online is above total for {int(bad.sum())} row(s)", row=int(bad.idxmax()) + 1)
    return pd.DataFrame({
        "district_code": frame["district_code"].astype(str),
        "day": pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d"),
        "online": frame["online"].astype("int64"),
        "total": frame["total"].astype("int64"),
    })


def write_online(con, rows: pd.DataFrame) -> None:
    """Replace the worker_online table with ``rows`` inside the caller's transaction."""
    con.execute("DELETE FROM worker_online")
    con.executemany("INSERT INTO worker_online (district_code, day, online, total) VALUES (?, ?, ?, ?)",
                    rows[["district_code", "day", "online", "total"]].itertuples(index=False, name=None))


def online_by_day(store, code: str, days: list[dt.date]) -> dict[dt.date, tuple[int, int]]:
    """(online, total) grid workers of the city or of one district on each of ``days`` that has
    figures. Figures are kept per district, so a smaller area gets none (an empty dict)."""
    if level_of(code) not in ("city", "district"):
        return {}
    where = "" if code == CITY_CODE else "AND district_code = ?"
    params = [d.isoformat() for d in days] + ([] if code == CITY_CODE else [code])
    marks = ",".join("?" * len(days))
    con = store.connect()
    try:
        rows = con.execute(f"SELECT day, SUM(online), SUM(total) FROM worker_online "
                           f"WHERE day IN ({marks}) {where} GROUP BY day", params).fetchall()
    finally:
        con.close()
    return {dt.date.fromisoformat(day): (int(on), int(total)) for day, on, total in rows if total}
