"""Jurisdiction: what a user may see and do, and small-count suppression for exports.

Every user has a role and one area code (their jurisdiction):

=========  ============================  ==========================================
role       area                          may
=========  ============================  ==========================================
admin      the city (330200)             view and export the city, import records,
                                         update boundaries, manage users
city       the city (330200)             view and export the whole city
district   one district (6 digits)       view and export inside that district
town       one town/street (9 digits)    view and export inside that town
=========  ============================  ==========================================

A :class:`Scope` answers "may this user see area X" (:meth:`Scope.can_see`), raises
:class:`~geo.errors.Forbidden` (403) when not (:meth:`Scope.check`), and trims listings
(search results, outline collections) to the areas inside it. The check is on the code alone and
comes before any lookup, so a 403 never tells whether an area outside the scope exists.

Ancestors of the scope (a town official's district and the city) are not inside it: their names
appear in breadcrumbs, but their pages, totals and listings are refused.

:func:`suppress_counts` turns one group of sibling counts (a district's grids, say) into the
strings an export prints: counts from 1 to one below the threshold print as "<5" (threshold
5: the counts 1 to 4), and more cells are hidden (secondary suppression) wherever the published
parent total minus the visible children would reveal a hidden count. Zeros are printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from geo.atlas.hierarchy import CITY_CODE, CODE_LENGTHS
from geo.errors import BadParameter, Forbidden

# What each role may do besides viewing the areas inside its scope.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"view", "export", "import", "manage_users"}),
    "city": frozenset({"view", "export"}),
    "district": frozenset({"view", "export"}),
    "town": frozenset({"view", "export"}),
}
ROLES = tuple(PERMISSIONS)
# The level of area each role is bound to.
ROLE_LEVELS = {"admin": "city", "city": "city", "district": "district", "town": "town"}

PERMISSION_NAMES = {
    "view": "view maps",
    "export": "export maps",
    "import": "import records and boundaries",
    "manage_users": "manage users",
}


def check_role_area(role: str, area: str | None) -> str:
    """The area a user of ``role`` is bound to, checked; BadParameter names what is allowed.

    admin and city users are bound to the city (``area`` may be omitted); a district user to a
    6-digit district code; a town user to a 9-digit town code.
    """
    if role not in PERMISSIONS:
        raise BadParameter(f"unknown role {role!r}; allowed: {', '.join(ROLES)}")
    level = ROLE_LEVELS[role]
    if level == "city":
        if area not in (None, "", CITY_CODE):
            raise BadParameter(f"role {role!r} covers the whole city; its area must be {CITY_CODE}, not {area!r}")
        return CITY_CODE
    area = (area or "").strip()
    if not area:
        raise BadParameter(f"role {role!r} needs --area, a {level} code of {CODE_LENGTHS[level]} digits")
    if not area.isdigit() or len(area) != CODE_LENGTHS[level] or area == CITY_CODE:
        raise BadParameter(f"area {area!r} is not a {level} code; role {role!r} needs a {level} code "
                           f"of {CODE_LENGTHS[level]} digits, e.g. "
                           f"{'330212' if level == 'district' else '330212108'}")
    return area


_LENGTHS = frozenset(CODE_LENGTHS.values())


def _well_formed(code) -> bool:
    """A string of ASCII digits as long as some level's codes."""
    return isinstance(code, str) and code.isascii() and code.isdigit() and len(code) in _LENGTHS


