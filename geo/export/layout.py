"""Page geometry of an exported map: paper sizes and where the title, map, panel and footer go.

Everything is in millimetres from the bottom-left corner of the page, the unit a report
writer thinks in; :meth:`Box.rect` turns a box into the figure fractions matplotlib wants.
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.errors import BadParameter

# ISO 216 sizes, portrait (width, height) in mm.
PAPERS = {"a4": (210.0, 297.0), "a3": (297.0, 420.0)}
ORIENTATIONS = ("portrait", "landscape")
MM_PER_INCH = 25.4


@dataclass(frozen=True)
class Box:
    """A rectangle on the page in mm: lower-left corner (x, y), width w and height h."""

    x: float
    y: float
    w: float
    h: float

    def rect(self, page_w: float, page_h: float) -> tuple[float, float, float, float]:
        """The box as figure fractions (left, bottom, width, height)."""
        return (self.x / page_w, self.y / page_h, self.w / page_w, self.h / page_h)

    def split(self, fractions, vertical: bool = False, gap: float = 0.0) -> list["Box"]:
        """Cut the box side by side (or top to bottom when ``vertical``) in the given proportions."""
        total = sum(fractions)
        span = (self.h if vertical else self.w) - gap * (len(fractions) - 1)
        out, pos = [], (self.y + self.h if vertical else self.x)
        for f in fractions:
            size = span * f / total
            if vertical:
                pos -= size
                out.append(Box(self.x, pos, self.w, size))
                pos -= gap
            else:
                out.append(Box(pos, self.y, size, self.h))
                pos += size + gap
        return out


@dataclass(frozen=True)
class PageLayout:
    """The boxes of one page. ``scale`` grows type and furniture on larger paper."""

    paper: str
    orientation: str
    width: float
    height: float
    scale: float
    title: Box
    map: Box
    panel: Box
    footer: Box

    @property
    def size_inches(self) -> tuple[float, float]:
        """The figure size matplotlib needs."""
        return (self.width / MM_PER_INCH, self.height / MM_PER_INCH)

    def pixels(self, dpi: int) -> tuple[int, int]:
        """Width and height in pixels of a raster export at ``dpi``."""
        return (round(self.width / MM_PER_INCH * dpi), round(self.height / MM_PER_INCH * dpi))

    def font(self, points: float) -> float:
        """A type size in points, scaled for the paper."""
        return points * self.scale


def paper_size(paper: str, orientation: str) -> tuple[float, float]:
    """Page width and height in mm; BadParameter for anything but a4/a3 and portrait/landscape."""
    if paper not in PAPERS:
        raise BadParameter(f"paper {paper!r} is not allowed; allowed: {', '.join(PAPERS)}")
    if orientation not in ORIENTATIONS:
        raise BadParameter(f"orientation {orientation!r} is not allowed; allowed: {', '.join(ORIENTATIONS)}")
    w, h = PAPERS[paper]
    return (w, h) if orientation == "portrait" else (h, w)


def page_layout(paper: str, orientation: str) -> PageLayout:
    """Title on top, footer at the bottom, the map in between with the legend panel below it
    (portrait) or beside it (landscape)."""
    w, h = paper_size(paper, orientation)
    # A3 is A4 enlarged by √2; type grows by less so the larger sheet also shows more map.
    scale = 1.0 if paper == "a4" else 1.2
    margin = 10.0 * scale
    title_h = 19.0 * scale
    footer_h = 8.0 * scale
    gap = 3.0 * scale
    title = Box(margin, h - margin - title_h, w - 2 * margin, title_h)
    footer = Box(margin, margin, w - 2 * margin, footer_h)
    body_bottom = footer.y + footer.h + gap
    body_top = title.y - gap
    if orientation == "portrait":
        panel_h = 44.0 * scale
        panel = Box(margin, body_bottom, w - 2 * margin, panel_h)
        map_box = Box(margin, body_bottom + panel_h + gap, w - 2 * margin, body_top - body_bottom - panel_h - gap)
    else:
        panel_w = 66.0 * scale
        panel = Box(w - margin - panel_w, body_bottom, panel_w, body_top - body_bottom)
        map_box = Box(margin, body_bottom, w - 2 * margin - panel_w - gap, body_top - body_bottom)
    return PageLayout(paper, orientation, w, h, scale, title, map_box, panel, footer)


def best_orientation(paper: str, extent_w: float, extent_h: float) -> str:
    """The orientation whose map frame shows an extent of extent_w × extent_h at the larger scale."""
    best, best_scale = "portrait", -1.0
    for orientation in ORIENTATIONS:
        frame = page_layout(paper, orientation).map
        s = min(frame.w / max(extent_w, 1e-9), frame.h / max(extent_h, 1e-9))
        if s > best_scale * 1.02:  # prefer portrait unless landscape is clearly better
            best, best_scale = orientation, s
    return best
