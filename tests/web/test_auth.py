"""Sign-in, sessions, CSRF, the login rate limit, audit entries and safe downloads."""

import datetime as dt
import re
import time

import pytest

from geo.access import audit, users
from geo.store import open_store
from tests.stores import location
from web import create_app

from .conftest import ROLE_USERS, USER_PASSWORD, csrf_token_of, login

TOWN = "330212108"


def _app(settings, **overrides):
    config = {"SETTINGS": {**location(settings), "secret_key": "test-secret",
                           **overrides.pop("SETTINGS", {})},
              "TESTING": True, "TEST_USER": None}
    config.update(overrides)
    return create_app(config)


@pytest.fixture(scope="module")
def app(secure_settings):
    return _app(secure_settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def store(secure_settings):
    return open_store(secure_settings)


def _name(role):
    return ROLE_USERS[role][0]


# --- signing in and out ------------------------------------------------------------------------

def test_nobody_signed_in_is_sent_to_the_login_page_or_gets_401(client):
    r = client.get(f"/map/{TOWN}?metric=visits")
    assert r.status_code == 302
    assert r.headers["Location"] == "/login?next=/map/330212108?metric%3Dvisits"
    r = client.get(f"/api/areas/{TOWN}/summary")
    assert r.status_code == 401 and r.get_json()["status"] == 401
    assert client.get("/export/330212108.png").status_code == 302
    assert client.get("/static/app.css").status_code == 200  # public


def test_signing_in_with_the_form_opens_the_users_own_area(client):
    r = login(client, _name("town"))
    assert r.status_code == 302 and r.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 302 and home.headers["Location"].startswith(f"/map/{TOWN}")
    page = client.get(f"/map/{TOWN}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "ga-account" in html and _name("town") in html
    assert client.get("/map/330212").status_code == 403


def test_a_wrong_password_or_an_unknown_name_get_the_same_answer(client, store):
    wrong = login(client, _name("city"), "not the password")
    unknown = login(client, "nobody-here", "not the password")
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert "Wrong user name or password" in r.get_data(as_text=True) or "用户名或密码" in r.get_data(as_text=True)
    assert client.get("/api/metrics").status_code == 401
    failed = audit.entries(store, action="login_failed", limit=5)
    assert {e.target for e in failed[:2]} == {_name("city"), "nobody-here"}


def test_the_session_cookie_is_httponly_samesite_lax_and_secure_when_configured(secure_settings):
    r = login(_app(secure_settings).test_client(), _name("city"))
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "gridatlas_session=" in cookie

    secure = _app(secure_settings, SETTINGS={"session_cookie_secure": True})
    client = secure.test_client()
    page = client.get("/login", base_url="https://localhost")
    assert "Strict-Transport-Security" in page.headers
    r = client.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
                    data={"username": _name("city"), "password": USER_PASSWORD,
                          "csrf_token": csrf_token_of(page.get_data(as_text=True))})
    assert r.status_code == 302
    assert "Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]


def test_logging_out_needs_a_post_with_a_token_and_ends_the_session(client, store):
    login(client, _name("district"))
    page = client.get("/logout")
    assert page.status_code == 200  # a link or an image cannot sign anyone out
    assert client.get("/api/metrics").status_code == 200
    r = client.post("/logout", data={"csrf_token": csrf_token_of(page.get_data(as_text=True))})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert r.headers["Clear-Site-Data"] == '"cache"'
    assert client.get("/api/metrics").status_code == 401
    assert audit.entries(store, action="logout", limit=1)[0].user == _name("district")


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "/%0d%0aSet-Cookie:x=1"])
def test_next_never_leads_off_the_site(client, target):
    r = login(client, _name("city"), next_url=target)
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location in ("/", target) and not location.startswith("//") and "evil" not in location
    assert "\r" not in location and "\n" not in location


def test_next_within_the_site_is_followed(client):
    r = login(client, _name("town"), next_url=f"/map/{TOWN}?metric=risk_code")
    assert r.headers["Location"] == f"/map/{TOWN}?metric=risk_code"


# --- CSRF --------------------------------------------------------------------------------------

def test_login_without_a_csrf_token_gets_400(client):
    r = client.post("/login", data={"username": _name("city"), "password": USER_PASSWORD})
    assert r.status_code == 400
    assert "CSRF" in r.get_data(as_text=True)
    assert client.get("/api/metrics").status_code == 401  # not signed in


