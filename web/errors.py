"""The one place where domain errors become HTTP responses.

Every ``geo.errors.GridAtlasError`` carries its status; this maps it to a JSON body for API
requests and an HTML page for the rest. The core writes its messages in English, naming the
bad value and what is allowed; :func:`localize` re-words the known ones in the language of
the request (zh_CN by default), keeping the values. An unknown message passes unchanged.
"""

from __future__ import annotations

import re

from flask import current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

from geo.errors import GridAtlasError

from .i18n import LEVEL_NAMES

# (pattern of a core message, its wording for the user). Patterns match the whole message.
MESSAGES = [
    # Access control (geo.scope, web.auth)
    (r"area (?P<value>.+) is outside the jurisdiction of (?P<who>.+)",
     _l("The area %(value)s is outside your jurisdiction %(who)s.")),
    (r"this page covers the whole city, outside the jurisdiction of (?P<who>.+)",
     _l("This page covers the whole city, outside your jurisdiction %(who)s.")),
    (r"role (?P<role>\S+) may not (?P<what>.+); ask an administrator",
     _l("Your role %(role)s may not do this; ask an administrator.")),
    (r"unknown metric (?P<value>.+); allowed: (?P<allowed>.+)",
     _l("Unknown metric %(value)s. Allowed: %(allowed)s.")),
    (r"(?P<name>from|to|date) (?P<value>.+) is not an ISO date \(YYYY-MM-DD\)",
     _l("The date %(name)s=%(value)s is not a date in the form YYYY-MM-DD.")),
    (r"from (?P<start>\S+) is after to (?P<end>\S+)",
     _l("The start date %(start)s is after the end date %(end)s.")),
    (r"period (?P<start>\S+)\.\.(?P<end>\S+) is outside the data period (?P<first>\S+)\.\.(?P<last>\S+)",
     _l("The period %(start)s to %(end)s is outside the data period %(first)s to %(last)s.")),
    (r"unknown classification (?P<value>.+); allowed: (?P<allowed>.+)",
     _l("Unknown classification method %(value)s. Allowed: %(allowed)s.")),
    (r"number of classes (?P<value>.+) must be between 3 and 7",
     _l("The number of classes %(value)s must be between 3 and 7.")),
    (r"no area with code (?P<value>.+)",
     _l("No area has the code %(value)s.")),
    (r"zoom (?P<value>.+) must be a whole number from 0 to (?P<max>\d+)",
     _l("Zoom %(value)s must be a whole number from 0 to %(max)s.")),
    (r"unknown coordinate system (?P<value>.+); allowed: (?P<allowed>.+)",
     _l("Unknown coordinate system %(value)s. Allowed: %(allowed)s.")),
    (r"level (?P<value>.+) cannot be shown inside a (?P<level>\w+); allowed: (?P<allowed>.+)",
     _l("Level %(value)s cannot be shown inside this area (%(level)s). Allowed: %(allowed)s.")),
    (r"unknown level (?P<value>.+); allowed: (?P<allowed>.+)",
     _l("Unknown level %(value)s. Allowed: %(allowed)s.")),
    (r"level (?P<value>.+) is above the (?P<level>\w+) (?P<code>\d+)",
     _l("Level %(value)s is above the area %(code)s (%(level)s).")),
    (r"search text q is empty",
     _l("Enter a name or a code to search for (parameter q).")),
    (r"search text q has (?P<n>\d+) characters; at most (?P<max>\d+) are allowed",
     _l("The search text has %(n)s characters; at most %(max)s are allowed.")),
    (r"limit (?P<value>.+) must be a whole number from 1 to (?P<max>\d+)",
     _l("The limit %(value)s must be a whole number from 1 to %(max)s.")),
    (r"(?P<name>\w+) (?P<value>.+) is not a whole number",
     _l("The parameter %(name)s=%(value)s is not a whole number.")),
    (r"unknown language (?P<value>.+); allowed: (?P<allowed>.+)",
     _l("Unknown language %(value)s. Allowed: %(allowed)s.")),
]
_COMPILED = [(re.compile(pattern), wording) for pattern, wording in MESSAGES]

TITLES = {
    400: _l("The request is not valid"),
    401: _l("Please sign in"),
    403: _l("Access denied"),
    429: _l("Too many attempts"),
    404: _l("Not found"),
    405: _l("Method not allowed"),
    413: _l("The upload is too large"),
    422: _l("The file cannot be read"),
    503: _l("The data are not ready"),
}


def localize(message: str) -> str:
    """The core's English ``message`` in the language of the current request."""
    for pattern, wording in _COMPILED:
        match = pattern.fullmatch(message)
        if match:
            values = match.groupdict()
            if values.get("level") in LEVEL_NAMES:
                values["level"] = str(LEVEL_NAMES[values["level"]])
            return str(wording) % values
    return message


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _answer(status: int, message: str):
    if _wants_json():
        return jsonify(error=message, status=status), status
    title = str(TITLES.get(status, _("Error")))
    return render_template("error.html", status=status, title=title, message=message), status


def register(app) -> None:
    """Install the error handlers on ``app``."""

    @app.errorhandler(GridAtlasError)
    def _domain_error(err: GridAtlasError):
        return _answer(err.http_status, localize(str(err)))

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        if err.code is None or err.code < 400:
            return err
        if err.code == 404:
            message = _("There is no page at %(path)s.", path=request.path)
        elif err.code == 413:
            # Raised by Werkzeug before any view runs; say what the limit is and that nothing was stored.
            limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
            message = _("The file is larger than the upload limit of %(mb)s MB, so nothing was imported. "
                        "Split it into smaller files, or zip a Shapefile.", mb=f"{limit / 1024 / 1024:,.0f}")
        elif err.code == 405:
            message = _("The method %(method)s is not allowed here.", method=request.method)
        else:
            message = err.description or ""
        return _answer(err.code, message)
