"""Shared fixtures: one small demo city built once per test session in a temporary folder, and
its counts in each kind of store.

The areas, grids and checkpoints are the full demo city (they do not depend on the scale);
the events are at a small scale so the suite stays quick. Tests never touch ./data.

Every test that uses ``demo_settings``, ``copy_settings`` or ``new_store`` runs once per store
kind (``[sqlite]`` and ``[postgis]`` in its id): the embedded SQLite file, and PostgreSQL with
PostGIS (see ``tests/stores.py`` for where the server comes from).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from geo.areas import Atlas
from geo.demo import build_demo
from geo.rebuild import rebuild
from geo.settings import PROJECT_ROOT, get_settings
from geo.store import SqliteStore, close_stores, open_store
from tests.stores import STORE_KINDS, Cluster, new_schema, wait_for

TEST_SCALE = 0.002
TEST_SEED = 7
DISTRICTS_FILE = PROJECT_ROOT / "data" / "shapes" / "districts_wgs84.geojson"


@pytest.fixture(scope="session")
def pg_url():
    """The URL of a PostgreSQL server with PostGIS for the whole run (see tests/stores.py)."""
    url = os.environ.get("GRIDATLAS_TEST_DATABASE_URL")
    if url:
        wait_for(url)
        yield url
        return
    try:
        cluster = Cluster()
        url = cluster.start()
    except (RuntimeError, OSError) as err:
        pytest.fail(str(err))
    yield url
    close_stores()
    cluster.stop()


@pytest.fixture(scope="session", params=STORE_KINDS)
def store_kind(request) -> str:
    """"sqlite" or "postgis": the store every store-using fixture of this test is built on."""
    return request.param


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory) -> Path:
    """The small demo data set's files (areas, events, checks), built once; no store."""
    data_dir = tmp_path_factory.mktemp("demo-files")
    build_demo(data_dir / "demo", DISTRICTS_FILE, scale=TEST_SCALE, seed=TEST_SEED, log=lambda *_: None)
    return data_dir


def _store_overrides(kind: str, request) -> dict:
    """Settings that put a data folder's store on ``kind``: a fresh schema for PostGIS."""
    if kind == "sqlite":
        return {"database_url": ""}  # whatever the environment says
    return {"database_url": request.getfixturevalue("pg_url"), "database_schema": new_schema("demo")}


@pytest.fixture(scope="session")
def demo_settings(store_kind, demo_files, tmp_path_factory, request):
    """Settings pointing at the small demo data set with its counts in a ``store_kind`` store."""
    data_dir = tmp_path_factory.mktemp(f"data-{store_kind}")
    shutil.copytree(demo_files, data_dir, dirs_exist_ok=True)
    settings = get_settings(data_dir=data_dir, secret_key="test-secret", **_store_overrides(store_kind, request))
    rebuild(Atlas.load(settings.demo_dir), open_store(settings), settings.demo_dir / "events",
            settings.demo_dir / "checkpoint_checks.parquet", log=lambda *_: None, publish_areas=True)
    return settings


@pytest.fixture(scope="session")
def sqlite_demo_settings(demo_files, tmp_path_factory):
    """The demo data set with its counts in a SQLite store, for what works on SQLite alone (the
    benchmark's scratch copies). Tests of the product use ``demo_settings``, which runs both."""
    data_dir = tmp_path_factory.mktemp("data-sqlite-only")
    shutil.copytree(demo_files, data_dir, dirs_exist_ok=True)
    settings = get_settings(data_dir=data_dir, secret_key="test-secret", database_url="")
    rebuild(Atlas.load(settings.demo_dir), open_store(settings), settings.demo_dir / "events",
            settings.demo_dir / "checkpoint_checks.parquet", log=lambda *_: None)
    return settings


@pytest.fixture
def new_store(store_kind, tmp_path, request):
    """Factory of empty stores of this test's kind: ``new_store()`` (a new one each call)."""
    made = []

    def make(name: str = "gridatlas"):
        if store_kind == "sqlite":
            store = SqliteStore(tmp_path / f"{name}-{len(made)}.sqlite")
        else:
            from geo.postgis_store import PostgisStore

            store = PostgisStore(request.getfixturevalue("pg_url"), new_schema())
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def empty_settings(store_kind, tmp_path, request):
    """Factory: settings on an empty data folder (``tmp_path/data``) and an empty store of this
    test's kind; keyword arguments are further settings."""
    def make(**overrides):
        return get_settings(data_dir=tmp_path / "data", **{**_store_overrides(store_kind, request), **overrides})

    return make


@pytest.fixture(autouse=True)
def _close_database_pools():
    """Each test's PostGIS stores hand back their connections when it ends: hundreds of tests
    would otherwise hold hundreds of idle connections."""
    yield
    close_stores()


@pytest.fixture(scope="session")
def atlas(demo_files) -> Atlas:
    """The demo atlas (read-only: do not modify in tests), as the demo files hold it."""
    return Atlas.load(demo_files / "demo")
