"""The server keeps warm JSON answers (and their compressed forms) per ETag, never pages."""

import gzip
import re
import time

import numpy as np
import pytest

from geo.atlas.metrics import N_DAYS
from geo.query import mapdata
from geo.store import counts as count_store
from tests.stores import copy_settings, location
from web import create_app

YINZHOU = "330212"


@pytest.fixture(scope="module")
def app(demo_settings, tmp_path_factory):
    # One app for the module (building one takes seconds); each test asks for its own metric,
    # so no test finds another's answer in the cache.
    settings = copy_settings(demo_settings, tmp_path_factory.mktemp("caching") / "data")
    return create_app({"SETTINGS": {**location(settings), "secret_key": "test"}, "TESTING": True})


@pytest.fixture
def counted(monkeypatch):
    """How often the core computed the values table (the counts endpoint's one geo/ call)."""
    calls = []
    real = mapdata.values_table

    def values_table(*args, **kwargs):
        calls.append(args[1:3])
        return real(*args, **kwargs)

    monkeypatch.setattr(mapdata, "values_table", values_table)
    return calls


def _add_visits(app, n: int) -> None:
    """Add ``n`` visits on the last day to the first grid of 鄞州区, as an import would."""
    service = app.extensions["gridatlas"]
    codes = service.atlas.grid_codes
    g = int(np.searchsorted(codes, YINZHOU))
    with service.store.transaction() as con:
        count_store.add(con, codes, np.array([0]), np.array([g]), np.array([N_DAYS - 1]), np.array([n]))


def test_a_warm_answer_comes_from_memory_until_the_data_change(app, counted):
    client = app.test_client()
    url = f"/api/areas/{YINZHOU}/values?metric=visits"
    first = client.get(url)
    again = client.get(url)
    assert first.status_code == again.status_code == 200
    assert again.get_data() == first.get_data() and again.headers["ETag"] == first.headers["ETag"]
    assert len(counted) == 1  # the second answer was not computed again
    before = sum(r["value"] for r in first.get_json()["values"])

    _add_visits(app, 1000)
    fresh = client.get(url)
    assert len(counted) == 2 and fresh.headers["ETag"] != first.headers["ETag"]
    assert sum(r["value"] for r in fresh.get_json()["values"]) == before + 1000


def test_each_user_has_answers_of_their_own(app, counted):
    url = f"/api/areas/{YINZHOU}/values?metric=appeals"
    admin = app.test_client().get(url)
    official = app.test_client(user={"name": "yz", "role": "district", "area": YINZHOU}).get(url)
    assert admin.status_code == official.status_code == 200
    assert admin.headers["ETag"] != official.headers["ETag"]
    assert len(counted) == 2


def test_compressed_answers_are_kept_and_decompress_to_the_same_body(app):
    client = app.test_client()
    url = f"/api/areas/{YINZHOU}/children.geojson?metric=disputes"
    plain = client.get(url).get_data()
    zipped = [client.get(url, headers={"Accept-Encoding": "gzip"}) for _ in range(2)]
    assert all(r.headers["Content-Encoding"] == "gzip" for r in zipped)
    assert zipped[0].get_data() == zipped[1].get_data()
    assert gzip.decompress(zipped[1].get_data()) == plain
    cache = app.extensions["gridatlas_responses"]
    assert cache.get(f"gzip;{zipped[0].headers['ETag'][3:-1]}") == zipped[0].get_data()


def test_pages_are_never_kept_because_each_has_its_own_nonce(app):
    client = app.test_client()
    pages = [client.get(f"/map/{YINZHOU}") for _ in range(2)]
    nonces = [re.search(r'nonce="([^"]+)"', p.get_data(as_text=True)).group(1) for p in pages]
    assert nonces[0] != nonces[1]
    for page, nonce in zip(pages, nonces):
        assert f"'nonce-{nonce}'" in page.headers["Content-Security-Policy"]


