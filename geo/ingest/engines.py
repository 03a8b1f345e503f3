"""Where the point-in-grid join runs: ``local`` (both cores of this machine, :mod:`geo.join`)
or ``dask`` (a dask.distributed cluster, :mod:`geo.dask_engine`). The rebuild and the importer
take the same choice (``--engine``, ``--scheduler``) and give the same answers on both."""

from __future__ import annotations

from geo.errors import BadParameter

ENGINES = ("local", "dask")


def make_assigner(atlas, engine: str = "local", scheduler: str | None = None):
    """The join function ``assign(x, y) -> grid index or -1`` of ``engine`` over ``atlas``'s grids.

    ``scheduler`` (``tcp://HOST:PORT``) is the dask cluster to use; without it the dask engine
    starts a LocalCluster for the call."""
    if engine == "local":
        return atlas.grid_index.assign
    if engine == "dask":
        from geo.ingest.dask_engine import assign_dask

        polygons = atlas.grids.geometry.to_numpy()
        return lambda x, y: assign_dask(polygons, x, y, scheduler=scheduler)
    raise BadParameter(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")


def make_file_counter(atlas, engine: str = "local", scheduler: str | None = None):
    """For engines whose workers read the event files themselves (``dask``), the function
    ``count({metric index: path}) -> (cube, stats)`` of :func:`geo.dask_engine.count_event_files`;
    None for ``local``, which reads the files in this process."""
    if engine == "local":
        return None
    if engine == "dask":
        from geo.ingest.dask_engine import count_event_files

        polygons = atlas.grids.geometry.to_numpy()
        return lambda files: count_event_files(polygons, files, scheduler=scheduler)
    raise BadParameter(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
