"""Sign-in, sessions, CSRF and the access rule of every route.

Every view function carries an access rule, set by one of the decorators below; one
``before_request`` hook (:func:`_guard`) enforces it before the view (and before any cache
check) runs, so a route cannot forget its check:

* :func:`public`: no sign-in (the login page, static files);
* :func:`signed_in`: any signed-in user; the route shows nothing tied to an area;
* :func:`area_scoped`: the area code in the URL must lie inside the user's jurisdiction (403);
* :func:`listing`: the route lists areas and trims them with :func:`current_scope` itself;
* :func:`city_wide`: only users whose jurisdiction is the whole city;
* :func:`requires`: a permission of the role (``import`` for uploads: admins only).

A route without a rule answers 403 (fail closed), and ``tests/web/test_route_scopes.py``
fails for it. Flask's and the vendor files' static routes are public by :data:`PUBLIC_ENDPOINTS`.

Sessions are Flask's signed cookie: HttpOnly, SameSite=Lax, Secure when
``GRIDATLAS_SESSION_COOKIE_SECURE`` is true, ending after ``session_hours`` however active,
and at once when the user's password changes or the user is removed. Every POST, PUT, PATCH
and DELETE needs a CSRF token (Flask-WTF): the ``csrf_token`` field of a form, or the
``X-CSRFToken`` header (the token is in ``<meta name="csrf-token">`` of each page); without
one the answer is 400, ``/login`` included. Failed logins are limited per account name and per
client address, in the store (:mod:`geo.login_throttle`), so all processes share the count; a
locked sign-in gets a 429 with ``Retry-After``.

Wall devices (``geo/access/wall_devices.py``) are the other kind of session: a video wall that
claimed a device token. Their principal has the device's area as its jurisdiction, opens only
:data:`DEVICE_ENDPOINTS` (the wall and the JSON it draws from; everything else is 403), and
its session slides: each request pushes its end ``wall_device_idle_hours`` on, until the token
expires or is revoked. Its cookie lives as long (:class:`SessionInterface`). A refused device
session is kept, marked, so that each later request of the wall says why (:func:`_load_device`).
The clock of both kinds of session is ``app.config["GRIDATLAS_CLOCK"]`` (``time.time``), so
tests can move it.

The cookie is sent again only when the session changes (``SESSION_REFRESH_EACH_REQUEST`` is
off): signing a cookie on every request cost a warm JSON answer a good part of its time, and a
person's session has a fixed end anyway (the cookie expires ``session_hours`` after sign-in, as
the session does). A wall's sliding end moves in steps of :data:`DEVICE_SEEN_STEP`, so a wall
polling every few seconds gets a new cookie every few minutes, not with every answer. A verified
cookie is remembered by its exact text (:class:`SessionInterface`), so the next request that sends
it skips the signature check; its age is still checked each time.

Tests: an app created with ``TESTING=True`` treats requests as those of ``TEST_USER`` (an
admin unless the test config says otherwise; None = nobody), and ``app.test_client(user=...)``
picks another user per client. Both exist only in an app built with a test config, which the
environment cannot set, and such requests skip the CSRF check: a browser is never involved.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, g, make_response, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFProtect
from markupsafe import Markup
from werkzeug.exceptions import Unauthorized

from geo.access import audit, login_throttle, users, wall_devices
from geo.access.scope import Scope
from geo.atlas.hierarchy import CITY_CODE
from geo.errors import BadParameter, Forbidden

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Routes we do not write ourselves: Flask's static folder and the vendored front-end files.
PUBLIC_ENDPOINTS = frozenset({"static", "vendor_static.vendor_file"})
# What a user who must change their password may still open.
WHILE_MUST_CHANGE = frozenset({"auth.password", "auth.logout", "auth.login"})
# WSGI environ key of a test client's user. Not an HTTP header (those become HTTP_*), so no
# request from outside can carry it; and it is read only by an app built with TESTING=True.
TEST_USER_ENVIRON = "gridatlas.test_user"
DEFAULT_TEST_USER = {"name": "test-admin", "role": "admin", "area": CITY_CODE}
_NO_TEST_USER = object()
# All a wall device may open besides the public routes: the wall, its JSON, and the map
# endpoints its layers and its playback draw from (each still checks the device's area).
DEVICE_ENDPOINTS = frozenset({"wall.page", "wall.board", "api.children", "api.values", "api.checkpoints",
                              "api.outlines", "api.summary", "time_api.daily"})
# A wall device's "last seen" in its session moves on in steps of this many seconds: its cookie
# is re-sent that often while it polls (not with every answer), and its idle limit
# (``wall_device_idle_hours``) is kept to within this step.
DEVICE_SEEN_STEP = 300
# Verified session cookies remembered per process (by their text); emptied when full.
OPENED_SESSIONS = 4096
# WSGI environ key: until when (epoch seconds) this request's session cookie's signature is valid.
SIGNED_UNTIL_ENVIRON = "gridatlas.session_signed_until"


# ---------------------------------------------------------------------------------------------
# Access rules
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Access:
    """The access rule of one route."""

    kind: str  # public, signed_in, area, listing, city, permission
    permission: str = "view"
    arg: str | None = None  # the URL argument holding the area code (kind "area")


def _mark(access: Access):
    def decorate(view):
        view.gridatlas_access = access
        return view

    return decorate


def public(view):
    """Rule: anyone, signed in or not."""
    return _mark(Access("public"))(view)


def signed_in(view):
    """Rule: any signed-in user; the route shows nothing that belongs to an area."""
    return _mark(Access("signed_in"))(view)


def area_scoped(arg: str = "code", permission: str = "view"):
    """Rule: the area code in URL argument ``arg`` must lie inside the user's jurisdiction, and
    the role must grant ``permission`` (``view`` or ``export``)."""
    return _mark(Access("area", permission, arg))


def listing(view):
    """Rule: signed in; the route lists areas and keeps only those of :func:`current_scope`."""
    return _mark(Access("listing"))(view)


def city_wide(permission: str = "view"):
    """Rule: only users whose jurisdiction is the whole city (city-wide totals, the status)."""
    return _mark(Access("city", permission))


def requires(permission: str):
    """Rule: the role must grant ``permission`` (``import``: admins only)."""
    return _mark(Access("permission", permission))


def access_of(app: Flask, endpoint: str) -> Access | None:
    """The access rule of ``endpoint`` (None: the route has none and is refused)."""
    if endpoint in PUBLIC_ENDPOINTS:
        return Access("public")
    view = app.view_functions.get(endpoint)
    return getattr(view, "gridatlas_access", None)


# ---------------------------------------------------------------------------------------------
# The current user
# ---------------------------------------------------------------------------------------------

def current_user() -> users.User | None:
    """The signed-in user of this request, or None."""
    return g.get("user")


def current_scope() -> Scope:
    """The jurisdiction of the signed-in user. Only routes with a rule other than ``public``
    call it, and the guard has made sure someone is signed in."""
    user = current_user()
    if user is None:
        raise Unauthorized(_("Please sign in."))
    return user.scope


def can_see(code: str) -> bool:
    """True when the signed-in user may open area ``code`` (templates use it for links)."""
    user = current_user()
    return user is not None and user.scope.can_see(code)


def cache_identity() -> str:
    """What makes the same URL answer differently for different users (for ETags)."""
    user = current_user()
    return "-" if user is None else _identity(user)


@dataclass(frozen=True)
class Principal:
    """Who made a request, as far as its answer depends on it: enough to tell later, without
    Flask, that the same session cookie still belongs to the same person (web/caching.py's
    replay of warm answers)."""

    name: str
    identity: str  # cache_identity(): name, role, area, password stamp
    signed_in_at: float  # the session's "at" (its end is session_hours later)
    signed_until: int  # when the cookie's signature gets too old


def _identity(user: users.User) -> str:
    return f"{user.name}|{user.role}|{user.area}|{user.stamp}"


def replay_principal() -> Principal | None:
    """The person whose session cookie made this request, or None when the answer must not be
    replayed without the guard: nobody, a test user, a wall device (its session slides with
    each request), or a user who must change their password."""
    user = current_user()
    if (user is None or g.get("test_principal") or g.get("device") is not None or user.must_change
            or session.get("user") != user.name or SIGNED_UNTIL_ENVIRON not in request.environ):
        return None
    return Principal(user.name, _identity(user), float(session.get("at", 0)),
                     request.environ[SIGNED_UNTIL_ENVIRON])


def still_signed_in(app: Flask, who: Principal) -> bool:
    """True when ``who``'s session would pass the guard again now, as it did when the answer
    was made: not past ``session_hours``, the cookie's signature not too old, and the user still
    there with the same role, area and password (no Flask request context needed)."""
    svc = app.extensions["gridatlas"]
    now = app.config.get("GRIDATLAS_CLOCK", time.time)()
    if now - who.signed_in_at >= svc.settings.session_hours * 3600 or int(time.time()) > who.signed_until:
        return False
    user = users.get_user(svc.store, who.name)
    return user is not None and not user.must_change and _identity(user) == who.identity


def _test_user(spec: dict | None) -> users.User | None:
    if not spec:
        return None
    role = spec.get("role", "city")
    area = spec.get("area") or CITY_CODE
    Scope(role, area)  # a wrong role or area fails loudly in the test, not as a 403 later
    return users.User(spec.get("name", f"test-{role}"), role, area, False, "", "", None, "test")


def _load_user() -> None:
    """Find who sends this request: a test client's user, the session's, or the test default."""
    g.user = None
    g.test_principal = False
    spec = request.environ.get(TEST_USER_ENVIRON, _NO_TEST_USER) if current_app.testing else _NO_TEST_USER
    if spec is not _NO_TEST_USER and spec is not None:
        g.user = _test_user(spec)
        g.test_principal = True
        return
    if session.get("device"):
        _load_device(session["device"])
        return
    name = session.get("user")
    if name:
        user = users.get_user(_store(), name)
        hours = _settings().session_hours
        fresh = clock() - float(session.get("at", 0)) < hours * 3600
        if user is not None and session.get("stamp") == user.stamp and fresh:
            g.user = user
            return
        session.clear()  # removed user, changed password or expired: signed out
    # A client made with user=None signs in for real (or stays anonymous): no default user.
    if spec is _NO_TEST_USER and current_app.testing and current_app.config.get("TEST_USER"):
        g.user = _test_user(current_app.config["TEST_USER"])
        g.test_principal = True


def clock() -> float:
    """Seconds since the epoch: ``time.time`` unless a test app sets ``GRIDATLAS_CLOCK``."""
    return current_app.config.get("GRIDATLAS_CLOCK", time.time)()


def current_device() -> wall_devices.Device | None:
    """The wall device of this request, or None (a person, or nobody)."""
    return g.get("device")


def _load_device(name: str) -> None:
    """A wall device's session: valid while its token is and while the wall keeps asking.

    A refused session is kept, marked ``refused``, not cleared: the first request to meet the
    refusal may be one whose answer the wall never reads (its service worker's update check,
    another tab), and every later request must still say why the wall was signed out, not
    "please sign in". Each is refused again from the store (a refusal never heals: a new token
    changes the stamp, and ``seen`` no longer moves); the audit log gets one entry per session."""
    now = clock()
    g.device = None
    refused = session.get("refused")
    try:
        if now - float(session.get("seen", 0)) >= _settings().wall_device_idle_hours * 3600:
            raise wall_devices.DeviceRefused("idle", f"wall device {name!r} was idle too long")
        device = wall_devices.check_session(_store(), name, session.get("stamp", ""),
                                            now=dt.datetime.fromtimestamp(now, dt.timezone.utc))
        if refused:  # fail closed, should the store ever say otherwise
            raise wall_devices.DeviceRefused(refused, f"wall device {name!r} was refused earlier", device)
    except wall_devices.DeviceRefused as err:
        g.device_refused = err
        if refused != err.reason:
            session["refused"] = err.reason
            audit.record(_store(), f"wall:{name}", "wall_device_refused", name, err.reason, None, _client())
        return
    if now - float(session.get("seen", 0)) >= DEVICE_SEEN_STEP:
        session["seen"] = now  # sliding: the wall's requests push the end on (a new cookie)
    g.device = device
    g.user = users.User(f"wall:{device.name}", device.role, device.area, False, device.created_at,
                        device.created_at, device.last_seen_at, device.stamp)


def start_device_session(device: wall_devices.Device) -> None:
    """Turn this browser's session into ``device``'s (whoever was signed in is signed out)."""
    session.clear()
    session.permanent = True
    session.update(device=device.name, stamp=device.stamp, seen=clock())
    g.device = device


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, but a wall device's cookie lasts ``wall_device_idle_hours`` (a
    person's lasts ``session_hours``; both sessions' own limits are checked by the guard).

    One signing serializer per secret key (Flask builds a new one for every request), and the
    cookies it verified are remembered by their exact text, with the time they were signed: a
    cookie sent again is not verified again, but one older than the limit is still refused.
    Only sessions of plain values (text, numbers) are remembered, so no request can change
    what another one is handed."""

    def __init__(self):
        self._serializers = {}
        self._opened = {}

    def _device_seconds(self, app) -> int:
        return app.extensions["gridatlas"].settings.wall_device_idle_hours * 3600

    def get_signing_serializer(self, app):
        """Flask's serializer, built once per secret key (and fallback keys)."""
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        serializer = self._serializers.get(key)
        if serializer is None:
            serializer = self._serializers[key] = super().get_signing_serializer(app)
        return serializer

    def open_session(self, app, request):
        """Accept signatures as old as the longer of both limits (the guard applies each)."""
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = max(int(app.permanent_session_lifetime.total_seconds()), self._device_seconds(app))
        key = (id(serializer), value)
        known = self._opened.get(key)
        if known is None:
            try:
                data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
            except Exception:  # noqa: BLE001 - a bad or old signature is no session
                return self.session_class()
            known = (data, int(signed_at.timestamp()))
            if all(v is None or isinstance(v, (str, int, float)) for v in data.values()):
                if len(self._opened) >= OPENED_SESSIONS:
                    self._opened.clear()
                self._opened[key] = known
        data, signed_at = known
        if int(time.time()) - signed_at > max_age:  # the age as itsdangerous counts it
            self._opened.pop(key, None)
            return self.session_class()
        request.environ[SIGNED_UNTIL_ENVIRON] = signed_at + max_age
        return self.session_class(data)

    def get_expiration_time(self, app, session):
        """A device's cookie expires after its idle limit, a person's after ``session_hours``."""
        if session.permanent and session.get("device"):
            return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self._device_seconds(app))
        return super().get_expiration_time(app, session)


