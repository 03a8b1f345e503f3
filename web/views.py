"""Pages and JSON endpoints. Placeholder status page until the map lands."""

from __future__ import annotations

from flask import jsonify, render_template

from . import service


def register(app) -> None:
    """Add the routes to ``app``."""

    @app.get("/")
    def index():
        return render_template("status.html", status=service().status())

    @app.get("/api/status")
    def api_status():
        return jsonify(service().status())
