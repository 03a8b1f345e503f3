"""What only the PostGIS store has: areas in PostGIS tables, seeding from the GeoPackage, and the
translation of the shared SQL. (Everything both stores do is tested on both elsewhere.)"""

import pytest
import shapely

from geo.atlas.areas import AREA_LAYERS, Atlas
from geo.errors import DataNotReady
from geo.store.postgis import PostgisStore, _placeholders
from tests.stores import new_schema


@pytest.fixture
def store(pg_url):
    store = PostgisStore(pg_url, new_schema("t_pg"))
    yield store
    store.close()


def test_a_new_store_takes_its_areas_from_the_geopackage_and_gives_them_back_exactly(store, demo_files):
    files = Atlas.load(demo_files / "demo")
    seeded = store.load_atlas(demo_files / "demo")
    again = store.load_atlas(None)  # now from the tables alone
    for level in AREA_LAYERS:
        want, got = files.layers[level], again.layers[level]
        assert list(got.columns) == list(want.columns)
        assert got.drop(columns="geometry").equals(want.drop(columns="geometry")), level
        assert all(shapely.equals_exact(a, b, 0) for a, b in zip(want.geometry, got.geometry)), level
    assert list(again.checkpoints["code"]) == list(files.checkpoints["code"])  # the file's order
    assert shapely.equals_exact(again.checkpoints.geometry.to_numpy(), files.checkpoints.geometry.to_numpy(), 0).all()
    assert len(seeded.grids) == len(again.grids) == 10_205
    assert store.get_meta("areas_version") is not None


def test_areas_are_postgis_geometries_a_gis_can_query(store, demo_files):
    store.load_atlas(demo_files / "demo")
    # Which grid holds a point, asked of PostGIS itself (the GiST index answers this).
    grid = Atlas.load(demo_files / "demo").grids.iloc[123]
    inside = grid.geometry.representative_point()
    rows = store.query("SELECT code FROM areas WHERE level = 'grid' AND ST_Contains(geom, ST_SetSRID(ST_Point(?, ?), 4326))",
                       (inside.x, inside.y))
    assert rows == [(grid["code"],)]
    srid, kind = store.query("SELECT ST_SRID(geom), GeometryType(geom) FROM checkpoints LIMIT 1")[0]
    assert (srid, kind) == (4326, "POINT")


def test_a_store_without_areas_or_files_says_what_to_run(store, tmp_path):
    with pytest.raises(DataNotReady, match="run `python -m geo demo`"):
        store.load_atlas(tmp_path / "no-demo-here")
    with pytest.raises(DataNotReady, match="holds no areas yet"):
        store.load_atlas(None)


def test_a_schema_name_postgresql_reserves_is_refused(pg_url):
    from geo.errors import BadParameter

    with pytest.raises(BadParameter, match="not starting with pg_"):
        PostgisStore(pg_url, "pg_atlas")


def test_placeholders_become_psycopg_ones_outside_quotes_only():
    assert _placeholders("SELECT * FROM t WHERE a = ? AND b LIKE 'x?%' AND \"c?\" = ?") == (
        "SELECT * FROM t WHERE a = %s AND b LIKE 'x?%%' AND \"c?\" = %s")


def test_a_forked_child_opens_its_own_connections_and_leaves_the_parents_alone(store, demo_files):
    import os

    store.load_atlas(demo_files / "demo")
    before = store.version()
    pid = os.fork()
    if pid == 0:  # the child: the export workers are forked like this
        try:
            with store.transaction() as con:
                store.set_meta(con, "written_by", "child")
            os._exit(0 if store.version() == before + 1 else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's pooled connections still work, and see the child's commit.
    assert store.version() == before + 1 and store.get_meta("written_by") == "child"
