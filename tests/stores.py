"""The two stores the suite runs against: the embedded SQLite file and PostgreSQL with PostGIS.

Every test that touches a store runs once per kind in :data:`STORE_KINDS` (the parametrised
``store_kind`` fixture of ``tests/conftest.py``). The PostgreSQL server is, in order:

* the one at ``GRIDATLAS_TEST_DATABASE_URL`` (``.ci/run`` starts a throw-away cluster and sets it);
* else a throw-away cluster this module starts with Debian's ``initdb``/``pg_ctl`` in a temporary
  folder on a free loopback port: started by the first xdist worker that needs it, shared by the
  others, and stopped with the run (:class:`SharedCluster`).

Each test gets its own schema in that database, so tests never see each other's rows.
pytest-postgresql was considered: its cluster fixture runs ``initdb`` as the current user,
which PostgreSQL refuses when that user is root, as it is in CI; this starts it as ``postgres``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from filelock import FileLock

from geo.settings import get_settings

STORE_KINDS = [k.strip() for k in os.environ.get("GRIDATLAS_TEST_STORES", "sqlite,postgis").split(",") if k.strip()]
PG_BIN = Path(os.environ.get("GRIDATLAS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
INSTALL_HINT = ("PostgreSQL with PostGIS is needed for the postgis half of the suite: "
                "apt-get install postgresql postgresql-15-postgis-3 (or set GRIDATLAS_TEST_DATABASE_URL "
                "to a server; GRIDATLAS_TEST_STORES=sqlite runs the SQLite half alone)")


class Cluster:
    """A throw-away PostgreSQL cluster in a temporary folder, on 127.0.0.1:``port``."""

    def __init__(self, folder: Path | None = None, port: int | None = None):
        if folder is None and not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"no {PG_BIN / 'initdb'}. {INSTALL_HINT}")
        self.dir = folder or Path(tempfile.mkdtemp(prefix="gridatlas-pg-"))
        self.port = port or _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/gridatlas_test"

    def _run(self, *args: str) -> None:
        # PostgreSQL refuses to run as root; CI is root, so the server runs as postgres.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + list(args), check=True, capture_output=True, text=True)

    def start(self) -> str:
        """initdb, start, create the database; returns its URL."""
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        self._run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        # fsync off: a throw-away cluster. The kill tests stop the client, never the server.
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-w", "-l", str(self.dir / "log"),
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                        f"-c max_connections=200", "start")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as con:
            con.execute("CREATE DATABASE gridatlas_test")
        return self.url

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class SharedCluster:
    """One :class:`Cluster` for all the workers of a run, noted in ``root`` (a folder they share):
    the first to ask starts it, the others find it, the run's end stops it."""

    def __init__(self, root: Path):
        self.note = Path(root) / "pg-cluster.json"
        self.lock = FileLock(str(self.note) + ".lock")

    def url(self) -> str:
        with self.lock:
            if self.note.exists():
                return json.loads(self.note.read_text())["url"]
            cluster = Cluster()
            url = cluster.start()
            self.note.write_text(json.dumps({"url": url, "dir": str(cluster.dir), "port": cluster.port}))
            return url

    def stop(self) -> None:
        with self.lock:
            if not self.note.exists():
                return
            noted = json.loads(self.note.read_text())
            self.note.unlink()
        Cluster(Path(noted["dir"]), noted["port"]).stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_schema(prefix: str = "t") -> str:
    """A schema name no other test uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def clone_schema(url: str, source: str, target: str) -> None:
    """Copy every table of ``source`` into the new schema ``target`` (migrated first): a copy
    of a PostGIS store, as ``shutil.copytree`` copies the SQLite file."""
    from geo.store.postgis import migrate

    migrate(url, target)
    with psycopg.connect(url, autocommit=True) as con:
        tables = [r[0] for r in con.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'schema_migrations'", (source,))]
        with con.transaction():
            for table in tables:
                con.execute(f"DELETE FROM {target}.{table}")
                con.execute(f"INSERT INTO {target}.{table} OVERRIDING SYSTEM VALUE SELECT * FROM {source}.{table}")
            # Copied ids were given, not drawn: move each identity on past them.
            identities = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE table_schema = %s AND is_identity = 'YES'", (target,)).fetchall()
            for table, column in identities:
                con.execute(f"SELECT setval(pg_get_serial_sequence('{target}.{table}', '{column}'), "
                            f"COALESCE(MAX({column}), 0) + 1, false) FROM {target}.{table}")


def wait_for(url: str, seconds: float = 30) -> None:
    """Wait until the server at ``url`` answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def copy_settings(settings, data_dir: Path, **overrides):
    """Settings on a copy of ``settings``' data folder and store (a new schema for PostGIS), so a
    test may change them freely; ``overrides`` are further settings."""
    shutil.copytree(settings.data_path, data_dir, **overrides.pop("copy_options", {}))
    if settings.database_url:
        schema = new_schema("copy")
        clone_schema(settings.database_url, settings.database_schema, schema)
        overrides = {"database_url": settings.database_url, "database_schema": schema, **overrides}
    else:
        overrides = {"database_url": "", **overrides}
    return get_settings(data_dir=data_dir, **{"secret_key": settings.secret_key, **overrides})


