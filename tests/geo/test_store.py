"""The store: a rebuild is one transaction; a killed rebuild leaves the previous counts."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from geo import count_store
from geo.areas import Atlas
from geo.rebuild import rebuild
from geo.settings import PROJECT_ROOT, get_settings
from geo.store import Store
from geo.synth.events import synthesise_events


def _snapshot(path):
    con = sqlite3.connect(path)
    try:
        counts = count_store.counts_rows(con).to_records(index=False).tolist()
        version = con.execute("SELECT value FROM meta WHERE key='version'").fetchone()[0]
        return counts, version
    finally:
        con.close()


def test_failed_transaction_changes_nothing(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    with store.transaction() as con:
        count_store.add(con, np.array(["g"]), *np.array([[0], [0], [0], [5]]))
    with pytest.raises(RuntimeError):
        with store.transaction() as con:
            con.execute("DELETE FROM grid_series")
            raise RuntimeError("boom")
    assert _snapshot(store.path) == ([("visits", "g", "2020-01-24", 5)], "1")


@pytest.mark.slow
def test_rebuild_killed_half_way_leaves_previous_counts(demo_settings, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_settings.data_path, data)
    before = _snapshot(data / "gridatlas.sqlite")
    assert before[0]
    # New, larger events: the rebuild then writes many chunks of different counts, so the kill
    # lands well before its commit and a partial write would be visible.
    grids = Atlas.load(data / "demo").grids
    synthesise_events(grids, data / "demo" / "events", scale=0.05, seed=99)
    env = dict(os.environ, GRIDATLAS_DATA_DIR=str(data), PYTHONPATH=str(PROJECT_ROOT))
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
    assert _snapshot(data / "gridatlas.sqlite") == before
    # And the store still works: a full rebuild now commits the new state.
    settings = get_settings(data_dir=data)
    rebuild(Atlas.load(settings.demo_dir), Store(settings.store_path), settings.demo_dir / "events", None, log=lambda *_: None)
    after = _snapshot(data / "gridatlas.sqlite")
    assert after[1] == str(int(before[1]) + 1) and after[0] != before[0]


def test_reads_on_a_kept_connection_see_every_commit_and_a_replaced_file(tmp_path):
    store = Store(tmp_path / "s.sqlite")
    assert store.version() == 0
    with store.transaction():
        pass
    assert store.version() == 1  # the kept connection sees the commit of another connection
    # The file replaced by another (a restore, a new demo): its own version, not the old one's.
    other = Store(tmp_path / "other.sqlite")
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
    from geo import store as store_module

    for i in range(10):
        Store(tmp_path / f"s{i}.sqlite").version()
        Store(tmp_path / f"s{i}.sqlite").get_meta("version")
    mine = [k for k in store_module._READERS.cons if k[1] == os.getpid()]
    assert len(mine) <= store_module._KEEP_READERS
