"""Where Grid Atlas keeps its counts, records, users and audit log: one of two stores.

* :class:`SqliteStore`, the embedded default: one SQLite file under the data folder; no server.
  The areas and checkpoints stay in the demo folder's ``areas.gpkg``.
* :class:`geo.store.postgis.PostgisStore`, chosen by ``GRIDATLAS_DATABASE_URL=postgresql://…``:
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

The package owns the counts' layout (:mod:`geo.store.counts`) and the PostGIS migrations. It
imports only ``geo.settings``, ``geo.errors`` and ``geo.atlas``.
"""

from __future__ import annotations

import os
import threading

from geo.store.base import SET_META, Store, StoreBusy
from geo.store.sqlite import SqliteStore

__all__ = ["SET_META", "Store", "StoreBusy", "SqliteStore", "open_store", "close_stores"]


def open_store(settings) -> Store:
    """The store the settings name: PostGIS when ``database_url`` is set, else the SQLite file.

    One object per database in a process, so its connection pool is shared."""
    if settings.database_url:
        from geo.store.postgis import PostgisStore

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

    postgis = sys.modules.get("geo.store.postgis")  # loaded only if a database store was opened
    if postgis is not None:
        postgis.close_all()
