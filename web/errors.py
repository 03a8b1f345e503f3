"""The one place where domain errors become HTTP responses.

Every ``geo.errors.GridAtlasError`` carries its status; this maps it to a JSON body for API
requests and an HTML page for the rest.
"""

from __future__ import annotations

from flask import jsonify, render_template, request

from geo.errors import GridAtlasError


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def register(app) -> None:
    """Install the error handlers on ``app``."""

    @app.errorhandler(GridAtlasError)
    def _domain_error(err: GridAtlasError):
        status = err.http_status
        if _wants_json():
            return jsonify(error=str(err), status=status), status
        return render_template("error.html", status=status, message=str(err)), status
