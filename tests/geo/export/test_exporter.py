"""Exported maps: file sizes and formats, a true scale bar, the map's classes in the legend,
every glyph in the font, option checks and the command line."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import shapely
from fontTools.ttLib import TTFont
from matplotlib.colors import to_hex, to_rgba
from matplotlib.text import Text
from PIL import Image
from pypdf import PdfReader
from pyproj import Geod, Transformer

from geo.atlas.metrics import METRICS
from geo.cli.main import main
from geo.errors import AreaNotFound, BadParameter
from geo.export import fonts
from geo.export.exporter import build_figure, export_options, parse_options, render_export
from geo.export.scalebar import nice_length
from geo.query.classify import classify
from geo.query.service import AtlasService
from geo.settings import PROJECT_ROOT
from tests.stores import location_env, use_location

CITY = "330200"
DISTRICT = "330212"  # 鄞州区
TOWN = "330212108"  # 云龙镇, 7 villages
VILLAGE = "330212108001"  # 甲村
SVG_NS = "{http://www.w3.org/2000/svg}"
MM = {"a4": (210, 297), "a3": (297, 420)}


@pytest.fixture(scope="module")
def service(demo_settings):
    return AtlasService(demo_settings)


def _paper_mm(paper, orientation):
    w, h = MM[paper]
    return (w, h) if orientation == "portrait" else (h, w)


def _map_axes(fig):
    return next(ax for ax in fig.axes if ax.get_gid() == "map")


# --- files open with the right size and format ----------------------------------------------

@pytest.mark.parametrize("paper, orientation, dpi", [
    ("a4", "portrait", 150), ("a4", "landscape", 300), ("a3", "portrait", 150), ("a3", "landscape", 300),
])
def test_png_pixels_match_paper_and_dpi(service, paper, orientation, dpi):
    result = render_export(service, export_options(TOWN, "png", paper=paper, orientation=orientation, dpi=dpi))
    image = Image.open(io.BytesIO(result.data))
    w_mm, h_mm = _paper_mm(paper, orientation)
    assert image.format == "PNG" and result.mimetype == "image/png"
    assert image.size == (round(w_mm / 25.4 * dpi), round(h_mm / 25.4 * dpi))
    # The resolution is recorded, so a word processor places it at paper size.
    assert image.info["dpi"] == pytest.approx((dpi, dpi), abs=0.05)  # stored per metre
    assert result.filename == f"{TOWN}_云龙镇_visits_20200124-20200331.png"


@pytest.mark.parametrize("paper, orientation", [("a4", "portrait"), ("a3", "landscape")])
def test_pdf_is_one_page_of_the_paper_size_with_real_text(service, paper, orientation):
    result = render_export(service, export_options(DISTRICT, "pdf", paper=paper, orientation=orientation))
    reader = PdfReader(io.BytesIO(result.data))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    w_mm, h_mm = _paper_mm(paper, orientation)
    assert float(box.width) == pytest.approx(w_mm / 25.4 * 72, abs=0.5)
    assert float(box.height) == pytest.approx(h_mm / 25.4 * 72, abs=0.5)
    text = reader.pages[0].extract_text()
    assert "鄞州区" in text and "走访排查" in text and "云龙镇" in text  # text, not outlines
    assert reader.metadata.title == "鄞州区　走访排查"


def test_pdf_embeds_a_truetype_font(service):
    """TrueType outlines, not CFF in a TrueType wrapper (which Acrobat reports as broken)."""
    reader = PdfReader(io.BytesIO(render_export(service, export_options(TOWN, "pdf")).data))
    fonts_seen = []
    for font in reader.pages[0]["/Resources"]["/Font"].values():
        font = font.get_object()
        for desc in font["/DescendantFonts"]:
            desc = desc.get_object()
            data = desc["/FontDescriptor"]["/FontFile2"].get_object().get_data()
            fonts_seen.append((str(font["/BaseFont"]), desc["/Subtype"], data[:4]))
    assert fonts_seen
    for name, subtype, magic in fonts_seen:
        assert "NotoSansCJKsc" in name
        assert subtype == "/CIDFontType2" and magic == b"\x00\x01\x00\x00"


def test_svg_parses_and_keeps_text_as_text(service):
    result = render_export(service, export_options(VILLAGE, "svg", orientation="portrait"))
    assert result.mimetype == "image/svg+xml"
    root = ET.fromstring(result.data)
    assert root.tag == f"{SVG_NS}svg"
    assert float(root.get("width").removesuffix("pt")) == pytest.approx(210 / 25.4 * 72, abs=0.5)
    assert float(root.get("height").removesuffix("pt")) == pytest.approx(297 / 25.4 * 72, abs=0.5)
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]
    assert "鄞州区云龙镇甲村　走访排查" in texts
    assert any("甲村第1网格" in t for t in texts)
    styles = [t.get("style", "") for t in root.iter(f"{SVG_NS}text")]
    assert all("Noto Sans CJK SC" in s for s in styles)
    # The glyphs travel with the file: a viewer without Chinese fonts still shows the names.
    css = "".join("".join(s.itertext()) for s in root.iter(f"{SVG_NS}style"))
    embedded = re.search(r"font-family: \"Noto Sans CJK SC\"; src: url\(data:font/ttf;base64,([A-Za-z0-9+/=]+)\)", css)
    font = TTFont(io.BytesIO(base64.b64decode(embedded.group(1))))
    cmap = font.getBestCmap()
    assert all(ord(c) in cmap for t in texts for c in t if not c.isspace())


# --- the scale bar ------------------------------------------------------------------------------

def _bar_ground_length(fig) -> tuple[float, float]:
    """(metres the bar spans on the ellipsoid, metres its label says)."""
    ax = _map_axes(fig)
    bar = next(p for p in ax.patches if p.get_gid() == "scalebar")
    x0, y = bar.get_x(), bar.get_y()
    x1 = x0 + bar.get_width()
    (xmin, xmax), (ymin, ymax) = ax.get_xlim(), ax.get_ylim()
    assert xmin < x0 < x1 < xmax and ymin < y < ymax  # drawn inside the map frame
    lon, lat = Transformer.from_crs("EPSG:4549", "EPSG:4326", always_xy=True).transform([x0, x1], [y, y])
    ground = Geod(ellps="GRS80").inv(lon[0], lat[0], lon[1], lat[1])[2]
    end = next(t for t in ax.texts if t.get_gid() == "scalebar-end").get_text()
    unit = next(t for t in ax.texts if t.get_gid() == "scalebar-unit").get_text()
    said = float(end) * {"km": 1000.0, "m": 1.0}[unit]
    return ground, said


@pytest.mark.parametrize("code, paper, orientation", [
    (CITY, "a4", "portrait"), (DISTRICT, "a4", "landscape"), (TOWN, "a3", "portrait"), (VILLAGE, "a4", "landscape"),
])
def test_scale_bar_is_true_within_two_percent(service, code, paper, orientation):
    fig, info = build_figure(service, export_options(code, "png", paper=paper, orientation=orientation))
    ground, said = _bar_ground_length(fig)
    assert abs(ground - said) / said < 0.02
    assert said == nice_length(said)  # a round 1, 2 or 5 × 10ⁿ


def test_map_coordinates_are_epsg_4549(service, atlas):
    """The scale bar test reads the axes as EPSG:4549: prove the map is really drawn in it."""
    fig, _ = build_figure(service, export_options(TOWN, "png"))
    coll = next(c for c in _map_axes(fig).collections if c.get_gid() == "choropleth")
    xy = np.concatenate([p.vertices for p in coll.get_paths()])
    lon, lat = Transformer.from_crs("EPSG:4549", "EPSG:4326", always_xy=True).transform(xy[:, 0], xy[:, 1])
    minx, miny, maxx, maxy = atlas.geometry_of(TOWN).bounds
    assert min(lon) == pytest.approx(minx, abs=1e-5) and max(lon) == pytest.approx(maxx, abs=1e-5)
    assert min(lat) == pytest.approx(miny, abs=1e-5) and max(lat) == pytest.approx(maxy, abs=1e-5)


@pytest.mark.parametrize("metres, expected", [(0.4, 1), (7.3, 5), (10, 10), (19_999, 10_000), (2_500, 2_000), (48_000, 20_000)])
def test_nice_length_is_1_2_or_5_times_a_power_of_ten(metres, expected):
    assert nice_length(metres) == expected


def test_north_arrow_and_title_block_are_there(service):
    fig, info = build_figure(service, export_options(TOWN, "png"))
    ax = _map_axes(fig)
    assert any(p.get_gid() == "north-arrow" for p in ax.patches)
    assert next(t for t in ax.texts if t.get_gid() == "north-label").get_text() == "北"
    assert abs(info["north_angle"]) < 3  # true north is within a few degrees of grid north here
    by_gid = {t.get_gid(): t.get_text() for t in fig.texts if t.get_gid()}
    assert by_gid["title"] == "鄞州区云龙镇　走访排查"
    assert "2020年1月24日 至 2020年3月31日" in by_gid["subtitle"] and "户次" in by_gid["subtitle"]
    assert "数据来源" in by_gid["footer-source"] and "数据时间" in by_gid["footer-source"]
    assert "EPSG:4549" in by_gid["footer-crs"]
    labels = {t.get_text().split("\n")[0] for t in ax.texts if t.get_gid() == "area-label"}
    assert "甲村" in labels and len(labels) == 7  # every village of 云龙镇 is named


# --- legend = the map's classes -----------------------------------------------------------------

@pytest.mark.parametrize("code, method, k, period", [
    (CITY, "quantiles", 5, None),
    (DISTRICT, "natural_breaks", 5, None),
    (TOWN, "quantiles", 4, ("2020-02-01", "2020-02-29")),
    (VILLAGE, "natural_breaks", 3, ("2020-03-01", "2020-03-31")),
])
def test_legend_limits_equal_the_map_classes(service, code, method, k, period):
    args = {"method": method, "k": str(k), "metric": "home_quarantine"}
    if period:
        args.update({"from": period[0], "to": period[1]})
    options = parse_options(code, "png", args)
    fig, info = build_figure(service, options)
    values = service.child_values(code, "home_quarantine", options.start, options.end)
    expected = classify(values["value"].to_numpy(), method=method, k=k)
    legend = [t.get_text() for t in fig.texts if t.get_gid() == "legend-label"]
    assert legend == expected.labels()
    swatches = [to_hex(p.get_facecolor()) for p in fig.artists if p.get_gid() == "legend-swatch"]
    assert swatches == list(expected.colors)
    # ...and every area is filled with its class colour.
    coll = next(c for c in _map_axes(fig).collections if c.get_gid() == "choropleth")
    want = np.array([to_rgba(c) for c in expected.color_of(values.sort_values("code")["value"])])
    assert np.allclose(coll.get_facecolors(), want)


def test_deeper_level_colours_every_grid_and_names_the_children(service, atlas):
    fig, info = build_figure(service, export_options(TOWN, "png", level="grid"))
    data = info["data"]
    n_grids = int(atlas.grids["code"].str.startswith(TOWN).sum())
    assert data.fill_level == "grid" and len(data.values) == n_grids
    assert data.values["value"].sum() == service.area_total(TOWN, "visits")
    coll = next(c for c in _map_axes(fig).collections if c.get_gid() == "choropleth")
    assert len(coll.get_paths()) == n_grids
    named = {t.get_text() for t in _map_axes(fig).texts if t.get_gid() == "area-label"}
    assert named <= set(atlas.children(TOWN)["name"])


def test_whole_city_at_grid_level_has_all_grids(service, atlas):
    fig, info = build_figure(service, export_options(CITY, "png", level="grid", paper="a3", dpi=300))
    coll = next(c for c in _map_axes(fig).collections if c.get_gid() == "choropleth")
    assert len(coll.get_paths()) == len(atlas.grids) == 10_205
    assert len(info["labels"]) <= 10  # districts are named, not ten thousand grids


# --- fonts: a real CJK font that the install brings, with every glyph -----------------------------

def test_cjk_font_comes_from_the_pip_package():
    path, face = fonts.collection_path()
    assert "site-packages" in str(path) and "noto_cjk_sans_otc" in str(path)
    collection = TTFont(str(path), fontNumber=face, lazy=True)
    assert collection["name"].getDebugName(1) == "Noto Sans CJK SC"


def _all_texts(fig) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text()]


@pytest.mark.parametrize("code, metric, lang, level", [
    (CITY, "visits", "zh", None), (CITY, "risk_code", "en", "grid"), (DISTRICT, "home_observation", "zh", None),
    (TOWN, "checkpoint_checks", "zh", None), (VILLAGE, "disputes", "en", None),
    (VILLAGE + "001", "new_arrivals", "zh", None),
])
def test_every_glyph_of_every_label_is_in_the_font(service, code, metric, lang, level):
    fig, info = build_figure(service, export_options(code, "png", metric=metric, lang=lang, level=level))
    source, face = fonts.collection_path()
    texts = _all_texts(fig)
    assert len(texts) > 15
    for t in texts:
        used = t.get_fontproperties().get_file()
        assert str(used) == info["font_path"], f"{t.get_text()!r} is not set in the export font"
        assert fonts.missing_glyphs(t.get_text(), used) == set(), t.get_text()
        assert fonts.missing_glyphs(t.get_text(), source, face) == set(), t.get_text()
    assert info["missing_glyphs"] == set()


def test_converted_font_has_truetype_outlines_and_every_area_name(service, atlas):
    from geo.export.figure import font_path_for

    path = font_path_for(service)
    font = TTFont(path)
    assert "glyf" in font and "CFF " not in font
    names = "".join(sorted({c for layer in atlas.layers.values() for c in "".join(layer["name"])}))
    assert fonts.missing_glyphs(names + "".join(m.name_zh + m.unit_zh for m in METRICS.values()), path) == set()


def test_a_character_outside_the_atlas_gets_its_own_font_file(tmp_path):
    path = fonts.font_file("鬱", cache_dir=tmp_path)
    assert fonts.missing_glyphs("鬱 2020年3月（合计）", path) == set()
    assert fonts.font_file("鬱", cache_dir=tmp_path) == path  # cached


# --- options ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, args, message", [
    ("gif", {}, r"format 'gif' is not allowed; allowed: png, pdf, svg"),
    ("png", {"paper": "a5"}, r"paper 'a5' is not allowed; allowed: a4, a3"),
    ("png", {"orientation": "diagonal"}, r"orientation 'diagonal' is not allowed"),
    ("png", {"dpi": "200"}, r"dpi 200 is not allowed; allowed: 150, 300"),
    ("png", {"dpi": "high"}, r"dpi 'high' is not a whole number"),
    ("png", {"metric": "steps"}, r"unknown metric 'steps'"),
    ("png", {"from": "2020-13-01"}, r"from '2020-13-01' is not an ISO date"),
    ("png", {"from": "2020-03-01", "to": "2020-02-01"}, r"after"),
    ("png", {"to": "2021-01-01"}, r"outside the data period"),
    ("png", {"method": "equal"}, r"unknown classification 'equal'; allowed: quantiles, natural_breaks"),
    ("png", {"k": "9"}, r"number of classes 9 must be between 3 and 7"),
    ("png", {"lang": "fr"}, r"unknown language 'fr'; allowed: zh, en"),
])
def test_bad_options_are_refused_with_a_message(fmt, args, message):
    with pytest.raises(BadParameter, match=message):
        parse_options(TOWN, fmt, args)


@pytest.mark.parametrize("level", ["district", "town", "planet"])
def test_level_not_below_the_area_is_refused(service, level):
    with pytest.raises(BadParameter, match=f"level '{level}' cannot be shown inside a town; allowed: village, grid"):
        render_export(service, export_options(TOWN, "png", level=level))


@pytest.mark.parametrize("code", ["330299", "999", "abc", "330212999"])
def test_unknown_area_is_not_found(service, code):
    with pytest.raises(AreaNotFound):
        render_export(service, export_options(code, "png"))


def test_defaults_are_the_maps(service):
    options = parse_options(TOWN, "PNG", {"unknown": "ignored", "orientation": "auto", "lang": "zh-CN"})
    assert (options.fmt, options.metric, options.paper, options.dpi, options.method, options.k, options.lang) == \
        ("png", "visits", "a4", 150, "quantiles", 5, "zh")
    assert options.orientation is None and options.level is None


def test_english_title(service):
    fig, info = build_figure(service, export_options(TOWN, "png", lang="en", metric="appeals"))
    assert info["title"] == "鄞州区云龙镇 — Appeals"
    assert any(t.get_text() == "N" for t in _map_axes(fig).texts)


def test_texts_are_never_parsed_as_mathtext(service):
    """An uploaded name like '$x$' must print as typed, not as a formula."""
    fig, _ = build_figure(service, export_options(TOWN, "png"))
    assert all(not t.get_parse_math() for t in _all_texts(fig))


# --- command line --------------------------------------------------------------------------------

def test_cli_writes_one_file(demo_settings, monkeypatch, tmp_path, capsys):
    use_location(monkeypatch, demo_settings)
    out = tmp_path / "town.pdf"
    assert main(["export", "--area", TOWN, "--metric", "home_quarantine", "--from", "2020-02-01",
                 "--to", "2020-02-10", "--format", "pdf", "-o", str(out)]) == 0
    reader = PdfReader(out)
    assert len(reader.pages) == 1 and "居家隔离" in reader.pages[0].extract_text()
    assert f"wrote {out}" in capsys.readouterr().out


def test_cli_takes_the_format_from_the_file_name(demo_settings, monkeypatch, tmp_path):
    use_location(monkeypatch, demo_settings)
    out = tmp_path / "village.svg"
    assert main(["export", "--area", VILLAGE, "-o", str(out)]) == 0
    assert ET.parse(out).getroot().tag == f"{SVG_NS}svg"


@pytest.mark.parametrize("argv, code, message", [
    (["--area", "999999", "-o", "x.png"], 3, "no area with code '999999'"),
    (["--area", TOWN, "--dpi", "72", "-o", "x.png"], 2, "dpi 72 is not allowed"),
    (["--area", TOWN, "-o", "x.bmp"], 2, "cannot tell the format"),
    (["--level", "town", "--within", TOWN, "--out", "d"], 2, "level 'town' is not below town 330212108"),
    (["--metric", "visits"], 2, "give --area CODE -o FILE"),
])
def test_cli_errors_are_one_line(demo_settings, monkeypatch, tmp_path, capsys, argv, code, message):
    use_location(monkeypatch, demo_settings)
    monkeypatch.chdir(tmp_path)
    assert main(["export", *argv]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_cli_batch_writes_one_file_per_area_with_a_progress_bar(demo_settings, atlas, tmp_path):
    out = tmp_path / "villages"
    env = {**os.environ, **location_env(demo_settings)}
    proc = subprocess.run([sys.executable, "-m", "geo", "export", "--level", "village", "--within", TOWN,
                           "--out", f"{out}/", "--metric", "visits", "--workers", "2"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    villages = atlas.children(TOWN)
    files = sorted(p.name for p in Path(out).iterdir())
    assert files == sorted(f"{c}_{n}_visits.png" for c, n in zip(villages["code"], villages["name"]))
    assert re.search(r"export village: 100%.*7/7", proc.stderr)  # tqdm's bar
    assert "wrote 7 files" in proc.stdout
    for name in files:
        assert Image.open(out / name).size == (1240, 1754) or Image.open(out / name).size == (1754, 1240)


# --- small-count suppression: legend, colours and texts tell nothing finer than "<5" -----------

# Seven villages of 云龙镇 with hand-set counts: a zero, one small count (3), the next-smallest (7)
# that secondary suppression must hide, and four printed counts.
CRAFTED = [0, 3, 7, 9, 40, 55, 120]


def _crafted(service, fmt="svg", lang="zh"):
    from dataclasses import replace

    from geo.export.exporter import map_data, suppressed

    options = parse_options(TOWN, fmt, {"metric": "visits", "lang": lang})
    data = map_data(service, options)
    codes = sorted(data.values["code"])
    assert len(codes) == len(CRAFTED)
    by_code = dict(zip(codes, CRAFTED))
    values = data.values.assign(value=data.values["code"].map(by_code))
    data = replace(data, values=values, labels=values.copy(), total=sum(CRAFTED))
    return suppressed(data, 5, lang, options.method, options.k), options, by_code


def _drawn(service, data, options):
    from geo.export.figure import draw_map

    fig, info = draw_map(service, data, options)
    legend = [t.get_text() for t in fig.texts if t.get_gid() == "legend-label"]
    swatches = [to_hex(p.get_facecolor()) for p in fig.artists if p.get_gid() == "legend-swatch"]
    coll = next(c for c in _map_axes(fig).collections if c.get_gid() == "choropleth")
    codes = sorted(data.values["code"])
    fills = dict(zip(codes, (to_hex(c) for c in coll.get_facecolors())))
    return fig, info, dict(zip(legend, swatches)), fills


def _numbers(text):
    return [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", text)]


def test_a_suppressed_legend_has_one_small_class_and_no_limit_below_the_threshold(service):
    from geo.export.figure import HIDDEN_FILL

    data, options, by_code = _crafted(service)
    fig, info, legend, fills = _drawn(service, data, options)
    labels = list(legend)
    assert labels[:2] == ["0", "<5"] and labels[-1].startswith("* ")
    for label in labels[2:-1]:  # the classes of printed counts start at the threshold
        assert all(n >= 5 for n in _numbers(label)), labels
    assert labels[2].startswith("5 –"), labels  # not "9 –", the lowest printed count
    assert not any("7" in label for label in labels)  # the hidden 7 shows nowhere
    small = [c for c, v in by_code.items() if 1 <= v < 5]
    hidden = [c for c, v in by_code.items() if v == 7]
    assert set(hidden) == data.hidden and data.printed[hidden[0]] == "*"
    assert {fills[c] for c in small} == {legend["<5"]}
    assert {fills[c] for c in hidden} == {HIDDEN_FILL} == {legend[labels[-1]]}
    assert fills[next(c for c, v in by_code.items() if v == 0)] == legend["0"]
    # No printed count shares the small class's colour, and the hidden one has no class colour.
    assert all(fills[c] != legend["<5"] for c, v in by_code.items() if v >= 5)
    assert HIDDEN_FILL not in data.classes.colors
    # Secondary suppression holds: the total minus the printed villages leaves the small
    # count open (it could be any of 1..4, the hidden one any of 0 or 5 up).
    rest = sum(CRAFTED) - sum(v for c, v in by_code.items() if data.printed[c] not in ("<5", "*"))
    possible = {a for a in range(1, 5) if rest - a == 0 or rest - a >= 5}
    assert len(possible) >= 2


def test_a_suppressed_svg_and_pdf_print_no_small_count_and_no_narrower_class(service):
    from geo.export.figure import save_figure

    for fmt in ("svg", "pdf"):
        data, options, by_code = _crafted(service, fmt)
        fig, info, legend, fills = _drawn(service, data, options)
        buf = io.BytesIO()
        save_figure(fig, buf, options, title=info["title"], font_path=info["font_path"])
        if fmt == "svg":
            root = ET.fromstring(buf.getvalue())
            texts = ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]
            # Each area's label (its name, then its printed count) is a group with the label's gid.
            printed = ["".join(list(g.iter(f"{SVG_NS}text"))[-1].itertext()) for g in root.iter(f"{SVG_NS}g")
                       if g.get("id") == "area-label"]
        else:
            texts = PdfReader(io.BytesIO(buf.getvalue())).pages[0].extract_text().splitlines()
            printed = [t.get_text().split("\n")[-1] for t in fig.findobj(Text) if t.get_gid() == "area-label"]
        whole = "\n".join(texts)
        assert "<5" in whole and "1 至 4 的数字显示为 <5" in whole.replace("\n", "")
        assert printed and set(printed) <= {"0", "<5", "*", "9", "40", "55", "120"}, (fmt, printed)
        assert "<5" in printed and "*" in printed
        assert "1 – 4" not in whole and "1 – 3" not in whole and "最高" not in whole
        assert f"合计　{sum(CRAFTED):,}" in whole


def test_a_suppressed_real_export_groups_every_small_count_in_one_colour(service):
    from geo.export.figure import HIDDEN_FILL

    for code, args in ((DISTRICT, {"metric": "home_quarantine"}), ("330203", {"metric": "home_observation"}),
                       (DISTRICT, {"metric": "home_quarantine", "level": "grid"})):
        options = parse_options(code, "png", {**args, "suppress": "1"})
        fig, info = build_figure(service, options)
        data = info["data"]
        legend = [t.get_text() for t in fig.texts if t.get_gid() == "legend-label"]
        swatches = [to_hex(p.get_facecolor()) for p in fig.artists if p.get_gid() == "legend-swatch"]
        assert "<5" in legend, (code, legend)
        for label in legend:
            assert label in ("0", "<5") or label.startswith("* ") or min(_numbers(label)) >= 5, (code, legend)
        small_colour = swatches[legend.index("<5")]
        coll = next(c for c in _map_axes(fig).collections if c.get_gid() == "choropleth")
        values = data.values.sort_values("code")
        fills = [to_hex(c) for c in coll.get_facecolors()]
        for value, fill, area in zip(values["value"], fills, values["code"]):
            if area in data.hidden:
                assert fill == HIDDEN_FILL
            elif 1 <= value < 5:
                assert fill == small_colour
            else:
                assert fill != small_colour


def test_suppression_off_keeps_the_maps_classes_and_a_change_map_cannot_be_suppressed(service):
    data = build_figure(service, parse_options(DISTRICT, "png", {"metric": "home_quarantine"}))[1]["data"]
    values = service.child_values(DISTRICT, "home_quarantine", data.start, data.end)["value"].to_numpy()
    assert data.classes == classify(values) and data.classes.texts is None and not data.hidden
    with pytest.raises(BadParameter, match="suppression applies to counts, not to a change"):
        parse_options(DISTRICT, "png", {"suppress": "1", "a_from": "2020-02-01", "a_to": "2020-02-07"})


@pytest.mark.parametrize("values, method, k, labels", [
    ([0, 0, 1, 2, 4, 5, 9, 30, 31, 80, 200], "quantiles", 5, None),
    ([1, 2, 3, 4], "quantiles", 5, ["<5"]),
    ([0, 0, 0], "natural_breaks", 3, ["0"]),
    ([6, 6, 6, 40], "quantiles", 3, ["5 – 6", "7 – 40"]),
    ([3, 12], "natural_breaks", 3, ["<5", "5 – 12"]),
    ([], "quantiles", 5, ["0"]),
])
def test_classify_suppressed_puts_small_counts_in_one_class(values, method, k, labels):
    from geo.query.classify import classify_suppressed

    classes = classify_suppressed(values, 5, method, k)
    if labels is not None:
        assert classes.labels() == labels
    got = classes.labels()
    assert len(got) == len(classes.bounds) == len(classes.colors) == len(set(classes.colors))
    assert all(lab in ("0", "<5") or min(_numbers(lab)) >= 5 for lab in got)
    idx = classes.classify(values)
    small = {int(i) for v, i in zip(values, idx) if 1 <= v < 5}
    assert len(small) <= 1 and all(got[i] == "<5" for i in small)
    assert all(got[i] == "0" for v, i in zip(values, idx) if v == 0)
    with pytest.raises(BadParameter, match="threshold 1"):
        classify_suppressed(values, 1)


def test_a_hostile_area_name_is_plain_text_in_a_suppressed_svg(service):
    from dataclasses import replace

    from geo.export.figure import save_figure

    data, options, by_code = _crafted(service)
    evil = "<script>alert(1)</script>${document.title}"
    # The village with the widest room for a long label (the largest inscribed circle).
    villages = service.atlas.children(TOWN)["code"].tolist()
    geoms = [service.atlas.geometry_of(c) for c in villages]
    room = [shapely.length(shapely.maximum_inscribed_circle(g)) for g in geoms]
    first = villages[int(np.argmax(room))]
    names = data.labels["name"].where(data.labels["code"] != first, evil)
    data = replace(data, labels=data.labels.assign(name=names), values=data.values.assign(name=names))
    fig, info, legend, fills = _drawn(service, data, options)
    buf = io.BytesIO()
    save_figure(fig, buf, options, title=info["title"], font_path=info["font_path"])
    root = ET.fromstring(buf.getvalue())
    assert not list(root.iter(f"{SVG_NS}script")) and b"<script>" not in buf.getvalue()
    assert any(evil in "".join(t.itertext()) for t in root.iter(f"{SVG_NS}text"))


def test_a_change_export_prints_signed_values_a_no_data_row_and_every_glyph(service):
    # A week against the last one, per village of 云龙镇: the first week where some villages had
    # no visits (their per cent change does not exist: "no data") and others had some.
    from datetime import date, timedelta

    from geo.query.classify import NO_DATA_COLOR
    from geo.query.timeseries import change

    b = (date(2020, 3, 25), date(2020, 3, 31))
    for week in range(9):
        a = (date(2020, 1, 24) + timedelta(days=7 * week), date(2020, 1, 30) + timedelta(days=7 * week))
        ch = change(service, TOWN, "visits", a, b, "percent")
        empty = [r["code"] for r in ch["values"] if r["value"] is None]
        if 0 < len(empty) < len(ch["values"]):
            break
    assert 0 < len(empty) < len(ch["values"]), "no week with both kinds of village"
    options = export_options(TOWN, "png", metric="visits", start=b[0], end=b[1], compare=a, basis="percent")
    fig, info = build_figure(service, options)
    texts = [t.get_text() for t in _all_texts(fig)]
    assert info["missing_glyphs"] == set()
    assert any(f"较 {a[0]} – {a[1]} 的百分比变化（蓝减红增）" in t for t in texts)
    assert "无数据（前期为 0，无百分比）" in texts
    # The map draws exactly those villages in the no-data grey.
    (coll,) = [c for c in fig.findobj() if getattr(c, "get_gid", lambda: None)() == "choropleth"]
    grey = to_rgba(NO_DATA_COLOR)
    n_grey = sum(tuple(fc) == grey for fc in coll.get_facecolors())
    assert n_grey == len(empty)
    # Values on the map are signed per cents, like the legend.
    values = [line for t in texts for line in t.split("\n") if re.fullmatch(r"[+-]?[\d,]+%", line)]
    assert values and all(v == "0%" or v[0] in "+-" for v in values)
