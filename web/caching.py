"""Cache headers: ETags that change when the data change, and long-lived versioned assets.

Pages and JSON answers get a weak ETag built from the store version (every import bumps it),
the stamp of the areas file (a boundary update replaces it), a token of this server process
(a restart may bring new code), the language and the full URL, and ``Cache-Control: no-cache``: the browser keeps the answer but asks
each time, and a 304 comes back without any work while nothing changed. Flask-Compress
compresses the bodies; weak tags stay valid across encodings.

Our own static files are linked as ``/static/<file>?v=<content hash>`` and cached for a year.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from functools import lru_cache, wraps
from pathlib import Path

from flask import Flask, Response, current_app, make_response, request, url_for

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


def revalidated(view):
    """Decorator: answer 304 when the client's ETag still matches, else tag the fresh answer."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        tag = _etag()
        if request.if_none_match.contains_weak(tag):
            response = Response(status=304)
        else:
            response = make_response(view(*args, **kwargs))
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


def init_app(app: Flask) -> None:
    """Give the app its process token and the cache headers of static files."""
    app.config["GRIDATLAS_PROCESS_TOKEN"] = secrets.token_hex(4)
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
