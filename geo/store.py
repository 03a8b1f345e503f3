"""The embedded store: one SQLite file holding counts (laid out by :mod:`geo.count_store`),
checkpoint checks, imported records, users and the audit log. No server is needed.

Writers change it only inside one transaction (:meth:`Store.transaction`), and every write
bumps ``meta.version``; readers cache what they load and reload when the version moves. A
process killed mid-write leaves the previous state, because SQLite rolls back an unfinished
transaction from its journal on the next open.
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


# Files (path, device, inode) whose schema this process has put in place.
_SCHEMA_READY: set[tuple] = set()
# Per thread: (path, pid, file id) -> a connection kept open for reads (Store.query).
_READERS = threading.local()
_KEEP_READERS = 4


class Store:
    """A handle on the SQLite store at ``path`` (created with its schema on first use)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def connect(self) -> sqlite3.Connection:
        """Open a connection with the schema in place. WAL lets readers go on during a rebuild."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
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
            if con.execute("SELECT 1 FROM meta WHERE key = 'version'").fetchone() is None:
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
        return (str(self.path.resolve()), st.st_dev, st.st_ino)

    @contextmanager
    def transaction(self, bump_version: bool = True):
        """Yield a connection inside BEGIN IMMEDIATE … COMMIT; roll back on any error.

        The version is bumped inside the same transaction, so a reader sees either the old
        data with the old version or the new data with the new one. Writes that change no
        count (users, the audit log) pass ``bump_version=False``: they must not make every
        reader reload its counts.
        """
        con = self.connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
            if bump_version:
                con.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'")
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def version(self) -> int:
        """The number of committed writes so far (0 for a new store)."""
        if not self.path.exists():
            return 0
        return int(self.query("SELECT value FROM meta WHERE key = 'version'")[0][0])

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """Read one metadata value."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

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
