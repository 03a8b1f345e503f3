"""The core never imports Flask: the CLI, the wall and the exporter must run without it."""

import pkgutil
import subprocess
import sys

import geo
from geo.settings import PROJECT_ROOT


def test_geo_does_not_import_flask():
    modules = [m.name for m in pkgutil.walk_packages(geo.__path__, "geo.") if m.name != "geo.__main__"]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'flask' or m.startswith('flask.') or m.startswith('flask_'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"geo imports {out.stdout.strip()}"
    assert len(modules) > 10