def _store():
    from . import service

    return service().store


def _settings():
    from . import service

    return service().settings


def _client() -> str:
    return request.remote_addr or "-"


def record(action: str, target: str = "", outcome: str = "ok", detail: dict | None = None) -> None:
    """Append an audit entry for the current user (``-`` when nobody is signed in)."""
    user = current_user()
    audit.record(_store(), user.name if user else "-", action, target, outcome, detail, _client())


# ---------------------------------------------------------------------------------------------
# The guard
# ---------------------------------------------------------------------------------------------

def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _guard():
    """Enforce the route's access rule (runs before every view)."""
    if request.endpoint in PUBLIC_ENDPOINTS and request.method in SAFE_METHODS:
        g.user, g.test_principal = None, False
        return None  # static files: no need to look the user up
    _load_user()
    if request.method not in SAFE_METHODS and not g.test_principal:
        csrf.protect()  # 400 without a valid token, whoever asks
    endpoint = request.endpoint
    if endpoint is None:  # no route matched: the 404/405 follows
        return None
    access = access_of(current_app, endpoint)
    if access is None:
        current_app.logger.error("route %s has no access rule; refused", endpoint)
        raise Forbidden(f"route {endpoint!r} has no access rule")
    if access.kind == "public":
        return None
    user = current_user()
    if user is None:
        if g.get("device_refused") is not None and endpoint in DEVICE_ENDPOINTS:
            # A wall whose device login ended: say why, no login form. (Elsewhere, as for
            # nobody: a person may sign in on that browser.)
            raise Unauthorized(device_message(g.device_refused))
        if _wants_json() or request.method not in SAFE_METHODS:
            raise Unauthorized(_("Please sign in."))
        return redirect(url_for("auth.login", next=_here()))
    if user.must_change and endpoint not in WHILE_MUST_CHANGE:
        if _wants_json():
            raise Forbidden("change your one-time password first (/account/password)")
        return redirect(url_for("auth.password"))
    scope = user.scope
    device = current_device()
    try:
        if device is not None and endpoint not in DEVICE_ENDPOINTS:
            raise Forbidden(f"wall device {device.name!r} opens only the wall, not {request.path}")
        scope.require(access.permission)
        if access.kind == "area":
            scope.check((request.view_args or {}).get(access.arg))
        elif access.kind == "city" and not scope.is_city and device is None:
            # (A district's wall device passes: the wall's routes check its area themselves.)
            raise Forbidden(f"this page covers the whole city, outside the jurisdiction of {scope.describe()}")
    except Forbidden as err:
        record("forbidden", request.path, "refused", {"endpoint": endpoint, "reason": str(err)})
        raise
    return None


