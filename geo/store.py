"""Where Grid Atlas keeps its counts, records, users and audit log: one of two stores.

* :class:`SqliteStore`, the embedded default: one SQLite file under the data folder; no server.
  The areas and checkpoints stay in the demo folder's ``areas.gpkg``.
* :class:`geo.postgis_store.PostgisStore`, chosen by ``GRIDATLAS_DATABASE_URL=postgresql://…``:
  PostgreSQL with PostGIS, for several server processes and machines on the same data. The
  areas and checkpoints live there too, in PostGIS tables with spatial indexes.

:func:`open_store` picks one from the settings. Both offer the same small interface, and the
modules that read and write (counts, records, users, audit) write SQL that both understand:
``?`` placeholders and ``INSERT … ON CONFLICT``. ``connection.dialect`` tells the two apart
where they must differ.

Writers change a store only inside one transaction (:meth:`Store.transaction`), one writer at
a time, and every write of counts bumps ``meta.version``; readers cache what they load and
reload when the version moves, in this process or any other. A process killed mid-write leaves
the previous state: the database rolls back a transaction its client never committed.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from . import count_store

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
        from .areas import Atlas

        return Atlas.load(demo_dir)

    def save_atlas(self, con, atlas, demo_dir: Path) -> None:
        """Replace the stored areas with ``atlas``, as the last step of the caller's transaction."""
        from .areas import areas_file, write_atlas_file

        write_atlas_file(atlas, areas_file(demo_dir))

    def areas_stamp(self, demo_dir: Path):
        """Changes whenever the areas are replaced (a grid boundary update), so caches reload."""
        from .areas import areas_file

        try:
            st = os.stat(areas_file(demo_dir))
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)


def open_store(settings) -> Store:
    """The store the settings name: PostGIS when ``database_url`` is set, else the SQLite file.

    One object per database in a process, so its connection pool is shared."""
    if settings.database_url:
        from .postgis_store import PostgisStore

        key = (settings.database_url, settings.database_schema)
        with _OPEN_LOCK:
            store = _OPEN.get(key)
            if store is None or store.pid != os.getpid():
                store = _OPEN[key] = PostgisStore(settings.database_url, settings.database_schema)
            return store
    return SqliteStore(settings.store_path)


_OPEN: dict[tuple, Store] = {}
_OPEN_LOCK = threading.Lock()


def close_stores() -> None:
    """Close the connection pools of every database store this process opened (each reopens
    on its next use): for a command that is done, or a test run that opened many."""
    import sys

    postgis = sys.modules.get("geo.postgis_store")  # loaded only if a database store was opened
    if postgis is not None:
        postgis.close_all()




class SqliteConnection(sqlite3.Connection):
    """A sqlite3 connection that says which dialect it speaks."""

    dialect = "sqlite"


# Files (path, device, inode) whose schema this process has put in place.
_SCHEMA_READY: set[tuple] = set()
# Per thread: (path, pid, file id) -> a connection kept open for reads (Store.query).
_READERS = threading.local()
_KEEP_READERS = 4


class SqliteStore(Store):
    """A handle on the SQLite store at ``path`` (created with its schema on first use)."""

    dialect = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.key = str(self.path)
        # Resolved once: _file_id runs on every query, and resolve() was most of its cost.
        self._resolved = str(self.path.resolve())

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def exists(self) -> bool:
        """Whether the store's file exists."""
        return self.path.exists()

    def connect(self) -> sqlite3.Connection:
        """Open a connection with the schema in place. WAL lets readers go on during a rebuild."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None, factory=SqliteConnection)
        con.execute("PRAGMA synchronous=NORMAL")
        # Every request opens a connection: the schema is checked once per file and process
        # (a file replaced on disk is a new inode, and is checked again).
        file_id = self._file_id()
        if file_id is None or file_id not in _SCHEMA_READY:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA + count_store.SCHEMA)
            count_store.migrate(con)
            # Insert only when missing: an INSERT takes the write lock even when it inserts
            # nothing, and opening a connection must not wait for a long import to commit.
            if con.execute(READ_VERSION).fetchone() is None:
                con.execute("INSERT OR IGNORE INTO meta VALUES ('version', '0')")
            _SCHEMA_READY.add(self._file_id())
        return con

    def _file_id(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        if st.st_size == 0:  # a file just created (maybe on a reused inode) has no schema yet
            return None
        return (self._resolved, st.st_dev, st.st_ino)

    def _begin_write(self, con, wait_seconds: float | None) -> None:
        # BEGIN IMMEDIATE takes SQLite's one write lock now, not at the first write.
        if wait_seconds is not None:
            con.execute(f"PRAGMA busy_timeout = {int(wait_seconds * 1000)}")
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if wait_seconds is not None and "locked" in str(err):
                raise StoreBusy(str(err)) from None
            raise

    def _begin_read(self, con) -> None:
        con.execute("BEGIN")  # deferred: it reads from one WAL snapshot

    def query(self, sql: str, params=()) -> list[tuple]:
        """All rows of one read-only statement, on a connection this thread keeps open.

        Every web request reads the version and its user: opening a connection for each read
        cost more than the rest of a warm request. In WAL mode each statement sees the latest
        commit, so a kept connection is never stale."""
        return self._reader().execute(sql, params).fetchall()

    def _reader(self) -> sqlite3.Connection:
        kept = getattr(_READERS, "cons", None)
        if kept is None:
            kept = _READERS.cons = {}
        # The process id: a forked server worker must not use its parent's connection (and
        # never closes it either: closing it there could disturb the parent's locks).
        key = (str(self.path), os.getpid(), self._file_id())
        con = kept.get(key)
        if con is None or key[2] is None:
            for old in [k for k in kept if k[:2] == key[:2]]:
                kept.pop(old).close()  # the file was replaced: its connection is stale
            mine = [k for k in kept if k[1] == key[1]]
            for old in mine[:max(0, len(mine) - _KEEP_READERS + 1)]:
                kept.pop(old).close()  # a process may open many stores (tests): keep a few
            con = self.connect()
            kept[(str(self.path), os.getpid(), self._file_id())] = con
        return con
