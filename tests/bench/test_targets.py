"""The bench command: which parts run, the scratch copy it works on, its rows and its table.

Correctness only, at the test scale: no timing is asserted (speed is what the bench prints).
"""

import sqlite3
import sys

import pytest

from bench import targets as bench
from bench.targets import PARTS, ROWS_PREFIX, SCRATCH_MARK, parse_parts, print_rows, run_script, scratch_data_dir
from geo.cli.main import main
from geo.errors import BadParameter
from geo.store import open_store
from tests.stores import use_location


@pytest.mark.parametrize("only, skip, expected", [
    (None, None, PARTS),
    ("join,rebuild", None, ("join", "rebuild")),
    ("rebuild, join", None, ("join", "rebuild")),  # the table keeps its own order
    (None, "pages,server", ("join", "rebuild", "memory")),
    ("server,memory", "memory", ("server",)),
])
def test_parts_from_only_and_skip(only, skip, expected):
    assert parse_parts(only, skip) == expected


def test_unknown_part_is_named():
    with pytest.raises(BadParameter, match="unknown bench part 'tiles'; allowed: join, rebuild"):
        parse_parts("join,tiles")


def test_scratch_copy_has_the_counts_and_leaves_the_store_alone(sqlite_demo_settings, tmp_path):
    scratch = scratch_data_dir(sqlite_demo_settings, parent=tmp_path)
    assert (scratch.data_path / SCRATCH_MARK).exists()
    assert scratch.demo_dir.resolve() == sqlite_demo_settings.demo_dir.resolve()
    original = open_store(sqlite_demo_settings)
    copy = open_store(scratch)
    assert copy.version() == original.version()
    with copy.transaction() as con:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('bench_probe', 'x')")
    assert copy.get_meta("bench_probe") == "x"
    assert original.get_meta("bench_probe") is None


def test_join_and_rebuild_rows(sqlite_demo_settings, monkeypatch, tmp_path, capsys):
    use_location(monkeypatch, sqlite_demo_settings)
    monkeypatch.setattr(bench.tempfile, "tempdir", str(tmp_path))  # where the scratch copy goes
    version = open_store(sqlite_demo_settings).version()
    assert main(["bench", "--scale", "0.002", "--seed", "7", "--only", "join,rebuild"]) == 0
    out = capsys.readouterr().out
    table = out[out.rindex("\n\n"):]
    assert "x geopandas.sjoin, 0 mismatches on all" in table and "MB RSS" in table
    assert "rebuild " in table and "s from files to counts served" in table and "x reading the files alone" in table
    check = next(line for line in table.splitlines() if line.startswith("rebuild check"))
    assert "every metric" in check and check.endswith("[ok]")
    assert "load average" in table
    assert "page HTML" not in table and "server:" not in table
    # The rebuild wrote into a scratch copy, which is gone; the user's store did not move.
    assert open_store(sqlite_demo_settings).version() == version
    assert list(tmp_path.iterdir()) == []


def test_script_rows_join_the_table(tmp_path):
    script = tmp_path / "fake_bench.py"
    script.write_text(
        "import json, sys\n"
        "assert sys.argv[1:] == ['--data-dir', 'D', '--json'], sys.argv\n"
        "print('progress', file=sys.stderr)\n"
        f"print({ROWS_PREFIX!r} + json.dumps([['page HTML', '24 kB', 'ok'], ['all grids: transfer', '0.9 MB', 'ok']]))\n")
    assert run_script(script, ["--data-dir", "D"], timeout=60) == [("page HTML", "24 kB", "ok"),
                                                                  ("all grids: transfer", "0.9 MB", "ok")]


def test_a_failed_script_is_a_row_that_says_why(tmp_path):
    script = tmp_path / "broken_bench.py"
    script.write_text("import sys\nprint('no Chromium at /usr/bin/chromium', file=sys.stderr)\nsys.exit(2)\n")
    rows = run_script(script, [], timeout=60)
    assert rows == [("broken_bench.py", "failed: no Chromium at /usr/bin/chromium", "not measured")]


def test_table_prints_targets_in_brackets(capsys):
    print_rows([("join", "9.8 M pts/s, 12.3x geopandas.sjoin, 0 mismatches", "≥ 10x, 0 mismatches: ok"),
                ("read events file", "12.13 M points", "-")], sys.stdout)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "join              9.8 M pts/s, 12.3x geopandas.sjoin, 0 mismatches  [≥ 10x, 0 mismatches: ok]"
    assert lines[1] == "read events file  12.13 M points"


def test_scratch_store_is_a_real_sqlite_copy(sqlite_demo_settings, tmp_path):
    scratch = scratch_data_dir(sqlite_demo_settings, parent=tmp_path)
    con = sqlite3.connect(scratch.store_path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
