"""Serve every script and stylesheet of a Folium map from our own Flask app.

Folium and branca link Leaflet and its plugins from public CDNs, which a
government intranet cannot reach. This module rewrites those links to
``<static_url>/<package>/<file>?v=<version>`` and serves the files from
``web/assets/node_modules`` (installed by ``npm ci``, see ``assets.mk``).

Two explicit tables drive it:

* ``RESOURCES``: folium's resource name -> vendor path (or ``None`` = drop it);
* ``VENDOR_FILES``: vendor path -> file on disk; the only files we serve.

A CDN link whose name is not in ``RESOURCES`` raises ``UnknownCdnResource``,
so a folium upgrade that adds a new CDN file fails loudly in the tests instead
of silently going online. Tile layers are not touched: their URL is the map
author's choice (an intranet tile server, or ``tiles=None``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink
from flask import Blueprint, Flask, abort, send_file
from folium.elements import JSCSSMixin

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
NODE_MODULES = ASSETS_DIR / "node_modules"
FOLIUM_DIR = Path(folium.__file__).resolve().parent

DEFAULT_STATIC_URL = "/static/vendor"

# Vendor path (URL under static_url) -> file on disk. Leaflet's CSS loads its
# images relative to itself, so they sit under leaflet/images/ as on the CDN.
# Source maps are listed only so that an open devtools panel gets no 404s.
VENDOR_FILES = {
    "leaflet/leaflet.js": NODE_MODULES / "leaflet/dist/leaflet.js",
    "leaflet/leaflet.js.map": NODE_MODULES / "leaflet/dist/leaflet.js.map",
    "leaflet/leaflet.css": NODE_MODULES / "leaflet/dist/leaflet.css",
    **{
        f"leaflet/images/{name}": NODE_MODULES / "leaflet/dist/images" / name
        for name in (
            "layers.png",
            "layers-2x.png",
            "marker-icon.png",
            "marker-icon-2x.png",
            "marker-shadow.png",
        )
    },
    "leaflet.markercluster/leaflet.markercluster.js": NODE_MODULES
    / "leaflet.markercluster/dist/leaflet.markercluster.js",
    "leaflet.markercluster/leaflet.markercluster.js.map": NODE_MODULES
    / "leaflet.markercluster/dist/leaflet.markercluster.js.map",
    "leaflet.markercluster/MarkerCluster.css": NODE_MODULES
    / "leaflet.markercluster/dist/MarkerCluster.css",
    "leaflet.markercluster/MarkerCluster.Default.css": NODE_MODULES
    / "leaflet.markercluster/dist/MarkerCluster.Default.css",
    "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.js": NODE_MODULES
    / "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.js",
    "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.js.map": NODE_MODULES
    / "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.js.map",
    "jquery/jquery.min.js": NODE_MODULES / "jquery/dist/jquery.min.js",
    # d3 v3 keeps its build at the package root, not in dist/.
    "d3/d3.min.js": NODE_MODULES / "d3/d3.min.js",
    # folium's HeatMap needs folium's own patched Leaflet.heat (weights are
    # normalised to the densest cell; npm's leaflet.heat@0.2.0 clips every
    # weight at 1, so count-weighted heat maps would saturate). The folium
    # CDN URL points at this very file, which pip installs with folium.
    "folium/leaflet_heat.min.js": FOLIUM_DIR / "templates/leaflet_heat.min.js",
}

# folium/branca resource name -> vendor path; None drops the resource.
RESOURCES: dict[str, Optional[str]] = {
    # folium.Map
    "leaflet": "leaflet/leaflet.js",
    "leaflet_css": "leaflet/leaflet.css",
    "jquery": "jquery/jquery.min.js",  # folium.Popup and keep_in_front call $()
    # Nothing we use needs Bootstrap; Awesome Markers (folium.Icon) would also
    # need glyphicon/Font Awesome fonts, so localize() refuses folium.Icon.
    "bootstrap": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers": None,
    "awesome_markers_css": None,
    "awesome_markers_font_css": None,
    "awesome_rotate_css": None,
    # plugins.MarkerCluster and FastMarkerCluster
    "markerclusterjs": "leaflet.markercluster/leaflet.markercluster.js",
    "markerclustercss": "leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/MarkerCluster.Default.css",
    # plugins.HeatMap
    "leaflet-heat.js": "folium/leaflet_heat.min.js",
    # plugins.VectorGridProtobuf
    "vectorGrid": "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.js",
    # branca colormaps (legends), added by their render() under this name
    "d3": "d3/d3.min.js",
}

# A FastMarkerCluster callback that draws Leaflet's default marker; folium's
# default callback uses L.AwesomeMarkers, which we do not ship.
PLAIN_MARKER_CALLBACK = (
    "function (row) { return L.marker(new L.LatLng(row[0], row[1])); }"
)

ONE_YEAR = 365 * 24 * 3600


class UnknownCdnResource(RuntimeError):
    """A Folium element links a CDN file that has no local copy."""


class UnsupportedOffline(RuntimeError):
    """A Folium feature needs files that we deliberately do not ship."""


def localize(m: folium.Map, static_url: str = DEFAULT_STATIC_URL) -> folium.Map:
    """Point every script and stylesheet of ``m`` at ``static_url``; return ``m``.

    Walks the whole element tree from the map's Figure and replaces each
    element's ``default_js``/``default_css`` with local URLs (or drops them,
    per ``RESOURCES``). Links that elements add to the Figure header while
    rendering (branca's colormap adds d3 that way), or elements added after
    this call, are rewritten when the header renders.

    Raises ``UnknownCdnResource`` for a CDN link that is not in ``RESOURCES``
    and ``UnsupportedOffline`` for features that need Awesome Markers.
    """
    figure = m.get_root()
    if not isinstance(figure, Figure):
        raise TypeError("localize() needs a map that sits in a branca Figure")
    base = static_url.rstrip("/")
    for element in _walk(figure):
        _refuse_awesome_markers(element)
        if isinstance(element, JSCSSMixin):
            # Instance attributes on purpose: the class-level lists are shared
            # by every map in the process and must keep folium's defaults.
            element.default_js = _local_links(element.default_js, base)
            element.default_css = _local_links(element.default_css, base)
    if isinstance(figure.header, _LocalHeader):
        figure.header.base = base
    else:
        figure.header = _LocalHeader(figure.header, base)
    return m


def vendor_url(path: str, static_url: str = DEFAULT_STATIC_URL) -> str:
    """URL of a ``VENDOR_FILES`` entry, with its package version for cache busting."""
    if path not in VENDOR_FILES:
        raise KeyError(f"{path!r} is not in offline_assets.VENDOR_FILES")
    return f"{static_url.rstrip('/')}/{path}?v={_package_version(path.split('/')[0])}"


def missing_vendor_files() -> List[Path]:
    """The whitelisted files that are not on disk (empty once ``npm ci`` ran)."""
    return [path for path in VENDOR_FILES.values() if not path.is_file()]


def register_vendor_static(app: Flask, static_url: str = DEFAULT_STATIC_URL) -> None:
    """Serve ``VENDOR_FILES`` at ``<static_url>/<vendor path>`` on ``app``.

    Only whitelisted paths are served: an exact dictionary lookup, so there
    is no directory listing and no path traversal. Responses are cacheable
    for a year; ``localize()`` adds ``?v=<version>`` so an upgrade changes
    the URL. Raises ``RuntimeError`` at start-up when the files are missing,
    rather than serving maps that break later.
    """
    missing = missing_vendor_files()
    if missing:
        raise RuntimeError(
            f"{len(missing)} front-end files are missing, e.g. {missing[0]}. "
            "Install them with `make web/assets/node_modules/.installed` "
            "(runs npm ci in web/assets)."
        )
    blueprint = Blueprint("vendor_static", __name__)

    @blueprint.get(f"{static_url.rstrip('/')}/<path:path>")
    def vendor_file(path: str):
        file = VENDOR_FILES.get(path)
        if file is None:
            abort(404)
        response = send_file(file, max_age=ONE_YEAR, conditional=True)
        response.cache_control.public = True
        response.cache_control.immutable = True
        return response

    app.register_blueprint(blueprint)


class _LocalHeader(Element):
    """A Figure header that rewrites CDN links just before it renders.

    The header renders after every element of the Figure has rendered, so it
    also catches links added at render time, which a tree walk cannot see.
    """

    def __init__(self, header: Element, base: str):
        super().__init__()
        self.base = base
        for name, child in header._children.items():
            self.add_child(child, name=name)
        self._parent = header._parent

    def render(self, **kwargs) -> str:
        for name, child in list(self._children.items()):
            if isinstance(child, (JavascriptLink, CssLink)) and _is_remote(child.url):
                del self._children[name]
                path = _vendor_path(name, child.url)
                if path is not None:
                    self.add_child(type(child)(vendor_url(path, self.base)), name=name)
        return super().render(**kwargs)


def _walk(element: Element) -> Iterator[Element]:
    """element and all its descendants, including Figure/Popup/Div header, html, script."""
    yield element
    children = list(element._children.values())
    children += [
        getattr(element, part)
        for part in ("header", "html", "script")
        if isinstance(getattr(element, part, None), Element)
    ]
    for child in children:
        yield from _walk(child)


def _local_links(links: List[Tuple[str, str]], base: str) -> List[Tuple[str, str]]:
    """(name, url) pairs with CDN URLs replaced by local ones, dropped ones removed."""
    local = []
    for name, url in links:
        if not _is_remote(url):  # already local (e.g. localize() ran twice)
            local.append((name, url))
        elif (path := _vendor_path(name, url)) is not None:
            local.append((name, vendor_url(path, base)))
    return local


def _vendor_path(name: str, url: str) -> Optional[str]:
    if name not in RESOURCES:
        raise UnknownCdnResource(
            f"Folium links {name!r} from a CDN ({url}), which an offline intranet "
            "cannot load. Add the file to web/assets/package.json and to "
            "RESOURCES/VENDOR_FILES in web/offline_assets.py (or map it to None "
            "if nothing we use needs it)."
        )
    return RESOURCES[name]


def _refuse_awesome_markers(element: Element) -> None:
    """Fail for features whose JavaScript calls L.AwesomeMarkers."""
    marker_icon = getattr(getattr(element, "marker", None), "icon", None)  # GeoJson(marker=...)
    if _is_awesome_icon(element) or _is_awesome_icon(marker_icon):
        raise UnsupportedOffline(
            "folium.Icon needs Awesome Markers, Bootstrap glyphicons and Font "
            "Awesome, which the offline build does not ship; use Leaflet's "
            "default marker, folium.CustomIcon, folium.DivIcon or a CircleMarker."
        )
    if "L.AwesomeMarkers" in str(getattr(element, "callback", "")):
        raise UnsupportedOffline(
            "FastMarkerCluster's default callback uses Awesome Markers, which the "
            "offline build does not ship; pass "
            "callback=offline_assets.PLAIN_MARKER_CALLBACK or your own."
        )


def _is_awesome_icon(element: object) -> bool:
    # CustomIcon subclasses Icon but draws with plain L.icon.
    return isinstance(element, folium.Icon) and element._name == "Icon"


def _is_remote(url: str) -> bool:
    return url.startswith(("http://", "https://", "//"))


@lru_cache(maxsize=None)
def _package_version(package: str) -> str:
    """Version of a vendor package, from the committed lock file or pip."""
    if package == "folium":
        return dist_version("folium")
    lock = json.loads((ASSETS_DIR / "package-lock.json").read_text(encoding="utf-8"))
    return lock["packages"][f"node_modules/{package}"]["version"]
