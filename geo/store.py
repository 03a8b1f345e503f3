"""The embedded store: one SQLite file holding counts, checkpoint checks, imported records,
users and the audit log. No server is needed.

Writers change it only inside one transaction (:meth:`Store.transaction`), and every write
bumps ``meta.version``; readers cache what they load and reload when the version moves. A
process killed mid-write leaves the previous state, because SQLite rolls back an unfinished
transaction from its journal on the next open.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('version', '0');
CREATE TABLE IF NOT EXISTS counts (
    metric TEXT NOT NULL, grid_code TEXT NOT NULL, day TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (metric, grid_code, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint_checks (
    checkpoint_code TEXT NOT NULL, day TEXT NOT NULL, checks INTEGER NOT NULL,
    PRIMARY KEY (checkpoint_code, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    metric TEXT NOT NULL, record_id TEXT NOT NULL, day TEXT NOT NULL,
    lon REAL NOT NULL, lat REAL NOT NULL, grid_code TEXT, source TEXT, imported_at TEXT,
    PRIMARY KEY (metric, record_id)
) WITHOUT ROWID;
"""


class Store:
    """A handle on the SQLite store at ``path`` (created with its schema on first use)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def connect(self) -> sqlite3.Connection:
        """Open a connection with the schema in place. WAL lets readers go on during a rebuild."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.executescript(SCHEMA)
        return con

    @contextmanager
    def transaction(self):
        """Yield a connection inside BEGIN IMMEDIATE … COMMIT; roll back on any error.

        The version is bumped inside the same transaction, so a reader sees either the old
        data with the old version or the new data with the new one.
        """
        con = self.connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            yield con
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
        con = self.connect()
        try:
            return int(con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])
        finally:
            con.close()

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """Read one metadata value."""
        con = self.connect()
        try:
            row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return row[0] if row else default
        finally:
            con.close()
