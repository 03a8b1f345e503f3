"""Shared fixtures: one small demo city, built once per test run and shared by the xdist
workers, and its counts in each kind of store.

The areas, grids and checkpoints are the full demo city (they do not depend on the scale);
the events are at a small scale so the suite stays quick. Tests never touch ./data.

A test runs on both stores (``[sqlite]`` and ``[postgis]`` in its id) where the store matters:
it uses ``new_store`` or ``empty_settings``, or is marked ``both_stores`` (it writes, or reads
through SQL that differs between the stores). Every other test runs once, on the first kind of
``GRIDATLAS_TEST_STORES`` (SQLite by default); ``tests/geo/store/test_parity.py`` shows that both
stores hold the same demo. See ``tests/stores.py`` for where the PostgreSQL server comes from.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from geo.atlas.areas import Atlas
from geo.demo.build import build_demo
from geo.ingest.rebuild import rebuild
from geo.settings import PROJECT_ROOT, get_settings
from geo.store import SqliteStore, close_stores, open_store
from tests.stores import STORE_KINDS, SharedCluster, clone_schema, new_schema, wait_for

TEST_SCALE = 0.002
TEST_SEED = 7
DISTRICTS_FILE = PROJECT_ROOT / "data" / "shapes" / "districts_wgs84.geojson"
# Fixtures whose tests run once per store kind without a marker: they are the store's own tests.
STORE_FIXTURES = {"new_store", "empty_settings"}


def pytest_generate_tests(metafunc):
    """Both store kinds for the tests where the store matters; see the module's docstring."""
    if "store_kind" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("both_stores") or STORE_FIXTURES & set(metafunc.fixturenames):
        metafunc.parametrize("store_kind", STORE_KINDS, indirect=True, scope="session")


