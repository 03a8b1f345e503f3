"""The audit log: appended entries, newest first, filtered; CLI imports and exports land in it."""

import pytest

from geo.access import audit
from geo.cli.users import audit_command
from geo.store import open_store


@pytest.fixture
def store(new_store):
    return new_store()


def test_entries_come_back_newest_first_and_can_be_filtered(store):
    audit.record(store, "alice", "login", "alice", client="10.0.0.7")
    audit.record(store, "alice", "export", "330212108", "ok", {"query": {"metric": "visits"}})
    audit.record(store, "bob", "import", "visits.csv", "failed: InputFileError")
    got = audit.entries(store)
    assert [(e.user, e.action, e.target, e.outcome) for e in got] == [
        ("bob", "import", "visits.csv", "failed: InputFileError"),
        ("alice", "export", "330212108", "ok"),
        ("alice", "login", "alice", "ok"),
    ]
    assert got[1].detail == {"query": {"metric": "visits"}}
    assert got[2].client == "10.0.0.7"
    assert got[0].at.endswith("+00:00")  # UTC
    assert [e.action for e in audit.entries(store, user="alice")] == ["export", "login"]
    assert [e.user for e in audit.entries(store, action="import")] == ["bob"]
    assert len(audit.entries(store, limit=1)) == 1


def test_long_values_are_cut_and_unknown_actions_refused(store):
    audit.record(store, "x" * 5000, "export", "y" * 5000, "ok", {"q": "z" * 10000})
    entry = audit.entries(store)[0]
    assert len(entry.user) == 500 and len(entry.target) == 500
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(store, "alice", "delete_everything")


def test_writing_the_log_does_not_bump_the_data_version(store):
    before = store.version()
    audit.record(store, "alice", "export", "330200")
    assert store.version() == before


def test_the_log_is_a_table_of_the_store(store):
    audit.record(store, "alice", "export", "330200")
    assert store.query('SELECT "user", action FROM audit_log') == [("alice", "export")]


def test_cli_imports_and_exports_are_audited_but_dry_runs_are_not(empty_settings):
    from argparse import Namespace

    settings = empty_settings()
    audit_command(Namespace(command="ingest", file="visits.csv", metric="visits", func=None), settings, "ok")
    audit_command(Namespace(command="grids", file="grids.gpkg", area="330212108", dry_run=True, func=None),
                  settings, "ok")
    audit_command(Namespace(command="export", area="330212", within="330200", file=None, func=None), settings,
                  "failed: BadParameter")
    audit_command(Namespace(command="status", func=None), settings, "ok")
    got = audit.entries(open_store(settings))
    assert [(e.action, e.target, e.outcome) for e in got] == [
        ("export", "330212", "failed: BadParameter"), ("import", "visits.csv", "ok")]
    assert got[1].user.startswith("cli:") and got[1].detail["metric"] == "visits"