def _here() -> str:
    return request.full_path.rstrip("?") if request.query_string else request.path


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return None
    return target


# ---------------------------------------------------------------------------------------------
# Login rate limit (geo.login_throttle: in the store, shared by every process)
# ---------------------------------------------------------------------------------------------

def _too_many(lockout: login_throttle.Lockout, target: str | None, name: str):
    """The sign-in page with a 429 and Retry-After, worded in the page's language."""
    if lockout.kind == "client":
        message = _("Too many failed sign-ins from this computer. Try again in %(n)s minutes.", n=lockout.minutes)
    else:
        message = _("Too many failed sign-ins for this account. Try again in %(n)s minutes.", n=lockout.minutes)
    body, status = _login_page(target, error=message, status=429, name=name)
    response = make_response(body, status)
    response.headers["Retry-After"] = str(lockout.retry_after)
    return response


# ---------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------

def _home_of(user: users.User) -> str:
    if user.must_change:
        return url_for("auth.password")
    return url_for("pages.city")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    """The sign-in form; a POST checks the password (CSRF token required)."""
    target = safe_next(request.values.get("next"))
    user = current_user()
    if request.method == "GET":
        if user is not None and not g.test_principal:
            return redirect(target or _home_of(user))
        return _login_page(target)
    name = (request.form.get("username") or "").strip()[:64]
    password = request.form.get("password") or ""
    limits = login_throttle.Limits.from_settings(_settings())
    attempt = login_throttle.begin(_store(), name, _client(), limits)  # counted before the check
    if isinstance(attempt, login_throttle.Lockout):
        audit.record(_store(), name or "-", "login_failed", name, "rate_limited",
                     {"locked": attempt.kind, "retry_after": attempt.retry_after}, _client())
        return _too_many(attempt, target, name)
    found = users.authenticate(_store(), name, password) if name and password else None
    if found is None:
        audit.record(_store(), name or "-", "login_failed", name, "refused", None, _client())
        lockout = login_throttle.locked(_store(), name, _client(), limits)
        if lockout is not None:  # this failure used up the last attempt: the lockout starts now
            audit.record(_store(), name or "-", "login_failed", name, "locked",
                         {"locked": lockout.kind, "retry_after": lockout.retry_after}, _client())
            return _too_many(lockout, target, name)
        return _login_page(target, error=_("Wrong user name or password."), status=401, name=name)
    login_throttle.succeeded(_store(), attempt)
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    session.permanent = True
    session.update(user=found.name, stamp=found.stamp, at=clock())
    g.user = found
    record("login", found.name, "ok", {"role": found.role, "area": found.area})
    return redirect(url_for("auth.password") if found.must_change else (target or _home_of(found)))


