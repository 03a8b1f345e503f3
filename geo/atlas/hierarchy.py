"""The area hierarchy: city › district › town › village › grid, and its numeric codes.

Codes nest by prefix: a district is 6 digits (real adcodes), a town adds 3, a
village 3 more and a grid 3 more. Everything about levels is derived from the code length, so
there is exactly one place that knows it.
"""

from __future__ import annotations

from geo.errors import BadParameter

CITY_CODE = "330200"
CITY_NAME = "宁波市"

LEVELS = ("city", "district", "town", "village", "grid")
CODE_LENGTHS = {"city": 6, "district": 6, "town": 9, "village": 12, "grid": 15}
LEVEL_NAMES_ZH = {"city": "市", "district": "区县", "town": "镇街", "village": "村社", "grid": "网格"}


def level_of(code: str) -> str:
    """Return the level of an area code ("city", "district", "town", "village" or "grid")."""
    if not isinstance(code, str) or not code.isdigit():
        raise BadParameter(f"area code {code!r} is not a string of digits")
    if code == CITY_CODE:
        return "city"
    for level in ("district", "town", "village", "grid"):
        if len(code) == CODE_LENGTHS[level]:
            return level
    raise BadParameter(
        f"area code {code!r} has {len(code)} digits; allowed are 6 (district), 9 (town), "
        "12 (village) and 15 (grid)"
    )


def parent_code(code: str) -> str | None:
    """Return the code of the parent area, or None for the city."""
    level = level_of(code)
    if level == "city":
        return None
    if level == "district":
        return CITY_CODE
    return code[: CODE_LENGTHS[LEVELS[LEVELS.index(level) - 1]]]


def child_level(level: str) -> str | None:
    """Return the level below ``level``, or None below a grid."""
    i = LEVELS.index(level)
    return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


def ancestor_codes(code: str) -> list[str]:
    """Return the codes from the city down to and including ``code``."""
    chain = [code]
    while (p := parent_code(chain[-1])) is not None:
        chain.append(p)
    return chain[::-1]