def test_a_304_sends_no_policy_so_the_stored_page_keeps_its_own(app):
    client = app.test_client()
    page = client.get(f"/map/{YINZHOU}")
    again = client.get(f"/map/{YINZHOU}", headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304
    assert "Content-Security-Policy" not in again.headers
    assert again.headers["X-Content-Type-Options"] == "nosniff"


def test_the_cache_is_bounded_by_bytes(app):
    from web.caching import ResponseCache

    cache = ResponseCache(1000)
    for i in range(20):
        cache.set(f"k{i}", b"x" * 200)
    kept = [i for i in range(20) if cache.get(f"k{i}") is not None]
    assert kept == [15, 16, 17, 18, 19]  # the most recent, 1,000 bytes in all
    cache.set("big", b"x" * 600)  # over a quarter of the whole: not kept
    assert cache.get("big") is None
    cache.set("gzip;", b"y")  # an answer that must not be kept has an empty key
    assert cache.get("gzip;") is None


@pytest.mark.both_stores
def test_two_apps_on_one_store_both_see_a_change(app):
    # The cache is per process; the store's version is what every process checks.
    other = create_app({"SETTINGS": {**location(app.extensions["gridatlas"].settings),
                                     "secret_key": "test"}, "TESTING": True})
    url = f"/api/areas/{YINZHOU}/values?metric=visits&from=2020-03-01"
    a, b = app.test_client().get(url).get_json(), other.test_client().get(url).get_json()
    assert a == b
    _add_visits(app, 7)
    total = sum(r["value"] for r in other.test_client().get(url).get_json()["values"])
    assert total == sum(r["value"] for r in a["values"]) + 7


# --- replayed answers (web.caching.Replay): the same request from the same person's session ------

PASSWORD = "a long replay password"


@pytest.fixture(scope="module")
def people(demo_settings, tmp_path_factory):
    """An app whose requests come from people signed in through the form (no test user)."""
    from geo.access import users
    from geo.store import open_store

    settings = copy_settings(demo_settings, tmp_path_factory.mktemp("replay") / "data")
    for name, role, area in (("r-city", "city", None), ("r-town", "town", "330212108"), ("r-gone", "city", None)):
        users.add_user(open_store(settings), name, role, area, PASSWORD)
    return create_app({"SETTINGS": {**location(settings), "secret_key": "test"}, "TESTING": True, "TEST_USER": None})


def _signed_in(app, name, password=PASSWORD):
    from .conftest import login

    client = app.test_client()
    assert login(client, name, password).status_code == 302
    return client


GZIP = {"Accept-Encoding": "gzip"}


def test_the_same_request_from_the_same_session_is_replayed_until_the_data_change(people):
    from web.caching import replay_of

    replay = replay_of(people)
    client = _signed_in(people, "r-city")
    url = f"/api/areas/{YINZHOU}/values?metric=home_observation"
    first = client.get(url, headers=GZIP)
    before = replay.replayed
    again = client.get(url, headers=GZIP)
    assert again.status_code == 200 and replay.replayed == before + 1
    assert again.get_data() == first.get_data() and list(again.headers) == list(first.headers)
    assert again.headers["Content-Encoding"] == "gzip" and "Set-Cookie" not in again.headers
    plain = client.get(url)  # another encoding is another request: Flask answers it
    assert replay.replayed == before + 1 and "Content-Encoding" not in plain.headers

    _add_visits(people, 3)
    fresh = client.get(url, headers=GZIP)
    assert replay.replayed == before + 1 and fresh.headers["ETag"] != first.headers["ETag"]
    assert client.get(url, headers=GZIP).get_data() == fresh.get_data() and replay.replayed == before + 2


def test_another_session_or_a_conditional_request_goes_through_the_guard(people):
    from web.caching import replay_of

    replay = replay_of(people)
    city, town = _signed_in(people, "r-city"), _signed_in(people, "r-town")
    url = f"/api/areas/{YINZHOU}/values?metric=new_arrivals"
    tag = [city.get(url).headers["ETag"] for _ in range(2)][-1]
    before = replay.replayed
    assert town.get(url).status_code == 403  # a town official may not open the district
    assert city.get(url, headers={"If-None-Match": tag}).status_code == 304
    assert replay.replayed == before


def test_a_replay_ends_with_the_session_a_new_password_or_the_user(people, monkeypatch):
    from geo.access import users
    from web.caching import replay_of

    replay = replay_of(people)
    store = people.extensions["gridatlas"].store
    url = f"/api/areas/{YINZHOU}/values?metric=disputes"
    client = _signed_in(people, "r-gone")
    for _ in range(2):
        assert client.get(url).status_code == 200
    before = replay.replayed
    later = time.time() + (people.extensions["gridatlas"].settings.session_hours + 1) * 3600
    monkeypatch.setitem(people.config, "GRIDATLAS_CLOCK", lambda: later)
    assert client.get(url).status_code == 401  # past session_hours since signing in
    monkeypatch.delitem(people.config, "GRIDATLAS_CLOCK")

    client = _signed_in(people, "r-gone")
    assert client.get(url).status_code == 200
    users.set_password(store, "r-gone", PASSWORD + " changed")
    assert client.get(url).status_code == 401

    client = _signed_in(people, "r-gone", PASSWORD + " changed")
    assert client.get(url).status_code == 200
    users.remove_user(store, "r-gone")
    assert client.get(url).status_code == 401
    assert replay.replayed == before
