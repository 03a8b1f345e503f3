"""Shared fixtures for browser tests: Debian's Chromium driven by Playwright.

* ``browser`` (session): one headless Chromium for the whole run.
* ``page`` (function): a fresh context and page that may only talk to
  127.0.0.1/localhost. Every other request is aborted and recorded, so a
  test can prove that a page works offline. The page carries three lists:
  ``page.blocked_requests`` (URLs to other hosts), ``page.failed_requests``
  (network failures and HTTP >= 400) and ``page.console_errors`` (console
  errors and uncaught exceptions).
* ``live_server`` (function): ``live_server(app)`` serves a WSGI app on
  127.0.0.1 with a free port in a thread and returns its base URL.

``playwright install`` cannot download browsers here, so Chromium comes from
apt (``apt-get install chromium``); CHROMIUM_PATH overrides its location.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

# Let `import web.…` work however pytest is started (the repo has no
# package config that puts its root on sys.path).
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Chromium's own background traffic would otherwise show up as blocked requests.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(scope="session")
def browser():
    """A headless Debian Chromium, shared by all tests of the session."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"No Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A page in a fresh context that may reach only local hosts; see module doc."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.blocked_requests = []
    page.failed_requests = []
    page.console_errors = []

    def guard(route):
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            page.blocked_requests.append(route.request.url)
            route.abort("blockedbyclient")

    def on_failed(request):
        if request.url not in page.blocked_requests:  # already recorded
            page.failed_requests.append(f"{request.url}: {request.failure}")

    def on_response(response):
        if response.status >= 400:
            page.failed_requests.append(f"{response.url}: HTTP {response.status}")

    context.route("**/*", guard)
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda error: page.console_errors.append(f"uncaught: {error}"))
    yield page
    context.close()


@pytest.fixture
def live_server():
    """Factory: ``live_server(app) -> "http://127.0.0.1:<port>"``; stopped after the test."""
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


# --- signed-in users ---------------------------------------------------------------------------
#
# An app built with TESTING=True serves every request as an admin (``TEST_USER``), so tests that
# are not about access control need nothing. ``app.test_client(user={"role": "town", "area":
# "330212108"})`` sends requests as another user, ``user=None`` as nobody. Tests of the real
# sign-in use ``secure_settings`` (a copy of the demo data with one stored user per role) and
# ``login(client, name)``, which signs in through the form with its CSRF token.

USER_PASSWORD = "a long test password"
ROLE_USERS = {
    "admin": ("root", "admin", None),
    "city": ("centre", "city", None),
    "district": ("yinzhou", "district", "330212"),
    "town": ("yunlong", "town", "330212108"),
}


@pytest.fixture(scope="session")
def secure_settings(demo_settings, tmp_path_factory):
    """Settings on a copy of the demo data (so audit entries and users stay apart) with one
    user per role in ``ROLE_USERS``, all with the password ``USER_PASSWORD``."""
    from geo.access.users import add_user
    from geo.store import open_store
    from tests.stores import copy_settings

    settings = copy_settings(demo_settings, tmp_path_factory.mktemp("secure") / "data", secret_key="test-secret")
    for name, role, area in ROLE_USERS.values():
        add_user(open_store(settings), name, role, area, USER_PASSWORD)
    return settings


def csrf_token_of(html: str) -> str:
    """The CSRF token of the first form (or the meta tag) of a page."""
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def login(client, name: str, password: str = USER_PASSWORD, next_url: str | None = None):
    """Sign in through the form (GET /login for the token, then POST); returns the POST response."""
    page = client.get("/login").get_data(as_text=True)
    data = {"username": name, "password": password, "csrf_token": csrf_token_of(page)}
    if next_url is not None:
        data["next"] = next_url
    return client.post("/login", data=data)
