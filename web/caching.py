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

from geo.areas import areas_file

from . import service
from .auth import cache_identity
from .i18n import select_locale

ONE_YEAR = 365 * 24 * 3600
STATIC_DIR = Path(__file__).resolve().parent / "static"


def data_tag() -> str:
    """What the answers depend on besides the URL: the store version, the areas file (a
    boundary update replaces it), this process and the language."""
    svc = service()
    try:
        st = os.stat(areas_file(svc.settings.demo_dir))
        areas = f"{st.st_mtime_ns}-{st.st_size}"
    except OSError:
        areas = "none"
    return f"{svc.store.version()}.{areas}.{current_app.config['GRIDATLAS_PROCESS_TOKEN']}.{select_locale()}"


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
        response.set_etag(tag, weak=True)
        response.cache_control.no_cache = True
        response.vary.add("Cookie")  # the language may come from the cookie
        return response

    return wrapper


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
    compress_cache(app)
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
