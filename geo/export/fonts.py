"""The CJK font of the exported maps: Noto Sans CJK SC from the ``noto-cjk-sans-otc`` pip package.

Why not hand the Noto file to matplotlib as it is: Noto Sans CJK has PostScript (CFF)
outlines, and matplotlib's PDF backend embeds every font as a TrueType CID font. A CFF font
embedded that way draws in poppler and browsers but is flagged as broken by Acrobat (matplotlib
issue #20870). So the exporter converts the glyphs it needs (ASCII, CJK punctuation and every
character of the atlas's names and labels) to TrueType outlines once, with fontTools, and
caches that small TrueType file on disk. PNG, PDF and SVG then all use the same file.

:func:`font_file` answers "a font file that has these characters"; :func:`missing_glyphs`
checks a text against a font's character map (the exporter warns, the tests fail).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

from geo.errors import DataNotReady

log = logging.getLogger(__name__)

FAMILY = "Noto Sans CJK SC"
# SVG keeps text as text, so the viewer picks the font by name: the family first, then the
# usual Chinese system fonts of Windows, macOS and Linux desktops.
SVG_FAMILIES = [FAMILY, "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", "Noto Sans SC",
                "WenQuanYi Micro Hei", "sans-serif"]
# Debian's fonts-noto-cjk has the same collection; used only when the pip package is absent.
SYSTEM_COLLECTION = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
# Always in the converted font, so that numbers, dates and punctuation never need a new file.
BASE_CHARS = (
    "".join(chr(c) for c in range(0x20, 0x7F))
    + "–—‘’“”…·×°±²³←↑→↓▲△■□●○"
    + "、。，．：；？！（）《》〈〉【】「」『』〔〕～·—－　％＋／＜＞＝"
    + "零一二三四五六七八九十百千万亿年月日至共天合计最高低均值数据来源更新导出时间坐标系比例尺北单位无分级按统计级"
)
_KEEP_FILES = 8  # converted fonts kept in the cache folder (one per distinct character set)
_lock = threading.Lock()


def collection_path() -> tuple[Path, int]:
    """The Noto Sans CJK collection and the index of its Simplified Chinese face."""
    try:
        import noto_cjk_sans_otc

        path = Path(str(noto_cjk_sans_otc.FONT_PATH))
    except ImportError:
        path = SYSTEM_COLLECTION
    if not path.is_file():
        raise DataNotReady(
            "no CJK font: install the project's requirements (pip package noto-cjk-sans-otc)"
        )
    return path, _sc_face_index(str(path))


@lru_cache(maxsize=4)
def _sc_face_index(path: str) -> int:
    from fontTools.ttLib import TTCollection

    collection = TTCollection(path, lazy=True)
    for i, face in enumerate(collection.fonts):
        if face["name"].getDebugName(1) == FAMILY:
            return i
    raise DataNotReady(f"{path} has no {FAMILY!r} face")


def default_cache_dir() -> Path:
    """Where converted fonts live when the caller names no folder."""
    return Path(tempfile.gettempdir()) / "gridatlas-fonts"


def font_file(chars: str, cache_dir: Path | None = None) -> Path:
    """A TrueType file of Noto Sans CJK SC that has every character of ``chars`` (and BASE_CHARS).

    Built on first use (a second or two) and cached in ``cache_dir`` under a name derived from
    the character set, so every later export and every worker process reuses it.
    """
    wanted = "".join(sorted(set(BASE_CHARS) | set(chars) - set("\n\r\t")))
    source, face = collection_path()
    key = hashlib.sha1(f"{source.stat().st_size}:{face}:{wanted}".encode()).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    target = folder / f"NotoSansCJKsc-Regular-{key}.ttf"
    if target.is_file():
        return target
    with _lock:
        if target.is_file():
            return target
        folder.mkdir(parents=True, exist_ok=True)
        font = _truetype_subset(source, face, wanted)
        # Write then rename: a second process that races us sees either nothing or a whole file.
        fd, tmp = tempfile.mkstemp(suffix=".ttf", dir=folder)
        os.close(fd)
        try:
            font.save(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; other server processes read it too
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _prune(folder, keep=target)
        log.info("converted %d characters of %s to %s", len(wanted), source.name, target)
    return target


def _truetype_subset(source: Path, face: int, chars: str):
    """The glyphs of ``chars`` from one CFF face, as a TrueType (glyf) font."""
    from fontTools import subset
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    font = TTFont(str(source), fontNumber=face, lazy=False)
    options = subset.Options()
    # matplotlib shapes no OpenType features, so none are kept (fewer glyphs, smaller file).
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.desubroutinize = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=chars)
    subsetter.subset(font)

    order = font.getGlyphOrder()
    glyphs = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyphs)
        # Cubic to quadratic within 1 unit of the 1000-unit em: invisible at any print size.
        glyphs[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyf[name] = pen.glyph()
    font["glyf"] = glyf
    font["loca"] = newTable("loca")
    maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                 "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    font["maxp"] = maxp
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    font["head"].glyphDataFormat = 0
    for tag in ("CFF ", "VORG"):
        if tag in font:
            del font[tag]
    font.sfntVersion = "\x00\x01\x00\x00"
    return font


def _prune(folder: Path, keep: Path) -> None:
    files = sorted(folder.glob("NotoSansCJKsc-Regular-*.ttf"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[_KEEP_FILES:]:
        if old != keep:
            old.unlink(missing_ok=True)


@lru_cache(maxsize=16)
def _cmap(path: str, face: int) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    font = TTFont(path, fontNumber=face, lazy=True) if path.lower().endswith((".ttc", ".otc")) else TTFont(path, lazy=True)
    return frozenset(font.getBestCmap())


def missing_glyphs(text: str, path: str | os.PathLike, face: int = 0) -> set[str]:
    """The characters of ``text`` (whitespace aside) that the font at ``path`` has no glyph for."""
    cmap = _cmap(str(path), face)
    return {c for c in text if not c.isspace() and ord(c) not in cmap}
