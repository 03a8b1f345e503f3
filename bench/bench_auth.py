"""Sign-in and data for benchmark clients.

Every route but the login page needs a signed-in user (web/auth.py), so a benchmark signs in
like a browser does: it makes a ``bench`` admin with a random password in the store, GETs
``/login`` for the CSRF token and the session cookie, POSTs the form and keeps the session
cookie it gets back. The user is made in a scratch copy of the data folder
(:func:`geo.bench.scratch_data_dir`), never in the user's own store.
"""

from __future__ import annotations

import http.cookiejar
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from bench.targets import SCRATCH_MARK, scratch_data_dir
from geo.access.users import add_user, generate_password, get_user, set_password
from geo.settings import Settings
from geo.store import SqliteStore

BENCH_USER = "bench"
CSRF_RE = re.compile(r'name="csrf_token"\s+value="([^"]+)"')


@contextmanager
def bench_data(data_dir: str | Path):
    """Yield a data folder the bench may write to: ``data_dir`` itself when it is already a
    scratch copy (``python -m geo bench`` passes one), else a fresh copy removed afterwards."""
    path = Path(data_dir).resolve()
    if (path / SCRATCH_MARK).exists():
        yield path
        return
    scratch = scratch_data_dir(Settings(data_dir=path))
    try:
        yield scratch.data_path
    finally:
        shutil.rmtree(scratch.data_path, ignore_errors=True)


def ensure_bench_user(data_dir: str | Path) -> tuple[str, str]:
    """(name, password) of the ``bench`` admin of the store in ``data_dir``: made with a random
    password, or given a new one when it exists. Refuses a folder that is not a scratch copy."""
    path = Path(data_dir)
    if not (path / SCRATCH_MARK).exists():
        raise SystemExit(f"{path} is not a bench scratch copy; refusing to add a user to its store")
    store = SqliteStore(Settings(data_dir=path).store_path)
    password = generate_password()
    if get_user(store, BENCH_USER) is None:
        add_user(store, BENCH_USER, "admin", None, password)
    else:
        set_password(store, BENCH_USER, password)
    return BENCH_USER, password


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def login(base: str, name: str, password: str) -> dict[str, str]:
    """Sign in at ``base`` through the real form (CSRF token included); return the cookies
    (name -> value) that carry the session. SystemExit when the sign-in fails."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    html = opener.open(base + "/login", timeout=60).read().decode("utf-8")
    token = CSRF_RE.search(html)
    if token is None:
        raise SystemExit("no csrf_token on /login")
    form = urllib.parse.urlencode({"username": name, "password": password, "csrf_token": token.group(1)})
    try:
        opener.open(urllib.request.Request(base + "/login", data=form.encode(), method="POST"), timeout=60)
        raise SystemExit("the login form answered without redirecting: the sign-in failed")
    except urllib.error.HTTPError as err:  # the 302 to the home page, not followed
        if err.code != 302:
            raise SystemExit(f"sign-in failed: HTTP {err.code}") from None
    cookies = {c.name: c.value for c in jar}
    if not any("session" in k for k in cookies):
        raise SystemExit("sign-in gave no session cookie")
    return cookies


def cookie_header(cookies: dict[str, str]) -> str:
    """The ``Cookie`` request header for ``cookies``."""
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def session_cookie(base: str, data_dir: str | Path) -> str:
    """A session cookie that benchmark requests send: the ``bench`` admin, signed in at ``base``
    (whose server serves the scratch copy ``data_dir``)."""
    name, password = ensure_bench_user(data_dir)
    return cookie_header(login(base, name, password))
