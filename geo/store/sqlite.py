"""The embedded store: one SQLite file under the data folder."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from geo.store import counts as count_store
from geo.store.base import READ_VERSION, SCHEMA, Store, StoreBusy


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