def test_a_wrong_csrf_token_gets_400(client):
    client.get("/login")
    r = client.post("/login", data={"username": _name("city"), "password": USER_PASSWORD, "csrf_token": "forged"})
    assert r.status_code == 400


@pytest.mark.parametrize("path", ["/logout", "/account/password", "/upload", f"/api/areas/{TOWN}/summary"])
def test_every_state_changing_request_of_a_signed_in_user_needs_the_token(client, path):
    login(client, _name("admin"))
    r = client.post(path, data={"current": USER_PASSWORD, "new": "x" * 20, "confirm": "x" * 20})
    assert r.status_code == 400, path
    assert client.get("/api/metrics").status_code == 200  # still signed in: nothing happened
    for method in (client.put, client.patch, client.delete):
        assert method(path).status_code == 400


def test_the_token_also_works_as_a_header_for_scripts(client):
    login(client, _name("admin"))
    token = csrf_token_of(client.get("/upload").get_data(as_text=True))
    without = client.post("/upload")
    assert without.status_code == 400 and "CSRF" in without.get_data(as_text=True)
    r = client.post("/upload", headers={"X-CSRFToken": token})
    # Past the CSRF check: the upload itself answers that there is no file.
    assert r.status_code == 400 and "choose a file" in r.get_data(as_text=True)


def test_every_form_that_posts_carries_a_csrf_token(client):
    login(client, _name("admin"))
    for path in ("/", f"/map/{TOWN}", "/search?q=村", "/upload", "/logout", "/account/password", "/map/999999"):
        html = client.get(path, follow_redirects=True).get_data(as_text=True)
        for form in re.findall(r"<form\b[^>]*>.*?</form>", html, re.S | re.I):
            if re.search(r'method="post"', form, re.I):
                assert 'name="csrf_token"' in form, (path, form[:200])


# --- rate limit (geo.login_throttle: in the store, shared by every process) -------------------

@pytest.fixture(autouse=True)
def _forget_failed_logins(store):
    """Each test starts with no failed logins (the store is shared by the whole session)."""
    yield
    with store.transaction(bump_version=False) as con:
        con.execute("DELETE FROM login_failures")


def _from(client, address):
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _locked_out(r, lang="zh"):
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0
    text = r.get_data(as_text=True)
    assert 'name="csrf_token"' in text  # the sign-in page itself, with the message on it
    return text


def test_repeated_failed_logins_lock_the_account_with_429_retry_after_and_an_audit_entry(secure_settings, store):
    users.add_user(store, "locky", "town", TOWN, USER_PASSWORD)
    client = _from(_app(secure_settings, SETTINGS={"login_attempts": 3}).test_client(), "10.2.0.1")
    assert login(client, "locky", "guess guess guess").status_code == 401
    assert login(client, "locky", "guess guess guess").status_code == 401
    third = login(client, "locky", "guess guess guess")  # the last attempt: locked from now on
    assert "该账号登录失败次数过多" in _locked_out(third) and "15 分钟" in third.get_data(as_text=True)
    assert int(third.headers["Retry-After"]) <= 15 * 60
    locked = audit.entries(store, action="login_failed", limit=1)[0]
    assert (locked.target, locked.outcome, locked.detail["locked"]) == ("locky", "locked", "account")
    # Even the right password is refused while the account is locked, and that is logged too.
    r = login(client, "locky")
    _locked_out(r)
    assert audit.entries(store, action="login_failed", limit=1)[0].outcome == "rate_limited"
    assert client.get("/api/metrics").status_code == 401
    # The message follows the page's language.
    client.set_cookie("lang", "en")
    english = _locked_out(login(client, "locky"))
    assert "Too many failed sign-ins for this account. Try again in 15 minutes." in english
    # Another user from elsewhere is not locked out by it.
    assert login(_from(client.application.test_client(), "10.2.0.2"), _name("town")).status_code == 302


