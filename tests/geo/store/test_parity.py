"""Both stores hold the same demo: the same areas, every metric's counts, checkpoint series,
users and audit rows. This is what lets tests that only read run on one store."""

import numpy as np
import pandas as pd
import pytest

from geo.access import audit, users
from geo.store import counts as count_store
from geo.store import open_store
from tests.stores import copy_settings


@pytest.fixture(scope="module")
def stores(_demo_builds, pg_url, tmp_path_factory):
    """Copies of the demo on each store kind, with the same users and audit entries added."""
    made = {}
    for kind in ("sqlite", "postgis"):
        settings = copy_settings(_demo_builds(kind), tmp_path_factory.mktemp(f"parity-{kind}") / "data")
        store = open_store(settings)
        users.add_user(store, "centre", "city", None, "a long parity password")
        users.add_user(store, "yunlong", "town", "330212108", "a long parity password", must_change=True)
        audit.record(store, "centre", "export", "330212", "ok", {"format": "pdf", "dpi": 300}, "127.0.0.1")
        audit.record(store, "yunlong", "login", "", "failed", None, "10.0.0.2")
        made[kind] = (settings, store)
    return made


def test_the_areas_are_the_same(stores):
    (a_settings, a), (b_settings, b) = stores["sqlite"], stores["postgis"]
    left, right = a.load_atlas(a_settings.demo_dir), b.load_atlas(b_settings.demo_dir)
    assert set(left.layers) == set(right.layers)
    for level, layer in left.layers.items():
        other = right.layers[level].set_index("code").loc[layer["code"]]
        assert len(other) == len(layer) > 0, level
        assert list(other["name"]) == list(layer["name"]), level
        assert all(g.equals_exact(h, 1e-9) for g, h in zip(layer.geometry, other.geometry)), level
    assert left.checkpoints["code"].tolist() == right.checkpoints["code"].tolist()


def test_every_metric_s_counts_are_the_same(stores):
    def rows(store):
        with store.snapshot() as con:
            frame = count_store.counts_rows(con)
        return frame.sort_values(list(frame.columns[:-1])).reset_index(drop=True)

    left, right = rows(stores["sqlite"][1]), rows(stores["postgis"][1])
    assert len(left) > 0 and set(left["metric"]) == set(right["metric"])
    pd.testing.assert_frame_equal(left, right, check_dtype=False)


def test_the_checkpoint_series_are_the_same(stores):
    (codes_a, daily_a), (codes_b, daily_b) = (count_store.checkpoint_daily(stores[k][1]) for k in ("sqlite", "postgis"))
    assert daily_a.sum() > 0
    assert list(codes_a) == list(codes_b)
    np.testing.assert_array_equal(daily_a, daily_b)


def test_users_and_audit_rows_are_the_same(stores):
    def seen(store):
        people = [(u.name, u.role, u.area, u.must_change) for u in users.list_users(store)]
        log = [(e.user, e.action, e.target, e.outcome, e.detail, e.client) for e in audit.entries(store)]
        return people, log

    left, right = seen(stores["sqlite"][1]), seen(stores["postgis"][1])
    assert len(left[0]) == 2 and len(left[1]) >= 2
    assert left == right