def pytest_collection_modifyitems(config, items):
    """Without PostgreSQL in the run (``GRIDATLAS_TEST_STORES=sqlite``), the PostGIS-only tests
    are left out, and the summary says how many."""
    if "postgis" in STORE_KINDS:
        return
    kept = [item for item in items if "pg_url" not in getattr(item, "fixturenames", ())]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line: how many tests ran on which store, and how many of them in Chromium."""
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])
               if r.when == "call"]
    if not reports:
        return
    on = {kind: 0 for kind in STORE_KINDS}
    once = browser = 0
    for report in reports:
        kind = next((k for k in STORE_KINDS if k in report.keywords), None)
        if kind is None:
            once += 1
        else:
            on[kind] += 1
        browser += "browser" in report.keywords
    per_store = ", ".join(f"{n} on {kind}" for kind, n in on.items())
    terminalreporter.write_line(
        f"Grid Atlas: {len(reports)} tests ran: {once} on {STORE_KINDS[0]} only, "
        f"{sum(on.values())} store tests ({per_store}); {browser} of them in Chromium.", bold=True)


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """A folder all xdist workers of this run share (pytest's base temp folder)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _build_once(folder: Path, build) -> Path:
    """``build(folder)`` by the first worker that asks; the others wait for it and reuse it
    (pytest-xdist's documented pattern for session data)."""
    with FileLock(str(folder) + ".lock"):
        done = folder / ".built"
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def pg_url(shared_dir):
    """The URL of a PostgreSQL server with PostGIS for the whole run (see tests/stores.py)."""
    url = os.environ.get("GRIDATLAS_TEST_DATABASE_URL")
    if url:
        wait_for(url)
        yield url
        return
    try:
        url = SharedCluster(shared_dir).url()
    except (RuntimeError, OSError) as err:
        pytest.fail(str(err))
    yield url
    close_stores()


def pytest_unconfigure(config):
    """The run's own PostgreSQL cluster stops with the run (in the process that started the
    workers, once they are all done)."""
    if hasattr(config, "workerinput"):
        return
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None and factory._basetemp is not None:
        SharedCluster(factory._basetemp).stop()


@pytest.fixture(scope="session")
def store_kind(request) -> str:
    """"sqlite" or "postgis": the store every store-using fixture of this test is built on."""
    return getattr(request, "param", STORE_KINDS[0])


@pytest.fixture(scope="session")
def demo_files(shared_dir) -> Path:
    """The small demo data set's files (areas, events, checks), built once per run; no store.
    Read-only: copy it (``copy_settings``) to change anything."""
    return _build_once(shared_dir / "demo-files", lambda folder: build_demo(
        folder / "demo", DISTRICTS_FILE, scale=TEST_SCALE, seed=TEST_SEED, log=lambda *_: None))


def _rebuild(settings, publish_areas: bool = True) -> None:
    rebuild(Atlas.load(settings.demo_dir), open_store(settings), settings.demo_dir / "events",
            settings.demo_dir / "checkpoint_checks.parquet", log=lambda *_: None, publish_areas=publish_areas)


@pytest.fixture(scope="session")
def _demo_builds(demo_files, shared_dir, tmp_path_factory, request):
    """The demo with its counts in each store kind, each built once per run and copied for each
    worker (a folder copy, a schema copy): ``builds(kind) -> settings``."""
    made: dict[str, object] = {}

    def sqlite(folder: Path) -> None:
        shutil.copytree(demo_files, folder, dirs_exist_ok=True)
        _rebuild(get_settings(data_dir=folder, secret_key="test-secret", database_url=""))

    def build(kind: str):
        if kind in made:
            return made[kind]
        data_dir = tmp_path_factory.mktemp(f"data-{kind}")
        if kind == "sqlite":
            shutil.copytree(_build_once(shared_dir / "demo-sqlite", sqlite), data_dir, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".built"))
            made[kind] = get_settings(data_dir=data_dir, secret_key="test-secret", database_url="")
            return made[kind]
        url = request.getfixturevalue("pg_url")

        def postgis(folder: Path) -> None:
            schema = new_schema("demo")
            shutil.copytree(demo_files, folder / "data", dirs_exist_ok=True)
            _rebuild(get_settings(data_dir=folder / "data", secret_key="test-secret", database_url=url,
                                  database_schema=schema))
            (folder / "schema").write_text(schema)

        source = (_build_once(shared_dir / "demo-postgis", postgis) / "schema").read_text()
        schema = new_schema("demo")
        clone_schema(url, source, schema)
        shutil.copytree(demo_files, data_dir, dirs_exist_ok=True)
        made[kind] = get_settings(data_dir=data_dir, secret_key="test-secret", database_url=url,
                                  database_schema=schema)
        return made[kind]

    return build


@pytest.fixture(scope="session")
def demo_settings(store_kind, _demo_builds):
    """Settings pointing at the small demo data set with its counts in a ``store_kind`` store.
    Shared by the tests of a worker: copy it (``copy_settings``) to change anything."""
    return _demo_builds(store_kind)


@pytest.fixture(scope="session")
def sqlite_demo_settings(_demo_builds):
    """The demo data set with its counts in a SQLite store, for what works on SQLite alone (the
    benchmark's scratch copies)."""
    return _demo_builds("sqlite")


def _store_overrides(kind: str, request) -> dict:
    """Settings that put a data folder's store on ``kind``: a fresh schema for PostGIS."""
    if kind == "sqlite":
        return {"database_url": ""}  # whatever the environment says
    return {"database_url": request.getfixturevalue("pg_url"), "database_schema": new_schema("demo")}


@pytest.fixture
def new_store(store_kind, tmp_path, request):
    """Factory of empty stores of this test's kind: ``new_store()`` (a new one each call)."""
    made = []

    def make(name: str = "gridatlas"):
        if store_kind == "sqlite":
            store = SqliteStore(tmp_path / f"{name}-{len(made)}.sqlite")
        else:
            from geo.store.postgis import PostgisStore

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
