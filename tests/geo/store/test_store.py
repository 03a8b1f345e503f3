"""The store (both kinds): a rebuild is one transaction; a killed rebuild leaves the previous
counts; writers take turns; a second store of the same database sees every commit."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from geo.atlas.areas import Atlas
from geo.demo.events import synthesise_events
from geo.ingest.rebuild import rebuild
from geo.settings import PROJECT_ROOT
from geo.store import SqliteStore, StoreBusy, open_store
from geo.store import counts as count_store
from tests.stores import address, copy_settings, location_env, reopen


def _snapshot(store):
    # A new handle on the same database, as a restarted process would open it.
    with reopen(address(store)).snapshot() as con:
        counts = count_store.counts_rows(con).to_records(index=False).tolist()
        version = con.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0]
        return counts, version


def test_failed_transaction_changes_nothing(new_store):
    store = new_store()
    with store.transaction() as con:
        count_store.add(con, np.array(["g"]), *np.array([[0], [0], [0], [5]]))
    with pytest.raises(RuntimeError):
        with store.transaction() as con:
            con.execute("DELETE FROM grid_series")
            raise RuntimeError("boom")
    assert _snapshot(store) == ([("visits", "g", "2020-01-24", 5)], "1")


@pytest.mark.both_stores
@pytest.mark.slow
def test_rebuild_killed_half_way_leaves_previous_counts(demo_settings, tmp_path):
    data = tmp_path / "data"
    settings = copy_settings(demo_settings, data)
    store = open_store(settings)
    before = _snapshot(store)
    assert before[0]
    # New, larger events: the rebuild then writes many chunks of different counts, so the kill
    # lands well before its commit and a partial write would be visible.
    grids = Atlas.load(data / "demo").grids
    synthesise_events(grids, data / "demo" / "events", scale=0.05, seed=99)
    env = dict(os.environ, **location_env(settings), PYTHONPATH=str(PROJECT_ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "geo", "rebuild"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # The rebuild prints this once it has deleted the old counts and written new rows, uncommitted.
    line = ""
    deadline = time.monotonic() + 300
    while "in transaction" not in line and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line or proc.poll() is None, "rebuild ended before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _snapshot(store) == before
    # And the store still works: a full rebuild now commits the new state.
    rebuild(store.load_atlas(settings.demo_dir), store, settings.demo_dir / "events", None, log=lambda *_: None)
    after = _snapshot(store)
    assert after[1] == str(int(before[1]) + 1) and after[0] != before[0]


def test_reads_on_a_kept_connection_see_every_commit_and_a_replaced_file(tmp_path):
    store = SqliteStore(tmp_path / "s.sqlite")
    assert store.version() == 0
    with store.transaction():
        pass
    assert store.version() == 1  # the kept connection sees the commit of another connection
    # The file replaced by another (a restore, a new demo): its own version, not the old one's.
    other = SqliteStore(tmp_path / "other.sqlite")
    with other.transaction():
        pass
    with other.transaction():
        pass
    shutil.copy(other.path, tmp_path / "new.sqlite")
    os.replace(tmp_path / "new.sqlite", store.path)
    for suffix in ("-wal", "-shm"):
        Path(str(store.path) + suffix).unlink(missing_ok=True)
    assert store.version() == 2


def test_a_thread_keeps_only_a_few_connections(tmp_path):
    from geo.store import sqlite as store_module

    for i in range(10):
        SqliteStore(tmp_path / f"s{i}.sqlite").version()
        SqliteStore(tmp_path / f"s{i}.sqlite").get_meta("version")
    mine = [k for k in store_module._READERS.cons if k[1] == os.getpid()]
    assert len(mine) <= store_module._KEEP_READERS


def test_a_second_handle_on_the_same_store_sees_every_commit(new_store):
    store = new_store()
    other = reopen(address(store))  # another process would open it so
    assert other.version() == 0
    with store.transaction() as con:
        store.set_meta(con, "note", "first")
    assert (other.version(), other.get_meta("note")) == (1, "first")
    with store.transaction(bump_version=False) as con:
        store.set_meta(con, "note", "second")
    assert (other.version(), other.get_meta("note")) == (1, "second")


def test_a_writer_that_will_not_wait_is_told_the_store_is_busy(new_store):
    store = new_store()
    other = reopen(address(store))
    with store.transaction():
        with pytest.raises(StoreBusy):
            with other.transaction(bump_version=False, wait_seconds=0.2):
                pass
    with other.transaction(bump_version=False, wait_seconds=0.2) as con:  # free again
        other.set_meta(con, "after", "yes")
    assert store.get_meta("after") == "yes"


def test_a_snapshot_sees_one_commit_even_while_another_writer_commits(new_store):
    store = new_store()
    other = reopen(address(store))
    with store.snapshot() as con:
        first = con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0]
        with other.transaction():
            pass
        again = con.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0]
    assert first == again == "0"
    assert store.version() == 1


def test_migrate_puts_the_postgis_schema_in_place_once(pg_url, monkeypatch, capsys):
    from geo.cli.main import main
    from geo.store.postgis import PostgisStore, migrations
    from tests.stores import new_schema

    schema = new_schema("migrate")
    monkeypatch.setenv("GRIDATLAS_DATABASE_URL", pg_url)
    monkeypatch.setenv("GRIDATLAS_DATABASE_SCHEMA", schema)
    assert main(["migrate"]) == 0
    assert f"schema {schema}: applied {', '.join(name for name, _ in migrations())}" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out
    store = PostgisStore(pg_url, schema)
    try:
        # The areas and checkpoints have spatial indexes.
        indexes = {row[0] for row in store.query("SELECT indexdef FROM pg_indexes WHERE schemaname = ?", (schema,))}
        assert any("areas USING gist (geom)" in d for d in indexes)
        assert any("checkpoints USING gist (geom)" in d for d in indexes)
        assert store.version() == 0
    finally:
        store.close()


def test_migrate_without_a_database_says_what_to_set(monkeypatch, capsys):
    from geo.cli.main import main

    monkeypatch.setenv("GRIDATLAS_DATABASE_URL", "")
    assert main(["migrate"]) == 2
    assert "GRIDATLAS_DATABASE_URL" in capsys.readouterr().err


def test_an_unreachable_database_is_a_clear_503_error():
    from geo.errors import DataNotReady
    from geo.store.postgis import PostgisStore

    store = PostgisStore("postgresql://nobody:secret@127.0.0.1:1/nowhere", "gridatlas")
    with pytest.raises(DataNotReady, match=r"cannot reach the database at postgresql://nobody:\*\*\*@127.0.0.1:1/nowhere"):
        store.version()
