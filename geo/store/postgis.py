"""The PostgreSQL + PostGIS store (``GRIDATLAS_DATABASE_URL=postgresql://…``).

It holds what the embedded store holds (counts, records, users, audit log) in ordinary tables,
and the areas and checkpoints in PostGIS tables with spatial indexes, all in one schema
(``GRIDATLAS_DATABASE_SCHEMA``, default ``gridatlas``). Several server processes, on one machine
or many, share it: every write of counts bumps ``meta.version`` in its own transaction, and each
process compares the version on every request and reloads what it caches.

The schema is created and migrated by :func:`migrate`, a plain-SQL migration runner: the files
``geo/store/migrations/postgis/NNNN_name.sql`` are applied in order, each in its own transaction, and
recorded in ``schema_migrations``; an advisory lock lets only one process migrate at a time.

The modules that read and write speak SQL both stores understand, with ``?`` placeholders;
:class:`PgConnection` turns those into psycopg's ``%s``.
"""

from __future__ import annotations

import functools
import os
import re
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg
import shapely
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from geo.errors import BadParameter, DataNotReady
from geo.store.base import Store, StoreBusy

MIGRATIONS_DIR = Path(__file__).parent / "migrations" / "postgis"
# Connections each server process keeps: a request needs one at a time, and a process serves
# a few requests at once (waitress or gunicorn threads).
POOL_SIZE = 8
_GRID_NUMBERS = ("households", "population", "leaders", "workers")
# Stores whose pool is open, so close_all() reaches them all.
_WITH_POOL: set = set()
# Pools a forked process inherited from its parent: never used, never closed (see _get_pool).
_INHERITED: list = []


def close_all() -> None:
    """Close every open pool of this process (each store reopens its own on next use)."""
    for store in list(_WITH_POOL):
        store.close()