def _login_page(target: str | None, error: str | None = None, status: int = 200, name: str = ""):
    return render_template("login.html", next=target, error=error, name=name), status


@bp.route("/logout", methods=["GET", "POST"])
@public
def logout():
    """POST signs out (CSRF token required); GET shows the button, so a link cannot sign
    anyone out."""
    if request.method == "GET":
        return render_template("logout.html")
    user = current_user()
    if user is not None and not g.test_principal:
        record("logout", user.name)
    session.clear()
    response = make_response(redirect(url_for("auth.login")))
    # The browser drops what it cached for this user (a shared terminal is a common case).
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@signed_in
def password():
    """Change one's own password (required after a one-time password)."""
    user = current_user()
    if request.method == "GET":
        return render_template("password.html", user=user)
    current = request.form.get("current") or ""
    new = request.form.get("new") or ""
    if new != (request.form.get("confirm") or ""):
        return render_template("password.html", user=user, error=_("The two new passwords differ.")), 400
    if g.test_principal:
        raise BadParameter("a test user has no stored password")
    try:
        changed = users.change_own_password(_store(), user.name, current, new)
    except BadParameter as err:
        return render_template("password.html", user=user, error=_password_message(str(err))), 400
    session.update(stamp=changed.stamp)
    g.user = changed
    record("password_changed", changed.name)
    return redirect(url_for("pages.city"))