@dataclass(frozen=True)
class Scope:
    """The jurisdiction of one user: ``role`` and the ``root`` area whose subtree they see."""

    role: str
    root: str
    user: str = ""

    def __post_init__(self):
        check_role_area(self.role, self.root)

    @classmethod
    def for_user(cls, user) -> "Scope":
        """The scope of a :class:`geo.users.User` (anything with ``role``, ``area``, ``name``)."""
        return cls(user.role, user.area, user.name)

    @property
    def is_city(self) -> bool:
        """True when the scope is the whole city (admin and city roles)."""
        return self.root == CITY_CODE

    def can_see(self, code) -> bool:
        """True when area ``code`` is the scope's root or lies inside it.

        Codes nest by prefix, so this needs no lookup; a malformed code is outside every scope
        but the city's (where the lookup that follows answers 404).
        """
        if self.is_city:
            return True
        return _well_formed(code) and code.startswith(self.root)

    def check(self, code) -> str:
        """Return ``code`` when the user may see it, else raise Forbidden (403)."""
        if not self.can_see(code):
            raise Forbidden(f"area {code!r} is outside the jurisdiction of {self.describe()}")
        return code

    def contains_scope(self, code) -> bool:
        """True when area ``code`` is the root or one of its ancestors (it holds the whole scope)."""
        return _well_formed(code) and (code == CITY_CODE or self.root.startswith(code))

    def listing_root(self, within) -> str:
        """The area a listing asked "inside ``within``" is cut to.

        Inside the scope: ``within`` itself. An ancestor of the scope (the city, for a town
        official): the scope's root, so the listing holds only the user's own areas. Anywhere
        else: Forbidden.
        """
        if self.can_see(within):
            return within
        if self.contains_scope(within):
            return self.root
        raise Forbidden(f"area {within!r} is outside the jurisdiction of {self.describe()}")

    @property
    def search_within(self) -> str | None:
        """The ``within`` of a search limited to this scope (None: the whole city)."""
        return None if self.is_city else self.root

    def allows(self, permission: str) -> bool:
        """True when the role grants ``permission`` (view, export, import, manage_users)."""
        return permission in PERMISSIONS[self.role]

    def require(self, permission: str) -> None:
        """Raise Forbidden unless the role grants ``permission``."""
        if not self.allows(permission):
            what = PERMISSION_NAMES.get(permission, permission)
            raise Forbidden(f"role {self.role!r} may not {what}; ask an administrator")

    def filter_codes(self, codes: Iterable[str]) -> list[str]:
        """The codes of ``codes`` inside the scope, in their order."""
        return [c for c in codes if self.can_see(c)]

    def filter_rows(self, rows: Iterable[Mapping], key: str = "code") -> list:
        """The rows (dicts such as search results) whose ``key`` lies inside the scope."""
        return [r for r in rows if self.can_see(r[key])]

    def filter_collection(self, collection: dict) -> dict:
        """A copy of a GeoJSON FeatureCollection keeping only features whose ``code`` property
        lies inside the scope (an outline collection of the city becomes the user's own areas)."""
        if self.is_city:
            return collection
        out = dict(collection)
        out["features"] = [f for f in collection["features"] if self.can_see(f["properties"].get("code"))]
        return out

    def describe(self) -> str:
        """Who this is, for messages: e.g. "user alice (town 330212108)"."""
        who = f"user {self.user} " if self.user else ""
        return f"{who}({self.role} {self.root})"


# ---------------------------------------------------------------------------------------------
# Small-count suppression for exports
# ---------------------------------------------------------------------------------------------

SECONDARY_MARK = "*"


@dataclass(frozen=True)
class Suppressed:
    """What an export prints for one group of siblings and their parent.

    ``labels`` maps each code to its printed text ("1,234", "0", "<5" or "*"); ``primary`` holds
    the codes whose count is from 1 to ``threshold - 1``, ``secondary`` those hidden so that the
    total cannot reveal a primary one; ``total_label`` is the parent total as printed ("*" when
    even hiding every sibling could not protect a small count, which happens only when all
    siblings are hidden already).
    """

    labels: dict
    primary: frozenset
    secondary: frozenset
    total_label: str
    threshold: int

    @property
    def hidden(self) -> frozenset:
        """Every code whose count is not printed."""
        return self.primary | self.secondary

    def note(self, lang: str = "zh") -> str:
        """The footnote an export prints under a suppressed table or map."""
        top = self.threshold - 1
        if lang == "en":
            return (f"Counts from 1 to {top} are shown as <{self.threshold}; "
                    f"{SECONDARY_MARK} hidden so that totals do not reveal them.")
        return f"1 至 {top} 的数字显示为 <{self.threshold}；{SECONDARY_MARK} 为防止由合计反推而隐藏。"