class PostgisStore(Store):
    """The store in the PostgreSQL database at ``url``, inside ``schema``."""

    dialect = "postgis"

    def __init__(self, url: str, schema: str = "gridatlas"):
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema) or schema.startswith("pg_"):
            raise BadParameter(f"database schema {schema!r} must be lower-case letters, digits and _, "
                               "not starting with pg_ (PostgreSQL keeps those names)")
        self.url = url
        self.schema = schema
        self.key = f"{without_password(url)}#{schema}"
        self.pid = os.getpid()
        # Writers of one schema take turns on this lock (SQLite's BEGIN IMMEDIATE, here).
        self._write_lock = zlib.crc32(f"gridatlas-write:{schema}".encode()) & 0x7FFFFFFF
        self._pool: ConnectionPool | None = None
        self._stamp = (None, None)

    def __repr__(self) -> str:
        return f"PostgisStore({without_password(self.url)!r}, schema={self.schema!r})"

    def _get_pool(self) -> ConnectionPool:
        if self.pid != os.getpid():
            # A forked child (an export worker, a server worker forked after use) must not talk
            # on its parent's sockets, nor close them: the pool is left alone, kept referenced
            # so that collecting it never sends the server a goodbye on the parent's behalf.
            if self._pool is not None:
                _INHERITED.append(self._pool)
            _WITH_POOL.discard(self)
            self._pool = None
            self.pid = os.getpid()
        if self._pool is None:
            migrate(self.url, self.schema)
            schema = self.schema

            def configure(con):
                con.execute(f"SET search_path TO {schema}, public")

            _WITH_POOL.add(self)
            self._pool = ConnectionPool(self.url, min_size=1, max_size=POOL_SIZE, open=True, configure=configure,
                                        kwargs={"autocommit": True}, name=f"gridatlas-{schema}",
                                        check=ConnectionPool.check_connection)
        return self._pool

    def close(self) -> None:
        """Close the pool's connections (tests and CLI runs that are done with the store)."""
        _WITH_POOL.discard(self)
        if self._pool is not None:
            if self.pid == os.getpid():
                self._pool.close()
            else:
                _INHERITED.append(self._pool)  # the parent's: see _get_pool
            self._pool = None

    def connect(self) -> "PgConnection":
        """A pooled connection in autocommit mode; ``close()`` gives it back."""
        pool = self._get_pool()
        return PgConnection(pool.getconn(), pool)

    def _begin_write(self, con, wait_seconds: float | None) -> None:
        # Writers of this schema take turns on one advisory lock, held until the commit, as
        # SQLite's single writer does.
        con.execute("BEGIN")
        if wait_seconds is not None:
            con.execute(f"SET LOCAL lock_timeout = '{max(1, int(wait_seconds * 1000))}ms'")
        try:
            con.execute("SELECT pg_advisory_xact_lock(?)", (self._write_lock,))
        except psycopg.errors.LockNotAvailable as err:
            raise StoreBusy(str(err)) from None

    def _begin_read(self, con) -> None:
        con.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def query(self, sql: str, params=()) -> list[tuple]:
        """All rows of one read-only statement, on a pooled connection."""
        con = self.connect()
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    # Areas --------------------------------------------------------------------------------

    def load_atlas(self, demo_dir: Path | None):
        """The atlas from the PostGIS tables. A store without areas is seeded from the demo
        folder's GeoPackage (DataNotReady when there is none either)."""
        from geo.atlas.areas import AREA_LAYERS, Atlas

        with self.snapshot() as con:
            areas = con.execute("SELECT code, level, name, parent, households, population, leaders, workers, "
                                "ST_AsBinary(geom) FROM areas ORDER BY code").fetchall()
            points = con.execute("SELECT code, name, kind, grid_code, ST_AsBinary(geom) FROM checkpoints "
                                 "ORDER BY ord").fetchall()
        if not areas:
            if demo_dir is None:
                raise DataNotReady(f"{self!r} holds no areas yet: run `python -m geo demo` or `python -m geo rebuild`")
            atlas = Atlas.load(demo_dir)
            with self.transaction(bump_version=False) as con:
                if not con.execute("SELECT 1 FROM areas LIMIT 1").fetchone():  # not seeded meanwhile
                    self.save_atlas(con, atlas, demo_dir)
            return atlas
        columns = ["code", "level", "name", "parent", *_GRID_NUMBERS, "wkb"]
        import geopandas as gpd
        import pandas as pd

        frame = pd.DataFrame(areas, columns=columns)
        layers = {}
        for level in AREA_LAYERS:
            part = frame[frame["level"] == level].reset_index(drop=True)
            keep = ["code", "level", "name", "parent"] + (list(_GRID_NUMBERS) if level == "grid" else [])
            data = part[keep].copy()
            if level == "grid":
                data[list(_GRID_NUMBERS)] = data[list(_GRID_NUMBERS)].fillna(0).astype("int64")
            layers[level] = gpd.GeoDataFrame(data, geometry=shapely.from_wkb(part["wkb"].tolist()), crs="EPSG:4326")
        cps = pd.DataFrame(points, columns=["code", "name", "kind", "grid_code", "wkb"])
        checkpoints = gpd.GeoDataFrame(cps.drop(columns="wkb"), geometry=shapely.from_wkb(cps["wkb"].tolist()),
                                       crs="EPSG:4326")
        return Atlas(layers, checkpoints)

    def save_atlas(self, con, atlas, demo_dir: Path | None = None) -> None:
        """Replace the areas and checkpoints with ``atlas``'s, inside the caller's transaction
        (COPY, geometries as hex EWKB), and move ``areas_version`` so every process reloads."""
        from geo.atlas.areas import AREA_LAYERS

        con.execute("DELETE FROM areas")
        con.execute("DELETE FROM checkpoints")
        with con.copy("COPY areas (code, level, name, parent, households, population, leaders, workers, geom) "
                      "FROM STDIN") as copy:
            for level in AREA_LAYERS:
                layer = atlas.layers[level]
                geoms = _ewkb_hex(_as_multi(layer.geometry.to_numpy()))
                numbers = (layer[list(_GRID_NUMBERS)].to_numpy() if level == "grid"
                           else np.full((len(layer), len(_GRID_NUMBERS)), None))
                parents = [p if isinstance(p, str) else None for p in layer["parent"].tolist()]
                for code, name, parent, nums, geom in zip(layer["code"].tolist(), layer["name"].tolist(),
                                                          parents, numbers.tolist(), geoms):
                    copy.write_row((code, level, name, parent, *nums, geom))
        cps = atlas.checkpoints
        with con.copy("COPY checkpoints (code, ord, name, kind, grid_code, geom) FROM STDIN") as copy:
            geoms = _ewkb_hex(cps.geometry.to_numpy())
            for i, (code, name, kind, grid, geom) in enumerate(zip(cps["code"].tolist(), cps["name"].tolist(),
                                                                   cps["kind"].tolist(), cps["grid_code"].tolist(),
                                                                   geoms)):
                copy.write_row((code, i, name, kind, grid, geom))
        self.set_meta(con, "areas_version", f"{time.time_ns()}")

    def areas_stamp(self, demo_dir: Path | None = None):
        """``meta.areas_version``, read again only when the store's version moved (every change
        of the areas is a counted write, so this asks one query per request, not two)."""
        version = self.version()
        if self._stamp[0] != version:
            self._stamp = (version, self.get_meta("areas_version"))
        return self._stamp[1]


