"""Jurisdiction (Scope) and small-count suppression for exports."""

import itertools
import random

import pytest

from geo.access.scope import PERMISSIONS, SECONDARY_MARK, Scope, check_role_area, suppress_counts
from geo.errors import BadParameter, Forbidden

CITY, YINZHOU, YUNLONG, JIACUN = "330200", "330212", "330212108", "330212108001"
HAISHU, HAISHU_TOWN = "330203", "330203001"
GRID = JIACUN + "003"


# --- roles and areas ---------------------------------------------------------------------------

@pytest.mark.parametrize("role, area, expected", [
    ("admin", None, CITY), ("admin", CITY, CITY), ("city", "", CITY),
    ("district", YINZHOU, YINZHOU), ("town", YUNLONG, YUNLONG), ("town", " 330212108 ", YUNLONG),
])
def test_each_role_is_bound_to_an_area_of_its_level(role, area, expected):
    assert check_role_area(role, area) == expected


@pytest.mark.parametrize("role, area, message", [
    ("mayor", None, "unknown role 'mayor'; allowed: admin, city, district, town"),
    ("city", YINZHOU, "covers the whole city"),
    ("district", None, "needs --area, a district code of 6 digits"),
    ("district", YUNLONG, "not a district code"),
    ("district", CITY, "not a district code"),
    ("town", YINZHOU, "not a town code"),
    ("town", JIACUN, "not a town code"),
    ("town", "33021210x", "not a town code"),
])
def test_a_role_with_the_wrong_area_is_refused(role, area, message):
    with pytest.raises(BadParameter, match=message.replace("(", r"\(")):
        check_role_area(role, area)


def test_only_admins_may_import_and_manage_users():
    assert [r for r, perms in PERMISSIONS.items() if "import" in perms] == ["admin"]
    assert [r for r, perms in PERMISSIONS.items() if "manage_users" in perms] == ["admin"]
    assert all({"view", "export"} <= perms for perms in PERMISSIONS.values())
    with pytest.raises(Forbidden, match="role 'city' may not import records"):
        Scope("city", CITY).require("import")
    Scope("admin", CITY).require("import")


# --- what a scope sees -------------------------------------------------------------------------

def test_a_town_official_sees_their_town_and_everything_inside_it():
    town = Scope("town", YUNLONG, "alice")
    for code in (YUNLONG, JIACUN, GRID):
        assert town.can_see(code) and town.check(code) == code
    for code in (CITY, YINZHOU, HAISHU, HAISHU_TOWN, "330212102", "330212102001", "330212"):
        assert not town.can_see(code)
        with pytest.raises(Forbidden, match=r"outside the jurisdiction of user alice \(town 330212108\)"):
            town.check(code)


def test_a_district_official_sees_their_district_only():
    district = Scope("district", YINZHOU)
    assert all(district.can_see(c) for c in (YINZHOU, YUNLONG, JIACUN, GRID))
    assert not any(district.can_see(c) for c in (CITY, HAISHU, HAISHU_TOWN, "330203001001"))


@pytest.mark.parametrize("code", ["", "33021210800", "../330212108", "330212108/../330203", None, 330212108,
                                  "３３０２１２１０１"])
def test_malformed_codes_are_outside_every_scope_but_the_city(code):
    assert not Scope("town", YUNLONG).can_see(code)
    assert not Scope("district", YINZHOU).can_see(code)


def test_city_and_admin_see_everything():
    for role in ("city", "admin"):
        scope = Scope(role, CITY)
        assert scope.is_city and scope.search_within is None
        assert all(scope.can_see(c) for c in (CITY, YINZHOU, HAISHU_TOWN, GRID))


def test_a_listing_of_an_ancestor_is_cut_to_the_scope_and_a_foreign_one_is_refused():
    town = Scope("town", YUNLONG)
    assert town.listing_root(CITY) == YUNLONG
    assert town.listing_root(YINZHOU) == YUNLONG
    assert town.listing_root(JIACUN) == JIACUN
    with pytest.raises(Forbidden):
        town.listing_root(HAISHU)
    with pytest.raises(Forbidden):
        town.listing_root("330212102")
    assert town.search_within == YUNLONG


def test_filters_keep_only_areas_inside_the_scope():
    town = Scope("town", YUNLONG)
    assert town.filter_codes([YINZHOU, YUNLONG, "330212102", JIACUN]) == [YUNLONG, JIACUN]
    rows = [{"code": c, "name": n} for c, n in [(YINZHOU, "鄞州区"), (YUNLONG, "云龙镇"), ("330212102", "x")]]
    assert town.filter_rows(rows) == [rows[1]]
    fc = {"type": "FeatureCollection", "zoom": 8, "features": [
        {"type": "Feature", "properties": {"code": c}, "geometry": None} for c in (YUNLONG, "330212102", HAISHU_TOWN)]}
    kept = town.filter_collection(fc)
    assert [f["properties"]["code"] for f in kept["features"]] == [YUNLONG]
    assert kept["zoom"] == 8 and len(fc["features"]) == 3  # the input is not changed
    assert Scope("city", CITY).filter_collection(fc) is fc


def test_a_scope_cannot_be_made_with_a_wrong_area():
    with pytest.raises(BadParameter):
        Scope("town", YINZHOU)


