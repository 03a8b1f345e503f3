"""The interface both stores offer, and the SQL they share (the schema, the version)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    metric TEXT NOT NULL, record_id TEXT NOT NULL, day TEXT NOT NULL,
    lon REAL NOT NULL, lat REAL NOT NULL, grid_code TEXT, source TEXT, imported_at TEXT,
    PRIMARY KEY (metric, record_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS worker_online (
    district_code TEXT NOT NULL, day TEXT NOT NULL, online INTEGER NOT NULL, total INTEGER NOT NULL,
    PRIMARY KEY (district_code, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS imports (
    import_id TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT, imported_at TEXT NOT NULL,
    report TEXT NOT NULL, rejects_path TEXT
);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, area TEXT NOT NULL, password_hash TEXT NOT NULL,
    must_change INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, password_changed_at TEXT NOT NULL,
    last_login_at TEXT
);
CREATE TABLE IF NOT EXISTS wall_devices (
    name TEXT PRIMARY KEY, area TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, revoked_at TEXT, claimed_at TEXT, claimed_from TEXT, last_seen_at TEXT
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL, client TEXT
);
CREATE TABLE IF NOT EXISTS login_failures (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
CREATE INDEX IF NOT EXISTS login_failures_at ON login_failures (at);
"""

# Portable statements both stores run as they are.
SET_META = "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
BUMP_VERSION = "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'version'"
READ_VERSION = "SELECT value FROM meta WHERE key = 'version'"


class StoreBusy(Exception):
    """Another writer held the store longer than the caller was willing to wait."""


class Store:
    """What every store offers; see :class:`SqliteStore` and :class:`geo.postgis_store.PostgisStore`."""

    #: "sqlite" or "postgis"
    dialect: str
    #: Names this store among others in one process (caches are kept per store).
    key: str

    def connect(self):
        """A connection with the schema in place, in autocommit mode; the caller closes it."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of kept connections (a no-op where there are none to keep)."""

    @contextmanager
    def transaction(self, bump_version: bool = True, wait_seconds: float | None = None):
        """Yield a connection inside one write transaction; commit at the end, roll back on any error.

        Writers take turns: a second writer waits for the first to commit. The version is bumped
        inside the same transaction, so a reader sees either the old data with the old version or
        the new data with the new one. Writes that change no count (users, the audit log) pass
        ``bump_version=False``: they must not make every reader reload its counts. With
        ``wait_seconds``, :class:`StoreBusy` is raised instead of waiting longer for another writer.
        """
        con = self.connect()
        try:
            self._begin_write(con, wait_seconds)
            yield con
            if bump_version:
                con.execute(BUMP_VERSION)
            con.execute("COMMIT")
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()

    @contextmanager
    def snapshot(self):
        """Yield a connection whose reads all see the same commit (e.g. the version and the counts)."""
        con = self.connect()
        try:
            self._begin_read(con)
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.rollback()
            raise
        finally:
            con.close()

    def _begin_write(self, con, wait_seconds: float | None) -> None:
        """Open the write transaction on ``con``, taking the store's one writer's turn."""
        raise NotImplementedError

    def _begin_read(self, con) -> None:
        """Open a read transaction on ``con`` that sees one commit throughout."""
        raise NotImplementedError

    def query(self, sql: str, params=()) -> list[tuple]:
        """All rows of one read-only statement."""
        raise NotImplementedError

    def exists(self) -> bool:
        """Whether the store has been created (a new SQLite file is not, until first written)."""
        return True

    def version(self) -> int:
        """The number of committed writes so far (0 for a new store)."""
        if not self.exists():
            return 0
        return int(self.query(READ_VERSION)[0][0])

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """Read one metadata value."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, con, key: str, value: str) -> None:
        """Write one metadata value inside the caller's transaction."""
        con.execute(SET_META, (key, value))

    # Areas: where the atlas lives. SQLite leaves them in the demo folder's GeoPackage.

    def load_atlas(self, demo_dir: Path):
        """The atlas of this store's areas (``demo_dir``'s GeoPackage seeds a new PostGIS store)."""
        from geo.atlas.areas import Atlas

        return Atlas.load(demo_dir)

    def save_atlas(self, con, atlas, demo_dir: Path) -> None:
        """Replace the stored areas with ``atlas``, as the last step of the caller's transaction."""
        from geo.atlas.areas import areas_file, write_atlas_file

        write_atlas_file(atlas, areas_file(demo_dir))

    def areas_stamp(self, demo_dir: Path):
        """Changes whenever the areas are replaced (a grid boundary update), so caches reload."""
        from geo.atlas.areas import areas_file

        try:
            st = os.stat(areas_file(demo_dir))
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)
