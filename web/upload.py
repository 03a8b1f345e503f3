"""Record uploads: the form, the import report and the rejected rows as CSV.

Thin, like every route here: each view parses the form or the URL, calls one ``geo.ingest``
function and renders. Imports are admin work: every view below goes through the one
decorator :func:`admin_only` (the ``import`` permission of web/auth.py).

Bodies over ``settings.max_upload_bytes`` are refused by Werkzeug (``MAX_CONTENT_LENGTH``, set
in ``create_app``) with 413 before anything is read or stored; web/errors.py words the page.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _

from geo.atlas.metrics import METRICS, POINT_METRICS
from geo.errors import BadParameter
from geo.ingest.imports import IngestReport, ingest_upload, load_report, recent_imports, rejects_file

from . import service
from .auth import audited, requires

bp = Blueprint("upload", __name__, url_prefix="/upload")

# (form value, label): what clerks' exports use. "" lets the loader decide (WGS84 for tables,
# the file's own CRS for GeoJSON/GeoPackage/Shapefile).
CRS_CHOICES = (
    ("", "WGS84 / CGCS2000 (EPSG:4326 / 4490)"),
    ("gcj02", "GCJ-02 (高德/腾讯 Amap/Tencent)"),
    ("bd09", "BD-09 (百度 Baidu)"),
    ("EPSG:4549", "CGCS2000 3° Gauss-Krüger CM 120E (EPSG:4549)"),
)
ENCODING_CHOICES = ("", "utf-8", "gbk", "gb18030")


def admin_only(view):
    """The one decorator every upload view goes through: imports are admin work (the role
    check runs in web/auth.py's guard before the view)."""
    return requires("import")(view)


@bp.get("")
@admin_only
def form():
    """The upload form, with the latest imports."""
    return render_template("upload.html", **_form_context())


@bp.post("")
@admin_only
@audited("import")
def submit():
    """Import the uploaded file, then show its report (303 to the report page)."""
    settings = service().settings
    upload = request.files.get("file")  # a body over the limit never gets here: 413 (web/errors.py)
    if upload is None or not upload.filename:
        raise BadParameter("choose a file to upload")
    form = request.form
    report = ingest_upload(
        settings, upload.stream, upload.filename, atlas=service().atlas,
        metric=form.get("metric") or None, crs=form.get("crs") or None, encoding=form.get("encoding") or None,
        mapping=form.get("mapping") or None, layer=form.get("layer") or None,
    )
    return redirect(url_for("upload.report", import_id=report.import_id), code=303)


@bp.get("/<import_id>")
@admin_only
def report(import_id: str):
    """The report of one import."""
    result: IngestReport = load_report(service().settings, import_id)
    return render_template("upload_report.html", report=result, metrics=METRICS, change_labels=_change_labels())


@bp.get("/<import_id>/rejected.csv")
@admin_only
def rejected_csv(import_id: str):
    """The rejected rows of one import, each with its reason (UTF-8 with BOM, opens in Excel)."""
    path = rejects_file(service().settings, import_id)
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=f"{import_id}-rejected.csv",
                     max_age=0)


def _change_labels() -> dict:
    """What changed in a replaced record (geo.ingest's ``change``), in the page's language."""
    return {"date changed": _("date changed"), "position changed": _("position changed"),
            "date and position changed": _("date and position changed")}


def _form_context() -> dict:
    settings = service().settings
    return {
        "metrics": [METRICS[k] for k in POINT_METRICS],
        "crs_choices": CRS_CHOICES,
        "encodings": ENCODING_CHOICES,
        "max_mb": f"{settings.max_upload_bytes / 1024 / 1024:,.0f}",
        "imports": [i for i in recent_imports(settings, limit=20) if i["kind"] == "records"],
    }
