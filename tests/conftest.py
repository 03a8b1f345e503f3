"""Shared fixtures: one small demo city built once per test session in a temporary folder.

The areas, grids and checkpoints are the full demo city (they do not depend on the scale);
the events are at a small scale so the suite stays quick. Tests never touch ./data.
"""

from __future__ import annotations

import pytest

from geo.areas import Atlas
from geo.demo import build_demo
from geo.rebuild import rebuild
from geo.settings import PROJECT_ROOT, get_settings
from geo.store import Store

TEST_SCALE = 0.002
TEST_SEED = 7
DISTRICTS_FILE = PROJECT_ROOT / "data" / "shapes" / "districts_wgs84.geojson"


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory):
    """Settings pointing at a freshly built small demo data set with its counts."""
    data_dir = tmp_path_factory.mktemp("data")
    settings = get_settings(data_dir=data_dir, secret_key="test-secret")
    build_demo(settings.demo_dir, DISTRICTS_FILE, scale=TEST_SCALE, seed=TEST_SEED, log=lambda *_: None)
    rebuild(Atlas.load(settings.demo_dir), Store(settings.store_path), settings.demo_dir / "events",
            settings.demo_dir / "checkpoint_checks.parquet", log=lambda *_: None)
    return settings


@pytest.fixture(scope="session")
def atlas(demo_settings) -> Atlas:
    """The demo atlas (read-only: do not modify in tests)."""
    return Atlas.load(demo_settings.demo_dir)
