"""Where the point-in-grid join runs: ``local`` (both cores of this machine, :mod:`geo.join`)
or ``dask`` (a dask.distributed cluster, :mod:`geo.dask_engine`). The rebuild and the importer
take the same choice (``--engine``, ``--scheduler``) and give the same answers on both."""

from __future__ import annotations

from .errors import BadParameter

ENGINES = ("local", "dask")


def make_assigner(atlas, engine: str = "local", scheduler: str | None = None):
    """The join function ``assign(x, y) -> grid index or -1`` of ``engine`` over ``atlas``'s grids.

    ``scheduler`` (``tcp://HOST:PORT``) is the dask cluster to use; without it the dask engine
    starts a LocalCluster for the call."""
    if engine == "local":
        return atlas.grid_index.assign
    if engine == "dask":
        from .dask_engine import assign_dask

        polygons = atlas.grids.geometry.to_numpy()
        return lambda x, y: assign_dask(polygons, x, y, scheduler=scheduler)
    raise BadParameter(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
