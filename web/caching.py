"""Caching: ETags that change when the data change, warm answers served from memory, and
long-lived versioned assets.

Pages and JSON answers get a weak ETag built from the store version (every import bumps it),
the stamp of the areas file (a boundary update replaces it), a token of this server process
(a restart may bring new code), the language and the full URL, and ``Cache-Control: no-cache``: the browser keeps the answer but asks
each time, and a 304 comes back without any work while nothing changed. Flask-Compress
compresses the bodies; weak tags stay valid across encodings.

The ETag also names the answer on the server: the JSON and GeoJSON answers (not the HTML
pages, which carry a per-request CSP nonce) are kept in a per-process LRU of at most
``GRIDATLAS_RESPONSE_CACHE_MB``, under that tag, with their compressed forms (Flask-Compress's
cache hook). A warm request is then two lookups; the first request after an import computes
afresh because the tag holds the store version.

Warm answers are also *replayed* (:class:`Replay`, a WSGI middleware in front of Flask): a
GET whose host, path, query, cookies and accepted encodings are byte for byte those of an earlier
request that a person's session got a 200 for from a ``revalidated`` view is answered with that
earlier answer's status, headers and (compressed) body, without Flask's request handling, as
long as nothing the answer depended on has changed: the store version and the areas file (the
data tag), and the person's session as the guard sees it (not past ``session_hours``, the
signature not too old, the user still there with the same role, area and password:
:func:`web.auth.still_signed_in`). Anything else (a conditional or ranged request, a wall
device, a test user, an answer that set a cookie, a view wrapped by anything but access rules)
goes through Flask. A warm JSON answer then costs two small store reads.

Our own static files are linked as ``/static/<file>?v=<content hash>`` and cached for a year.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from functools import lru_cache, wraps
from pathlib import Path

from cachetools import LRUCache
from flask import Flask, Response, current_app, g, make_response, request, url_for

from geo.atlas.areas import areas_file

from . import service
from .auth import cache_identity, replay_principal, still_signed_in
from .i18n import select_locale

ONE_YEAR = 365 * 24 * 3600
STATIC_DIR = Path(__file__).resolve().parent / "static"


def data_state(svc, areas_path: str) -> tuple[int, str]:
    """(store version, stamp of the areas file at ``areas_path``): what changes when the data change."""
    try:
        st = os.stat(areas_path)
        areas = f"{st.st_mtime_ns}-{st.st_size}"
    except OSError:
        areas = "none"
    return svc.store.version(), areas


def data_tag() -> str:
    """What the answers depend on besides the URL: the store version, the areas file (a
    boundary update replaces it), this process and the language."""
    version, areas = g.data_state = data_state(service(), current_app.config["GRIDATLAS_AREAS_FILE"])
    return f"{version}.{areas}.{current_app.config['GRIDATLAS_PROCESS_TOKEN']}.{select_locale()}"


def _etag() -> str:
    # The user too: the same URL lists other areas for another jurisdiction (web/auth.py).
    key = f"{data_tag()}|{request.full_path}|{request.cookies.get('lang', '')}|{cache_identity()}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:24]


class ResponseCache:
    """A thread-safe LRU of answer bodies, bounded by their total size in bytes.

    Also the backend of Flask-Compress's cache: it stores compressed bodies under
    ``"<algorithm>;<key>"``, and an empty key (an answer that must not be kept) is ignored."""

    def __init__(self, max_bytes: int):
        self._lru = LRUCache(maxsize=max_bytes, getsizeof=lambda v: len(v[0]) if isinstance(v, tuple) else len(v))
        self._lock = threading.Lock()

    def get(self, key: str):
        """The value kept under ``key``, or None."""
        if key.endswith(";"):
            return None
        with self._lock:
            return self._lru.get(key)

    def set(self, key: str, value) -> None:
        """Keep ``value`` (bytes, or a (bytes, mimetype) pair); too big a value is not kept."""
        size = len(value[0]) if isinstance(value, tuple) else len(value)
        if key.endswith(";") or size > self._lru.maxsize // 4:
            return
        with self._lock:
            self._lru[key] = value


def _cache() -> ResponseCache:
    return current_app.extensions["gridatlas_responses"]


def _keepable(response: Response) -> bool:
    # Only plain data answers: an HTML page holds its request's CSP nonce, and an answer with
    # headers of its own (a download name, a cookie) is not just a body.
    own = {k.lower() for k in response.headers.keys()} - {"content-type", "content-length"}
    return (response.status_code == 200 and not response.is_streamed and not own
            and response.mimetype != "text/html")


def revalidated(view):
    """Decorator: answer 304 when the client's ETag still matches, else tag the fresh answer
    (from the server's cache when this tag was answered before)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        tag = _etag()
        if request.if_none_match.contains_weak(tag):
            response = Response(status=304)
        else:
            kept = _cache().get("body;" + tag)
            if kept is not None:
                response, keep = Response(kept[0], mimetype=kept[1]), True
            else:
                response = make_response(view(*args, **kwargs))
                keep = _keepable(response)
                if keep:
                    _cache().set("body;" + tag, (response.get_data(), response.mimetype))
            if keep:
                g.compress_cache_key = tag  # Flask-Compress keeps the compressed body too
                # Nothing but access rules around this view (they return it as it is): the
                # guard and this wrapper are then all a replay skips.
                who = replay_principal()
                if who is not None and current_app.view_functions.get(request.endpoint) is wrapper:
                    request.environ[REPLAY_ENVIRON] = (g.data_state, who)
        _revalidate_headers(response, tag)
        return response

    return wrapper


def _revalidate_headers(response: Response, tag: str) -> None:
    """The weak ETag, ``Cache-Control: no-cache`` and ``Vary: Cookie`` (the language and the
    user may come from cookies); plain header writes when the view set none of them."""
    h = response.headers
    h["ETag"] = f'W/"{tag}"'
    if "Cache-Control" in h:
        response.cache_control.no_cache = True
    else:
        h["Cache-Control"] = "no-cache"
    if "Vary" in h:
        response.vary.add("Cookie")
    else:
        h["Vary"] = "Cookie"


REPLAY_ENVIRON = "gridatlas.replayable"
# Request headers that make an answer differ (besides the path): never replayed across them.
_REPLAY_KEY = ("HTTP_HOST", "wsgi.url_scheme", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "HTTP_COOKIE",
               "HTTP_ACCEPT_ENCODING", "HTTP_ACCEPT")
# Requests that Flask answers each time: conditional, ranged or not a plain GET.
_NOT_REPLAYED = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_RANGE", "HTTP_IF_RANGE")


class Replay:
    """WSGI middleware: replay a warm answer to the same request from the same person's
    session while the data and the session are unchanged (see the module docstring)."""

    def __init__(self, app: Flask, max_bytes: int):
        self.app = app
        self.wsgi_app = app.wsgi_app
        self.areas_path = app.config["GRIDATLAS_AREAS_FILE"]
        self.answers = ResponseCache(max_bytes)
        self.replayed = 0  # answers given without Flask (for tests and benchmarks)

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "GET" or "HTTP_COOKIE" not in environ or any(
                h in environ for h in _NOT_REPLAYED):
            return self.wsgi_app(environ, start_response)
        key = "replay\0" + "\0".join(str(environ.get(k, "")) for k in _REPLAY_KEY) + "\0."
        kept = self.answers.get(key)
        if kept is not None:
            body, state, who, status, headers = kept
            svc = self.app.extensions["gridatlas"]
            if data_state(svc, self.areas_path) == state and still_signed_in(self.app, who):
                self.replayed += 1
                start_response(status, list(headers))
                return [body]
        return self._answer_and_keep(key, environ, start_response)

    def _answer_and_keep(self, key: str, environ, start_response):
        sent = []

        def keep_start(status, headers, exc_info=None):
            sent.append((status, headers))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        chunks = self.wsgi_app(environ, keep_start)
        replayable = environ.get(REPLAY_ENVIRON)
        if replayable is None or not sent or not sent[0][0].startswith("200 ") or any(
                name.lower() == "set-cookie" for name, _ in sent[0][1]):
            return chunks
        try:
            body = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        state, who = replayable
        self.answers.set(key, (body, state, who, sent[0][0], tuple(sent[0][1])))
        return [body]


def replay_of(app: Flask) -> Replay | None:
    """The app's replay middleware (None when it has none)."""
    return app.extensions.get("gridatlas_replay")


def json_response(obj, mimetype: str = "application/json") -> Response:
    """A compact UTF-8 JSON response (GeoJSON uses ``application/geo+json``)."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(body, mimetype=mimetype)


@lru_cache(maxsize=None)
def _content_hash(path: Path, mtime_ns: int) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


def static_url(filename: str) -> str:
    """URL of one of our static files, versioned by its content."""
    path = STATIC_DIR / filename
    return url_for("static", filename=filename, v=_content_hash(path, path.stat().st_mtime_ns))


def service_of(app: Flask):
    """The AtlasService of ``app`` (outside a request)."""
    return app.extensions["gridatlas"]


def compress_cache(app: Flask) -> ResponseCache:
    """The cache Flask-Compress keeps compressed answers in (the same LRU as the bodies)."""
    return app.extensions.setdefault(
        "gridatlas_responses", ResponseCache(int(service_of(app).settings.response_cache_mb * 1024 * 1024)))


def compress_cache_key(req) -> str:
    """The key of this answer's compressed body: its ETag, or "" when it must not be kept."""
    return g.get("compress_cache_key", "")


def init_app(app: Flask) -> None:
    """Give the app its process token, the answers' cache and the cache headers of static files."""
    app.config["GRIDATLAS_PROCESS_TOKEN"] = secrets.token_hex(4)
    app.config["GRIDATLAS_AREAS_FILE"] = str(areas_file(service_of(app).settings.demo_dir))
    compress_cache(app)
    # A quarter of the answers' budget for replayed answers (mostly compressed bodies).
    replay = Replay(app, int(service_of(app).settings.response_cache_mb * 1024 * 1024) // 4)
    app.extensions["gridatlas_replay"] = replay
    app.wsgi_app = replay
    app.jinja_env.globals["static_url"] = static_url

    @app.after_request
    def _static_headers(response: Response) -> Response:
        if request.endpoint == "static" and response.status_code == 200:
            if "v" in request.args:  # the URL changes with the content: cache for good
                response.cache_control.max_age = ONE_YEAR
                response.cache_control.public = True
                response.cache_control.immutable = True
            else:
                response.cache_control.no_cache = True
        return response