class PgConnection:
    """A pooled psycopg connection that takes the ``?`` placeholders of the shared SQL."""

    dialect = "postgis"

    def __init__(self, raw: psycopg.Connection, pool: ConnectionPool):
        self._raw = raw
        self._pool = pool

    def execute(self, sql: str, params=()):
        """Run one statement; the cursor is returned for fetchone/fetchall/iteration/rowcount."""
        cur = self._raw.cursor()
        if params:
            cur.execute(_placeholders(sql), _plain(params))
        else:
            cur.execute(sql)
        return cur

    def executemany(self, sql: str, rows):
        """Run one statement for every row of ``rows`` (pipelined by psycopg)."""
        cur = self._raw.cursor()
        cur.executemany(_placeholders(sql), (_plain(r) for r in rows))
        return cur

    @contextmanager
    def copy(self, statement: str):
        """psycopg's COPY … FROM STDIN, for bulk loads."""
        with self._raw.cursor().copy(statement) as copy:
            yield copy

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on this connection."""
        return self._raw.info.transaction_status != TransactionStatus.IDLE

    def rollback(self) -> None:
        """Roll back an open transaction (a broken connection is left to the pool to discard)."""
        if self._raw.closed:
            return
        if self.in_transaction:
            try:
                self._raw.execute("ROLLBACK")
            except psycopg.Error:
                pass

    def close(self) -> None:
        """Give the connection back to its pool."""
        if self._raw is not None:
            self._pool.putconn(self._raw)
            self._raw = None


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """``sql`` with ``?`` (outside quotes) as ``%s`` and every literal ``%`` doubled."""
    out, quote = [], None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


def _plain(params):
    """numpy scalars as Python ones: psycopg adapts the latter only."""
    return [p.item() if isinstance(p, np.generic) else p for p in params]


def _as_multi(geoms: np.ndarray) -> np.ndarray:
    """Polygons as one-part MultiPolygons, so every area fits the MultiPolygon column."""
    out = np.array(geoms, dtype=object)
    single = shapely.get_type_id(out) == shapely.GeometryType.POLYGON
    out[single] = [shapely.MultiPolygon([g]) for g in out[single]]
    return out


def _ewkb_hex(geoms: np.ndarray) -> list[str]:
    return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True).tolist()


def without_password(url: str) -> str:
    """``url`` with its password (if any) masked, for messages and logs."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def migrations() -> list[tuple[str, str]]:
    """(name, SQL) of every migration file, in order."""
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))]


def migrate(url: str, schema: str) -> list[str]:
    """Bring ``schema`` of the database at ``url`` up to date; returns the migrations applied.

    Creates the PostGIS extension (if the database lacks it and the role may) and the schema.
    Each migration runs in its own transaction with its record in ``schema_migrations``, so a
    failed one leaves no trace and is tried again next time."""
    applied = []
    try:
        con = psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as err:
        raise StoreUnavailable(f"cannot reach the database at {without_password(url)}: {err}".strip()) from None
    with con:
        # Session-level lock: two processes starting at once must not both migrate.
        con.execute("SELECT pg_advisory_lock(%s)", (zlib.crc32(b"gridatlas-migrate") & 0x7FFFFFFF,))
        try:
            if not con.execute("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").fetchone():
                try:
                    con.execute("CREATE EXTENSION IF NOT EXISTS postgis SCHEMA public")
                except psycopg.Error as err:
                    raise StoreUnavailable(
                        f"the database at {without_password(url)} lacks PostGIS and this role cannot add it "
                        f"({err.diag.message_primary}); ask its administrator to run CREATE EXTENSION postgis") from None
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(f"SET search_path TO {schema}, public")
            con.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {r[0] for r in con.execute("SELECT name FROM schema_migrations")}
            for name, sql in migrations():
                if name in done:
                    continue
                with con.transaction():
                    con.execute(sql)
                    con.execute("INSERT INTO schema_migrations VALUES (%s, now()::text)", (name,))
                applied.append(name)
        finally:
            con.execute("SELECT pg_advisory_unlock_all()")
    return applied


class StoreUnavailable(DataNotReady):
    """The configured database cannot be used (unreachable, or without PostGIS): 503, not 500."""


__all__ = ["PostgisStore", "PgConnection", "StoreUnavailable", "migrate", "migrations", "without_password"]
