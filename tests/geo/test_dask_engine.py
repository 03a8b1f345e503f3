"""The Dask engine gives exactly the local engine's answer, on a real LocalCluster of 2 workers."""

import numpy as np
import pytest

from geo.dask_engine import assign_dask


@pytest.mark.slow
def test_dask_join_equals_local_join_on_a_real_local_cluster(atlas):
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = atlas.grids.total_bounds
    n = 60_000
    x = np.concatenate([rng.uniform(minx, maxx, n // 2), rng.normal(121.55, 0.03, n // 2)])
    y = np.concatenate([rng.uniform(miny, maxy, n // 2), rng.normal(29.875, 0.03, n // 2)])
    x[:3] = [np.nan, np.inf, 200.0]  # unusable and far-away points stay outside
    local = atlas.grid_index.assign(x, y)
    # Small partitions force several spatial partitions, each joined against its own grid subset.
    distributed = assign_dask(atlas.grids.geometry.to_numpy(), x, y, n_workers=2, points_per_partition=15_000)
    assert (local >= 0).sum() > 30_000
    np.testing.assert_array_equal(distributed, local)