def small_label(threshold: int) -> str:
    """The text printed instead of a count from 1 to ``threshold - 1``."""
    return f"<{threshold}"


def is_small(value, threshold: int) -> bool:
    """True when ``value`` is a count that suppression hides (1 to ``threshold - 1``)."""
    return 1 <= value < threshold


def check_threshold(threshold) -> int:
    """``threshold`` if it is a usable small-count threshold (a whole number of at least 2)."""
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 2:
        raise BadParameter(f"small-count threshold {threshold!r} must be a whole number of at least 2")
    return threshold


def _feasible(target: int, n_primary: int, n_secondary: int, threshold: int) -> int:
    """How many values (capped at 2) a hidden primary count may take, as seen by a reader who
    knows the hidden cells' sum ``target``, that each other primary lies in 1..threshold-1 and
    that each secondary ("*") is 0 or at least the threshold."""
    top = threshold - 1
    lo_p, hi_p = n_primary - 1, (n_primary - 1) * top  # the other primaries' sum
    found = 0
    for value in range(1, top + 1):
        rest = target - value  # what the other hidden cells must add up to
        if n_secondary == 0:
            ok = lo_p <= rest <= hi_p
        else:  # secondaries add 0 or anything from the threshold up
            ok = lo_p <= rest <= hi_p or rest >= lo_p + threshold
        if ok:
            found += 1
            if found == 2:
                break
    return found


def suppress_counts(values: Mapping[str, int], threshold: int = 5, total: int | None = None) -> Suppressed:
    """Printed labels of one group of sibling counts under small-count suppression.

    ``values`` maps each child's code to its count; ``total`` is the parent total as published
    (default: the sum of the values). Counts from 1 to ``threshold - 1`` are primary
    suppressions (printed ``"<5"`` for the default threshold 5). When the total is printed, the total minus the printed children gives
    the sum of the hidden ones; so while a reader could still work out a hidden count from
    that sum, the next-smallest printed sibling is hidden too (``"*"``), preferring non-zero
    counts. Zeros print as "0".
    """
    threshold = check_threshold(threshold)
    counts = {str(code): int(v) for code, v in values.items()}
    if any(v < 0 for v in counts.values()):
        raise BadParameter("counts to suppress must not be negative")
    total = sum(counts.values()) if total is None else int(total)
    primary = {c for c, v in counts.items() if is_small(v, threshold)}
    secondary: set[str] = set()
    total_label = small_label(threshold) if is_small(total, threshold) else f"{total:,}"
    # A total that is itself hidden publishes no sum, so nothing can be worked out from it.
    if primary and not is_small(total, threshold):
        # Smallest first (non-zero before zero: a hidden zero protects nothing), then by code.
        candidates = sorted((c for c in counts if c not in primary), key=lambda c: (counts[c] == 0, counts[c], c))
        while True:
            hidden_sum = sum(counts[c] for c in primary | secondary)
            if _feasible(hidden_sum, len(primary), len(secondary), threshold) >= 2:
                break
            if not candidates:
                total_label = SECONDARY_MARK  # nothing left to hide among the siblings
                break
            secondary.add(candidates.pop(0))
    labels = {}
    for code, v in counts.items():
        if code in primary:
            labels[code] = small_label(threshold)
        elif code in secondary:
            labels[code] = SECONDARY_MARK
        else:
            labels[code] = f"{v:,}"
    return Suppressed(labels, frozenset(primary), frozenset(secondary), total_label, threshold)
