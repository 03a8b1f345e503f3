import pytest

from geo.atlas.hierarchy import ancestor_codes, child_level, level_of, parent_code
from geo.errors import BadParameter


@pytest.mark.parametrize("code, level, parent", [
    ("330200", "city", None),
    ("330212", "district", "330200"),
    ("330212108", "town", "330212"),
    ("330212108001", "village", "330212108"),
    ("330212108001003", "grid", "330212108001"),
])
def test_levels_and_parents(code, level, parent):
    assert level_of(code) == level
    assert parent_code(code) == parent


def test_ancestors_run_from_city_to_grid():
    assert ancestor_codes("330212108001003") == ["330200", "330212", "330212108", "330212108001", "330212108001003"]
    assert child_level("village") == "grid" and child_level("grid") is None


@pytest.mark.parametrize("bad, match", [("33021", "5 digits"), ("abc", "not a string of digits"), ("", "not a string of digits")])
def test_bad_codes_are_named(bad, match):
    with pytest.raises(BadParameter, match=match):
        level_of(bad)