def test_two_app_instances_on_one_data_folder_share_the_limit(secure_settings, store):
    """Like two gunicorn workers: failures counted by one count in the other."""
    users.add_user(store, "shared", "town", TOWN, USER_PASSWORD)
    one = _from(_app(secure_settings, SETTINGS={"login_attempts": 4}).test_client(), "10.3.0.1")
    two = _from(_app(secure_settings, SETTINGS={"login_attempts": 4}).test_client(), "10.3.0.1")
    assert login(one, "shared", "wrong one").status_code == 401
    assert login(two, "shared", "wrong two").status_code == 401
    assert login(one, "shared", "wrong three").status_code == 401
    _locked_out(login(two, "shared", "wrong four"))
    _locked_out(login(one, "shared"))
    _locked_out(login(two, "shared"))


def test_a_distributed_guess_at_one_account_is_limited(secure_settings, store):
    users.add_user(store, "target", "town", TOWN, USER_PASSWORD)
    app = _app(secure_settings, SETTINGS={"login_attempts": 3})
    codes = [login(_from(app.test_client(), f"10.4.0.{i}"), "target", "guess guess").status_code for i in range(5)]
    assert codes == [401, 401, 429, 429, 429]
    _locked_out(login(_from(app.test_client(), "10.4.1.1"), "target"))


def test_one_address_guessing_many_accounts_is_limited(secure_settings):
    app = _app(secure_settings, SETTINGS={"login_attempts": 2})  # 4 x 2 = 8 per address
    client = _from(app.test_client(), "10.5.0.1")
    codes = [login(client, f"guess{i}", "guess guess").status_code for i in range(9)]
    assert codes[:7] == [401] * 7 and codes[7:] == [429, 429]
    text = _locked_out(login(client, _name("city")))
    assert "本机登录失败次数过多" in text
    assert login(_from(app.test_client(), "10.5.0.2"), _name("city")).status_code == 302


def test_a_successful_sign_in_resets_the_accounts_counter(secure_settings, store):
    users.add_user(store, "forgetful", "town", TOWN, USER_PASSWORD)
    app = _app(secure_settings, SETTINGS={"login_attempts": 3})
    client = _from(app.test_client(), "10.6.0.1")
    for _ in range(2):
        assert login(client, "forgetful", "old password").status_code == 401
    assert login(client, "forgetful").status_code == 302
    fresh = _from(app.test_client(), "10.6.0.1")
    for _ in range(2):
        assert login(fresh, "forgetful", "old password").status_code == 401  # 2 again, not 4


# --- one-time passwords, password changes, removed users ---------------------------------------

def test_a_one_time_password_must_be_changed_before_anything_else(secure_settings, store):
    users.add_user(store, "newbie", "town", TOWN, "one time password 1", must_change=True)
    client = _app(secure_settings).test_client()
    r = login(client, "newbie", "one time password 1")
    assert r.headers["Location"] == "/account/password"
    assert client.get(f"/map/{TOWN}").headers["Location"] == "/account/password"
    assert client.get(f"/api/areas/{TOWN}/summary").status_code == 403
    page = client.get("/account/password").get_data(as_text=True)
    r = client.post("/account/password", data={"csrf_token": csrf_token_of(page), "current": "one time password 1",
                                                "new": "my own new secret", "confirm": "my own new secret"})
    assert r.status_code == 302
    assert client.get(f"/map/{TOWN}").status_code == 200
    assert users.authenticate(store, "newbie", "my own new secret") is not None


def test_a_new_password_or_a_removed_user_ends_open_sessions(secure_settings, store):
    users.add_user(store, "temp", "city", None, "first long secret")
    app = _app(secure_settings)
    a, b = app.test_client(), app.test_client()
    login(a, "temp", "first long secret")
    login(b, "temp", "first long secret")
    users.set_password(store, "temp", "second long secret")
    assert a.get("/api/metrics").status_code == 401
    login(b, "temp", "second long secret")
    assert b.get("/api/metrics").status_code == 200
    users.remove_user(store, "temp")
    assert b.get("/api/metrics").status_code == 401


def test_a_session_ends_after_its_hours(client):
    login(client, _name("city"))
    assert client.get("/api/metrics").status_code == 200
    with client.session_transaction() as s:
        s["at"] = 0  # signed in at 1970
    assert client.get("/api/metrics").status_code == 401


