"""Benchmark clients sign in like a browser, on a scratch copy of the data, never the user's store."""

import threading
import urllib.error
import urllib.request

import pytest

from bench.bench_auth import BENCH_USER, bench_data, ensure_bench_user, login, session_cookie
from bench.targets import SCRATCH_MARK
from geo.access.users import get_user
from geo.store import open_store
from web import create_app


@pytest.fixture
def serve():
    """``serve(app) -> base URL``: the app on a free loopback port until the test ends."""
    from werkzeug.serving import make_server

    servers = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_bench_user_only_in_a_scratch_copy(sqlite_demo_settings):
    with pytest.raises(SystemExit, match="not a bench scratch copy"):
        ensure_bench_user(sqlite_demo_settings.data_path)
    assert get_user(open_store(sqlite_demo_settings), BENCH_USER) is None


def test_bench_data_copies_and_cleans_up(sqlite_demo_settings):
    with bench_data(sqlite_demo_settings.data_path) as path:
        assert path != sqlite_demo_settings.data_path and (path / SCRATCH_MARK).exists()
        with bench_data(path) as same:  # a scratch copy is used as it is
            assert same == path
    assert not path.exists()


def test_signed_in_cookie_opens_a_page(sqlite_demo_settings, serve):
    with bench_data(sqlite_demo_settings.data_path) as path:
        base = serve(create_app({"SETTINGS": {"data_dir": str(path), "database_url": "", "secret_key": "bench-test"}}))
        name, password = ensure_bench_user(path)
        assert ensure_bench_user(path)[1] != password  # run again: a new password, same user
        with pytest.raises(SystemExit, match="HTTP 401"):
            login(base, name, password)
        cookie = session_cookie(base, path)
        assert cookie.startswith("gridatlas_session=")
        with urllib.request.urlopen(urllib.request.Request(base + "/api/status", headers={"Cookie": cookie})) as r:
            assert r.status == 200
        with pytest.raises(urllib.error.HTTPError, match="401"):
            urllib.request.urlopen(base + "/api/status")