# --- small-count suppression -------------------------------------------------------------------

def test_counts_below_the_threshold_print_as_less_than_five():
    s = suppress_counts({"a": 0, "b": 1, "c": 4, "d": 5, "e": 1234}, threshold=5, total=None)
    assert s.labels["a"] == "0"
    assert s.labels["b"] == "<5" and s.labels["c"] == "<5"
    assert s.labels["d"] in ("5", SECONDARY_MARK)  # 5 is not "<5"
    assert s.labels["e"] == "1,234"
    assert s.primary == {"b", "c"}
    assert s.note("en").startswith("Counts from 1 to 4 are shown as <5")
    assert s.note("zh").startswith("1 至 4 的数字显示为 <5")


def test_the_threshold_is_a_setting():
    s = suppress_counts({"a": 8, "b": 9, "c": 10, "d": 40}, threshold=10)
    assert s.labels["a"] == "<10" and s.labels["b"] == "<10" and s.labels["c"] in ("10", "*")
    for bad in (0, 1, 2.5, True):
        with pytest.raises(BadParameter, match=f"threshold {bad!r}"):
            suppress_counts({"a": 1}, threshold=bad)


def test_one_small_grid_hides_the_next_smallest_sibling_so_the_total_does_not_reveal_it():
    grids = {"g1": 3, "g2": 40, "g3": 17, "g4": 120}
    s = suppress_counts(grids, threshold=5, total=180)
    assert s.labels == {"g1": "<5", "g2": "40", "g3": SECONDARY_MARK, "g4": "120"}
    assert s.total_label == "180"
    # What a reader can work out: the total minus the printed grids.
    shown = sum(v for c, v in grids.items() if c not in s.hidden)
    assert 180 - shown == 20 != 3


def test_a_hidden_zero_protects_nothing_so_a_non_zero_sibling_is_hidden():
    s = suppress_counts({"a": 2, "b": 0, "c": 0, "d": 30}, threshold=5)
    assert s.secondary == {"d"}


def test_no_secondary_suppression_when_the_total_is_small_itself():
    s = suppress_counts({"a": 2, "b": 1, "c": 0}, threshold=5)
    assert s.total_label == "<5"
    assert s.secondary == frozenset()


def test_two_small_counts_that_could_be_told_apart_by_their_sum_get_a_secondary():
    # 1 + 1 = 2: both hidden cells must be 1, unless a third cell is hidden too.
    s = suppress_counts({"a": 1, "b": 1, "c": 50, "d": 60}, threshold=5)
    assert s.secondary == {"c"}
    # 2 + 2 = 4 could be 1+3, 2+2 or 3+1: no secondary needed.
    assert suppress_counts({"a": 2, "b": 2, "c": 50}, threshold=5).secondary == frozenset()


def test_when_the_siblings_cannot_protect_a_count_the_total_is_hidden():
    s = suppress_counts({"a": 3}, threshold=5, total=30)
    assert s.total_label == SECONDARY_MARK


def _solutions(labels, values, total, threshold):
    """Every assignment of the hidden cells a reader could believe, from what is printed."""
    hidden = [c for c in labels if labels[c] in (f"<{threshold}", SECONDARY_MARK)]
    rest = total - sum(v for c, v in values.items() if c not in hidden)
    ranges = [range(1, threshold) if labels[c] != SECONDARY_MARK else
              [0] + list(range(threshold, rest + 1)) for c in hidden]
    return hidden, [combo for combo in itertools.product(*ranges) if sum(combo) == rest]


def test_no_small_count_can_be_worked_out_from_the_total_in_random_groups():
    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(1, 6)
        values = {f"c{i}": rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 7, 12, 25, 60]) for i in range(n)}
        total = sum(values.values())
        s = suppress_counts(values, threshold=5, total=total)
        if s.total_label != f"{total:,}" or not s.primary:
            continue
        hidden, solutions = _solutions(s.labels, values, total, 5)
        for i, code in enumerate(hidden):
            if code in s.primary:
                possible = {sol[i] for sol in solutions}
                assert len(possible) >= 2, (values, s.labels, code, possible)


# --- suppression in map exports ----------------------------------------------------------------

def test_a_suppressed_export_prints_no_small_count_and_no_total_that_gives_one_away(demo_settings):
    from geo.export.exporter import map_data, parse_options
    from geo.query.service import AtlasService

    service = AtlasService(demo_settings)
    threshold = demo_settings.small_count_threshold
    checked = 0
    for town in service.atlas.children("330212")["code"]:
        options = parse_options(town, "png", {"metric": "visits", "suppress": "1"})
        data = map_data(service, options)
        values = dict(zip(data.labels["code"], data.labels["value"].astype(int)))
        small = [c for c, v in values.items() if 1 <= v < threshold]
        if not small:
            continue
        checked += 1
        assert all(data.printed[c] == f"<{threshold}" for c in small)
        hidden = [c for c in values if not data.printed[c].replace(",", "").isdigit()]
        assert len(hidden) >= 2 or data.total_text is not None
        assert "<5" in data.suppression_note
        assert set(data.classes.labels()) & {"<5"}  # one class for every small count
        plain = map_data(service, parse_options(town, "png", {"metric": "visits"}))
        assert plain.printed is None and plain.total_text is None
    assert checked > 0
