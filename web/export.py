"""``/export/<area_code>.<png|pdf|svg>``: the current map view as a print-ready file.

Takes the map's own query parameters (``metric``, ``from``, ``to``, ``method``, ``k``,
``level``, ``lang``) plus ``paper`` (a4, a3), ``orientation`` (portrait, landscape; default:
whichever shows the area larger) and ``dpi`` (150, 300; PNG only). The map page's
"导出图片" button links here with its own query string. Bad parameters raise
``geo.errors.BadParameter`` (400), an unknown area ``AreaNotFound`` (404).
"""

from __future__ import annotations

import io

from flask import Blueprint, request, send_file

from geo.export.exporter import parse_options, render_export

from . import service
from .auth import area_scoped, audited
from .i18n import select_locale

bp = Blueprint("export", __name__)


@bp.get("/export/<area_code>.<fmt>")
@area_scoped("area_code", permission="export")
@audited("export", "area_code")
def export_map(area_code: str, fmt: str):
    """Render the map of ``area_code`` as a PNG, PDF or SVG download."""
    args = request.args.to_dict()
    if not args.get("lang"):
        # No explicit language: the one the official reads the site in (cookie), Chinese by default.
        args["lang"] = "en" if select_locale() == "en" else "zh"
    result = render_export(service(), parse_options(area_code, fmt, args))
    response = send_file(io.BytesIO(result.data), mimetype=result.mimetype, as_attachment=True,
                         download_name=result.filename, max_age=0)
    response.cache_control.no_cache = True
    return response