def _password_message(message: str) -> str:
    if message.startswith("the current password"):
        return _("The current password is wrong.")
    if "at least" in message:
        return _("The new password must have at least %(n)s characters.", n=users.MIN_PASSWORD)
    return message


def account_menu() -> Markup:
    """The signed-in user's name, jurisdiction and sign-out button, for the page top bar."""
    user = current_user()
    if user is None:
        return Markup("")
    return Markup(render_template("_account.html", user=user))


# ---------------------------------------------------------------------------------------------
# Test client and set-up
# ---------------------------------------------------------------------------------------------

class TestClient(FlaskClient):
    """``app.test_client(user={"role": "town", "area": "330212108"})`` sends requests as that
    user; ``user=None`` as nobody until it signs in through /login; without ``user`` as the
    app's ``TEST_USER``."""

    _UNSET = object()

    def __init__(self, *args, user=_UNSET, **kwargs):
        super().__init__(*args, **kwargs)
        if user is not self._UNSET:
            self.environ_base[TEST_USER_ENVIRON] = user


def audited(action: str, arg: str | None = None):
    """Decorator: append an audit entry (``export``, ``import``...) for every call of the view,
    with its outcome; ``arg`` names the URL argument that is the target."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            target = str(kwargs.get(arg, "")) if arg else request.path
            detail = {"query": request.args.to_dict()}
            if request.files:
                detail["files"] = [f.filename for f in request.files.values()]
            try:
                response = make_response(view(*args, **kwargs))
            except Exception as err:
                record(action, target, f"failed: {type(err).__name__}", detail)
                raise
            record(action, target, "ok" if response.status_code < 400 else str(response.status_code), detail)
            return response

        return wrapper

    return decorate


def init_app(app: Flask) -> None:
    """Install sessions, CSRF protection, the guard and the login routes on ``app``."""
    settings = app.extensions["gridatlas"].settings
    app.config.update(
        SESSION_COOKIE_NAME="gridatlas_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=settings.session_hours * 3600,
        # A cookie only when the session changes (see the module docstring).
        SESSION_REFRESH_EACH_REQUEST=False,
        # The check runs in the guard (so it also covers routes added later), not by itself.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=settings.session_hours * 3600,
    )
    if app.testing:
        app.config.setdefault("TEST_USER", DEFAULT_TEST_USER)
        app.test_client_class = TestClient
    elif app.config.get("TEST_USER"):
        raise RuntimeError("TEST_USER is a test setting; it needs TESTING=True")
    csrf.init_app(app)
    app.session_interface = SessionInterface()
    # First of all before_request functions: nothing runs for a request that is refused.
    app.before_request_funcs.setdefault(None, []).insert(0, _guard)
    app.jinja_env.globals.update(current_user=current_user, can_see=can_see, account_menu=account_menu)
    app.register_blueprint(bp)


def device_message(err: wall_devices.DeviceRefused) -> str:
    """What a wall screen says when its device link or session does not open the wall."""
    device = err.device
    if err.reason == "expired" and device:
        return _("This wall's link expired on %(day)s. Ask an administrator for a new link.",
                 day=device.expires_at[:10])
    if err.reason == "revoked" and device:
        return _("This wall was revoked on %(day)s. Ask an administrator for a new link.",
                 day=(device.revoked_at or "")[:10])
    if err.reason == "used" and device:
        return _("This wall link was used already (%(time)s); each link opens one screen once. "
                 "Ask an administrator for a new link.", time=(device.claimed_at or "")[:16].replace("T", " "))
    if err.reason == "replaced":
        return _("This wall's login was replaced by a newer link. Open the new link on this screen.")
    if err.reason == "idle":
        return _("This wall was off for too long and was signed out. Ask an administrator for a new link.")
    return _("This wall link is not valid. Ask an administrator for a new link.")
