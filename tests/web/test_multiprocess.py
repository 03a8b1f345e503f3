"""Two real server processes on one store: an import through one shows in the other.

Each process keeps its own in-memory cube; what tells it to reload is the store's version,
which every import bumps in the same transaction as its records (geo/store/). The test
starts two production servers (waitress, as `make run` does) on the same data folder, signs
in to each, uploads a file through the first and reads the counts through the second.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import requests

from geo.access import users
from geo.settings import PROJECT_ROOT
from geo.store import open_store
from tests.stores import copy_settings, location_env

pytestmark = pytest.mark.both_stores

TOWN = "330212108"  # 云龙镇
PASSWORD = "Two-processes-2020!"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(settings, port: int) -> subprocess.Popen:
    env = {**os.environ, **location_env(settings), "GRIDATLAS_SECRET_KEY": "two-processes"}
    return subprocess.Popen(
        [sys.executable, "-m", "waitress", "--listen", f"127.0.0.1:{port}", "--threads", "2",
         "--call", "web:create_app"],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_until_up(proc: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            if requests.get(base + "/login", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.3)
    pytest.fail(f"{base} did not answer within 120 s")


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _signed_in(base: str) -> requests.Session:
    s = requests.Session()
    token = _csrf(s.get(base + "/login").text)
    r = s.post(base + "/login", data={"username": "clerk", "password": PASSWORD, "csrf_token": token},
               allow_redirects=False)
    assert r.status_code in (302, 303), r.text[:500]
    return s


def _town_visits(session: requests.Session, base: str) -> int:
    r = session.get(base + f"/api/areas/{TOWN}/values", params={"metric": "visits"})
    assert r.status_code == 200, r.text[:300]
    return sum(row["value"] for row in r.json()["values"])


@pytest.fixture
def two_servers(demo_settings, tmp_path):
    settings = copy_settings(demo_settings, tmp_path / "data")
    users.add_user(open_store(settings), "clerk", "admin", None, PASSWORD)
    ports = [_free_port(), _free_port()]
    procs = [_serve(settings, p) for p in ports]
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for proc, base in zip(procs, bases):
            _wait_until_up(proc, base)
        yield bases
    finally:
        for port, proc in zip(ports, procs):
            proc.terminate()
            proc.wait(timeout=30)
            # Shown by pytest only when the test failed: what the server logged (a 500's traceback).
            print(f"--- server on port {port} ---\n{proc.stdout.read()}")


@pytest.mark.slow
def test_an_import_through_one_process_shows_in_the_other(two_servers, atlas, tmp_path):
    first, second = two_servers
    importer, reader = _signed_in(first), _signed_in(second)
    before = _town_visits(reader, second)
    assert before == _town_visits(importer, first)  # both warm, same numbers

    grids = atlas.grids[atlas.grids["code"].str.startswith(TOWN)]
    inner = grids.geometry.representative_point()
    n = len(inner)
    pd.DataFrame({"编号": [f"MP{i}" for i in range(n)], "日期": ["2020-02-10"] * n,
                  "经度": inner.x.round(6), "纬度": inner.y.round(6)}).to_csv(tmp_path / "v.csv", index=False)
    token = _csrf(importer.get(first + "/upload").text)
    with open(tmp_path / "v.csv", "rb") as f:
        r = importer.post(first + "/upload", data={"metric": "visits", "csrf_token": token},
                          files={"file": ("v.csv", f, "text/csv")}, allow_redirects=False)
    assert r.status_code == 303, r.text[:500]

    # The second process never saw the upload; it learns of it from the store's version.
    assert _town_visits(reader, second) == before + n
    assert _town_visits(importer, first) == before + n