def location(settings) -> dict:
    """The settings that say where a data set lives (its folder and its store), for
    ``create_app({"SETTINGS": {**location(settings), …}})``."""
    return {"data_dir": settings.data_path, "database_url": settings.database_url,
            "database_schema": settings.database_schema}


def location_env(settings) -> dict[str, str]:
    """The same as environment variables, for a CLI run or a server process."""
    return {"GRIDATLAS_DATA_DIR": str(settings.data_path), "GRIDATLAS_DATABASE_URL": settings.database_url,
            "GRIDATLAS_DATABASE_SCHEMA": settings.database_schema}


def use_location(monkeypatch, settings) -> None:
    """Point this process's environment (the CLI's settings) at ``settings``' data set."""
    for key, value in location_env(settings).items():
        monkeypatch.setenv(key, value)


def address(store) -> tuple:
    """What another process needs to open ``store`` again (see :func:`reopen`)."""
    if store.dialect == "sqlite":
        return ("sqlite", str(store.path))
    return ("postgis", store.url, store.schema)


def reopen(where: tuple):
    """The store :func:`address` describes."""
    from geo.store import SqliteStore
    from geo.store.postgis import PostgisStore

    return SqliteStore(Path(where[1])) if where[0] == "sqlite" else PostgisStore(where[1], where[2])


def dump(store) -> str:
    """Everything a store holds, as text: SQLite's SQL dump, or every row of every table of the
    PostGIS schema. For tests that check that a secret is never stored."""
    if store.dialect == "sqlite":
        con = store.connect()
        try:
            return "\n".join(con.iterdump())
        finally:
            con.close()
    tables = [r[0] for r in store.query("SELECT tablename FROM pg_tables WHERE schemaname = ?", (store.schema,))]
    return "\n".join(row[0] for t in tables for row in store.query(f"SELECT r::text FROM {t} r"))


def frame(store, sql: str, params=()):
    """The rows of one query as a DataFrame with the query's column names."""
    import pandas as pd

    with store.snapshot() as con:
        cur = con.execute(sql, params)
        return pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])


def write_progress(settings):
    """A function giving how many bytes the store has written so far, committed or not: the
    SQLite write-ahead log's size, or the PostgreSQL records table's (uncommitted rows take
    room in the table as they are written). Kill tests wait on it to strike mid-write."""
    if not settings.database_url:
        wal = Path(str(settings.store_path) + "-wal")
        return lambda: wal.stat().st_size if wal.exists() else 0
    table = f"{settings.database_schema}.records"

    def size():
        with psycopg.connect(settings.database_url) as con:
            return con.execute("SELECT pg_total_relation_size(%s::regclass)", (table,)).fetchone()[0]

    return size


def publish_areas(settings) -> None:
    """After a test rewrote the demo folder's areas.gpkg: make those the store's areas (a PostGIS
    store keeps its own copy; the SQLite store reads the file anyway)."""
    from geo.atlas.areas import Atlas
    from geo.store import open_store

    store = open_store(settings)
    if store.dialect != "sqlite":
        with store.transaction() as con:
            store.save_atlas(con, Atlas.load(settings.demo_dir), settings.demo_dir)