class _Clock:
    """The app's clock (``GRIDATLAS_CLOCK``), moved by hand."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, hours: float) -> None:
        self.offset += hours * 3600


def _expires(set_cookie: str) -> dt.datetime:
    text = re.search(r"Expires=([^;]+)", set_cookie).group(1)
    return dt.datetime.strptime(text, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.timezone.utc)


def test_the_cookie_is_sent_at_sign_in_not_with_every_answer_and_still_ends_after_its_hours(secure_settings):
    clock = _Clock()
    app = _app(secure_settings, GRIDATLAS_CLOCK=clock)
    client = app.test_client()
    r = login(client, _name("city"))
    left = _expires(r.headers["Set-Cookie"]) - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(hours=secure_settings.session_hours - 1) < left <= dt.timedelta(
        hours=secure_settings.session_hours)  # the cookie ends with the session
    for hours in (0, 1, secure_settings.session_hours - 1.5):
        clock.advance(hours)
        answer = client.get("/api/metrics")
        assert answer.status_code == 200 and "Set-Cookie" not in answer.headers
    clock.advance(1)  # past session_hours since signing in, however active
    r = client.get("/api/metrics")
    assert r.status_code == 401
    assert "gridatlas_session=;" in r.headers["Set-Cookie"]  # the cookie is removed
    assert client.get("/api/metrics").status_code == 401


def test_a_remembered_cookie_is_refused_once_its_signature_is_too_old(secure_settings, monkeypatch):
    start = time.time()
    app = _app(secure_settings, GRIDATLAS_CLOCK=lambda: start)  # the session's own limits never end
    client = app.test_client()
    login(client, _name("city"))
    assert client.get("/api/metrics").status_code == 200  # verified once, then remembered
    assert client.get("/api/metrics").status_code == 200
    limit = max(secure_settings.session_hours, secure_settings.wall_device_idle_hours)
    monkeypatch.setattr(time, "time", lambda: start + limit * 3600 + 60)  # the signature's clock
    assert client.get("/api/metrics").status_code == 401


def test_a_polling_wall_gets_a_new_cookie_every_few_minutes_and_stays_signed_in(secure_settings):
    from geo.access import wall_devices
    from web.auth import DEVICE_SEEN_STEP

    clock = _Clock()
    app = _app(secure_settings, GRIDATLAS_CLOCK=clock)
    token = wall_devices.issue(app.extensions["gridatlas"].store, "wall-cookie", "330200", 30)[1]
    wall = app.test_client()
    page = wall.get("/wall/device")
    r = wall.post("/wall/device", json={"token": token, "query": ""},
                  headers={"X-CSRFToken": csrf_token_of(page.get_data(as_text=True))})
    assert r.status_code == 200 and "Set-Cookie" in r.headers
    sent = 0
    for _ in range(60):  # polling every 10 s for 10 minutes
        clock.advance(10 / 3600)
        answer = wall.get("/api/wall")
        assert answer.status_code == 200
        sent += "Set-Cookie" in answer.headers
    assert 1 <= sent <= 600 // DEVICE_SEEN_STEP
    clock.advance(secure_settings.wall_device_idle_hours - 1)  # switched off, not quite long enough
    answer = wall.get("/api/wall")
    assert answer.status_code == 200 and "Set-Cookie" in answer.headers  # the end moves on
    clock.advance(secure_settings.wall_device_idle_hours - 1)
    assert wall.get("/api/wall").status_code == 200
    clock.advance(secure_settings.wall_device_idle_hours + 1)
    assert wall.get("/api/wall").status_code == 401


def test_without_a_configured_secret_every_worker_on_one_data_folder_signs_alike(secure_settings):
    # granian's 2 workers each build their own app: a session made by one must hold in the other.
    one, two = (_app(secure_settings, SETTINGS={"secret_key": ""}) for _ in range(2))
    first = one.test_client()
    login(first, _name("city"))
    second = two.test_client()
    second.set_cookie("gridatlas_session", first.get_cookie("gridatlas_session").value)
    assert second.get("/api/metrics").status_code == 200
    assert (secure_settings.data_path / "secret_key").stat().st_mode & 0o077 == 0  # the owner's only


def test_a_forged_session_cookie_signs_nobody_in(client):
    client.set_cookie("gridatlas_session", "eyJ1c2VyIjoicm9vdCJ9.forged.signature")
    assert client.get("/api/metrics").status_code == 401


# --- test switches -----------------------------------------------------------------------------

def test_the_test_user_switch_needs_testing(secure_settings):
    with pytest.raises(RuntimeError, match="TEST_USER is a test setting"):
        create_app({"SETTINGS": {**location(secure_settings)}, "TEST_USER": {"role": "admin"}})


def test_a_production_app_has_no_test_user_and_the_environment_cannot_add_one(secure_settings, monkeypatch):
    monkeypatch.setenv("GRIDATLAS_TESTING", "1")
    monkeypatch.setenv("FLASK_TESTING", "1")
    monkeypatch.setenv("GRIDATLAS_TEST_USER", "admin")
    app = create_app({"SETTINGS": {**location(secure_settings)}})
    assert not app.testing
    client = app.test_client()
    assert client.get("/api/metrics").status_code == 401
    assert client.get("/api/metrics", environ_base={"gridatlas.test_user": {"role": "admin"}}).status_code == 401
    assert client.get("/api/metrics", headers={"gridatlas.test_user": "admin"}).status_code == 401


# --- audit -------------------------------------------------------------------------------------

def test_exports_and_refusals_are_audited_with_the_user(client, store):
    login(client, _name("town"))
    assert client.get(f"/export/{TOWN}.svg?metric=visits").status_code == 200
    entry = audit.entries(store, action="export", limit=1)[0]
    assert (entry.user, entry.target, entry.outcome) == (_name("town"), TOWN, "ok")
    assert entry.detail["query"] == {"metric": "visits"}
    assert client.get("/export/330203.svg").status_code == 403
    refused = audit.entries(store, action="forbidden", limit=1)[0]
    assert refused.user == _name("town") and refused.target == "/export/330203.svg"


def test_uploads_are_admin_only_and_audited(client, store):
    login(client, _name("city"))
    assert client.get("/upload").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token_of(client.get("/logout").get_data(as_text=True))})
    login(client, _name("admin"))
    page = client.get("/upload")
    assert page.status_code == 200
    csv = "编号,日期,经度,纬度\nr1,2020-02-03,121.55,29.87\n".encode("utf-8")
    import io

    r = client.post("/upload", data={"csrf_token": csrf_token_of(page.get_data(as_text=True)), "metric": "visits",
                                     "file": (io.BytesIO(csv), "visits.csv")}, content_type="multipart/form-data")
    assert r.status_code in (200, 303)
    entry = audit.entries(store, action="import", limit=1)[0]
    assert entry.user == _name("admin") and entry.detail["files"] == ["visits.csv"]


# --- downloads and URLs ------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/export/..%2F..%2F..%2Fetc%2Fpasswd.png",
    "/export/%2Fetc%2Fpasswd.png",
    "/export/..%252F..%252Fetc%252Fpasswd.png",
    "/export/%2e%2e%2f%2e%2e%2fgeo%2fsettings.py.png",
    "/export//etc/passwd.png",
    "/export/330212108.png%2F..%2F..%2Fetc%2Fpasswd",
    "/upload/..%2F..%2Fetc%2Fpasswd/rejected.csv",
    "/upload/%2e%2e/rejected.csv",
    "/upload/%2Fetc%2Fpasswd/rejected.csv",
    "/static/..%2F..%2Fgeo%2Fsettings.py",
    "/static/%2Fetc%2Fpasswd",
    "/static/vendor/..%2F..%2F..%2Fgeo%2Fsettings.py",
    "/static/vendor/%2Fetc%2Fpasswd",
])
def test_downloads_refuse_encoded_dot_dot_and_absolute_paths(path, client):
    login(client, _name("admin"))
    r = client.get(path, follow_redirects=True)  # Werkzeug merges "//" with a redirect first
    assert r.status_code in (400, 403, 404), path
    body = r.get_data()
    assert b"root:" not in body and b"BaseSettings" not in body


def test_no_module_can_fetch_a_url():
    """Nothing in the app opens a network connection: a URL in a request stays a string."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"^\s*(import|from)\s+(requests|httpx|urllib3|aiohttp|http\.client|urllib\.request|socket)\b"
                         r"|urlopen\(|urlretrieve\(", re.M)
    offenders = [str(p.relative_to(root)) for folder in ("geo", "web") for p in (root / folder).rglob("*.py")
                 if pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
