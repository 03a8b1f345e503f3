"""The documentation stays a front door plus one file per subject, and says what is.

* README.md has at most 250 lines; the rest of the documentation lives in docs/.
* No tracked text file (code, comments, help texts, templates, docs, Makefile, requirements)
  names an issue number of this project's own tracker, an absolute path of one machine, or a
  design file that is not in the repository. Other projects' issues are fine when listed in
  ALLOWED_REFERENCES with the reason.
* Every relative link in README.md and docs/*.md points to a tracked file or folder, and a
  ``#fragment`` into a Markdown file names one of its headings.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import PurePosixPath

import pytest

from geo.settings import PROJECT_ROOT

README_MAX_LINES = 250

# Suffixes of the tracked files that are text we write (data files such as .geojson and the
# .csv fixtures are left out). Files without a suffix (Makefile, .ci/run) are text too.
TEXT_SUFFIXES = {".py", ".md", ".txt", ".toml", ".cfg", ".ini", ".html", ".js", ".css", ".sql",
                 ".mk", ".po", ".pot", ".sh", ".yml", ".yaml", ".json", ""}
# Written by tools, not by us: npm's lock file is hashes and registry URLs.
GENERATED = {"web/assets/package-lock.json"}

# References to this project's own tracker: the word issue (or issues) followed by a number,
# with or without "#"; a number in brackets after "#"; PR or pull request and a number.
TRACKER_REFERENCE = re.compile(
    r"\bissues?\s*#?\d+|\(#\d+\)|\b(?:PR|pull request)\s*#?\d+", re.IGNORECASE)

# Other projects' issues, each with why it is cited (matched across line breaks).
ALLOWED_REFERENCES = {
    r"matplotlib\s+issue\s+#20870":
        "matplotlib's PDF backend embeds CFF fonts as TrueType CID fonts that Acrobat rejects; "
        "the reason geo/export/fonts.py converts the glyphs (geo/export/fonts.py, docs/exports.md)",
}

# Absolute paths of one machine, and design notes that live outside the repository.
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:work|root|home)/")
OUTSIDE_DESIGN = re.compile(r"DESIGN\.md|\.\./shared/", re.IGNORECASE)

# Markdown links and images: [text](target) or ![alt](target "title").
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True,
                             check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [p for p in out.stdout.decode().split("\0") if p]


def _text_files() -> dict[str, str]:
    files = {}
    for rel in _tracked():
        path = PROJECT_ROOT / rel
        if rel in GENERATED or PurePosixPath(rel).suffix not in TEXT_SUFFIXES or not path.is_file():
            continue
        raw = path.read_bytes()
        if b"\0" in raw:
            continue
        try:
            files[rel] = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return files


def _markdown_files() -> list[str]:
    return [p for p in _tracked() if p == "README.md" or (p.startswith("docs/") and p.endswith(".md"))]


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _hits(pattern: re.Pattern, text: str) -> list[tuple[int, str]]:
    return [(_line(text, m.start()), m.group(0)) for m in pattern.finditer(text)]


def test_readme_is_a_front_door():
    lines = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move details to docs/")


def test_the_scan_sees_the_code_and_the_docs():
    files = _text_files()
    for expected in ("README.md", "Makefile", "requirements.txt", "geo/cli/main.py", "web/static/app.js",
                     "tests/conftest.py"):
        assert expected in files


def test_no_issue_numbers_of_this_project():
    found = []
    for rel, text in _text_files().items():
        for allowed in ALLOWED_REFERENCES:
            text = re.sub(allowed, lambda m: " " * len(m.group(0)), text, flags=re.IGNORECASE)
        found += [f"{rel}:{line}: {hit!r}" for line, hit in _hits(TRACKER_REFERENCE, text)]
    assert not found, ("say what the code does, not which issue asked for it (another project's "
                       "issue goes into ALLOWED_REFERENCES with its reason):\n" + "\n".join(found))


def test_no_machine_paths_or_outside_design_files():
    found = []
    for rel, text in _text_files().items():
        for pattern in (MACHINE_PATH, OUTSIDE_DESIGN):
            found += [f"{rel}:{line}: {hit!r}" for line, hit in _hits(pattern, text)]
    assert not found, ("write a placeholder such as DIR for a machine's folder, and keep design "
                       "notes in docs/:\n" + "\n".join(found))


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in FENCE.sub("", markdown).splitlines():
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = _slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def test_relative_links_in_the_docs_resolve():
    tracked = set(_tracked())
    folders = {str(parent) for p in tracked for parent in PurePosixPath(p).parents}
    broken = []
    for rel in _markdown_files():
        text = (PROJECT_ROOT / rel).read_text(encoding="utf-8")
        prose = INLINE_CODE.sub("", FENCE.sub("", text))
        for target in LINK.findall(prose):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:, ...
                continue
            path_part, _, fragment = target.partition("#")
            if path_part:
                resolved = PurePosixPath(rel).parent / path_part
                parts: list[str] = []
                for part in resolved.parts:
                    if part == "..":
                        if parts:
                            parts.pop()
                        else:
                            parts.append(part)
                    elif part != ".":
                        parts.append(part)
                dest = "/".join(parts) or "."
                if dest not in tracked and dest.rstrip("/") not in folders:
                    broken.append(f"{rel}: {target} (no tracked file {dest})")
                    continue
            else:
                dest = rel
            if fragment and dest.endswith(".md"):
                anchors = _anchors((PROJECT_ROOT / dest).read_text(encoding="utf-8"))
                if fragment not in anchors:
                    broken.append(f"{rel}: {target} (no heading #{fragment} in {dest})")
    assert not broken, "broken links:\n" + "\n".join(broken)
