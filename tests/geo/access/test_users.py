"""Users in the store: Argon2id hashes, roles and areas, passwords, the first admin, the CLI."""

import io

import pytest

from geo.access import audit, users
from geo.cli.main import main
from geo.errors import AreaNotFound, BadParameter
from geo.store import open_store
from tests.stores import dump, use_location

PASSWORD = "correct horse battery"


@pytest.fixture
def store(new_store):
    return new_store()


def _hash_of(store, name):
    return store.query("SELECT password_hash FROM users WHERE name = ?", (name,))[0][0]


def _as_stored(store) -> bytes:
    """What the store holds: the SQLite file's bytes, or every row of the PostGIS schema."""
    return store.path.read_bytes() if store.dialect == "sqlite" else dump(store).encode()


def test_a_password_is_stored_only_as_an_argon2id_hash(store):
    user = users.add_user(store, "alice", "town", "330212108", PASSWORD)
    assert (user.name, user.role, user.area, user.must_change) == ("alice", "town", "330212108", False)
    stored = _hash_of(store, "alice")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PASSWORD.encode() not in _as_stored(store)
    # Two users with the same password get different hashes (salted).
    users.add_user(store, "bob", "town", "330212108", PASSWORD)
    assert _hash_of(store, "bob") != stored


def test_sign_in_checks_the_password(store):
    users.add_user(store, "alice", "district", "330212", PASSWORD)
    assert users.authenticate(store, "alice", PASSWORD).name == "alice"
    assert users.get_user(store, "alice").last_login_at is not None
    assert users.authenticate(store, "alice", PASSWORD + "x") is None
    assert users.authenticate(store, "alice", "") is None
    assert users.authenticate(store, "nobody", PASSWORD) is None


def test_users_do_not_bump_the_data_version(store):
    before = store.version()
    users.add_user(store, "alice", "city", None, PASSWORD)
    users.authenticate(store, "alice", PASSWORD)
    users.set_password(store, "alice", PASSWORD + "!")
    assert store.version() == before


@pytest.mark.parametrize("password, message", [
    ("short1", "at least 12 characters"),
    ("x" * 257, "at most 256"),
    ("alice-alice-alice", "must not contain the user name"),
    ("abababababababab", "so few characters"),
])
def test_weak_passwords_are_refused(store, password, message):
    with pytest.raises(BadParameter, match=message):
        users.add_user(store, "alice", "city", None, password)
    assert users.get_user(store, "alice") is None


@pytest.mark.parametrize("name", ["a", "x" * 65, "bad name", "semi;colon", "<script>", ""])
def test_bad_user_names_are_refused(store, name):
    with pytest.raises(BadParameter, match="user name"):
        users.add_user(store, name, "city", None, PASSWORD)


def test_role_and_area_are_checked_and_the_area_must_exist(store, atlas):
    with pytest.raises(BadParameter, match="needs a town code"):
        users.add_user(store, "alice", "town", "330212", PASSWORD)
    with pytest.raises(BadParameter, match="unknown role"):
        users.add_user(store, "alice", "superuser", None, PASSWORD)
    with pytest.raises(AreaNotFound, match="330212999"):
        users.add_user(store, "alice", "town", "330212999", PASSWORD, atlas=atlas)
    assert users.add_user(store, "alice", "town", "330212108", PASSWORD, atlas=atlas).area == "330212108"


def test_a_name_is_taken_once(store):
    users.add_user(store, "alice", "city", None, PASSWORD)
    with pytest.raises(BadParameter, match="exists already"):
        users.add_user(store, "alice", "city", None, PASSWORD)


def test_a_new_password_changes_the_stamp_that_open_sessions_carry(store):
    old = users.add_user(store, "alice", "city", None, PASSWORD)
    new = users.set_password(store, "alice", "another long secret")
    assert new.stamp != old.stamp
    assert users.authenticate(store, "alice", PASSWORD) is None
    with pytest.raises(BadParameter, match="no user named 'ghost'"):
        users.set_password(store, "ghost", "another long secret")


def test_changing_ones_own_password_needs_the_current_one(store):
    users.add_user(store, "alice", "city", None, PASSWORD, must_change=True)
    with pytest.raises(BadParameter, match="current password is wrong"):
        users.change_own_password(store, "alice", "wrong password!", "a brand new secret")
    with pytest.raises(BadParameter, match="must differ"):
        users.change_own_password(store, "alice", PASSWORD, PASSWORD)
    changed = users.change_own_password(store, "alice", PASSWORD, "a brand new secret")
    assert not changed.must_change


def test_the_last_admin_cannot_be_removed(store):
    users.add_user(store, "root1", "admin", None, PASSWORD)
    with pytest.raises(BadParameter, match="last admin"):
        users.remove_user(store, "root1")
    users.add_user(store, "root2", "admin", None, PASSWORD)
    users.remove_user(store, "root1")
    assert [u.name for u in users.list_users(store)] == ["root2"]
    with pytest.raises(BadParameter, match="no user named"):
        users.remove_user(store, "root1")


def test_the_demo_admin_is_made_once_with_a_random_one_time_password(store, new_store):
    user, password = users.ensure_demo_admin(store)
    assert user.role == "admin" and user.must_change
    assert len(password) >= 20
    assert users.authenticate(store, "admin", password) is not None
    assert users.ensure_demo_admin(store) == (None, None)
    other, other_password = users.ensure_demo_admin(new_store())
    assert other_password != password  # no password is built in


# --- the CLI -----------------------------------------------------------------------------------

@pytest.fixture
def cli(empty_settings, monkeypatch):
    settings = empty_settings()
    use_location(monkeypatch, settings)
    return open_store(settings)


def _run(monkeypatch, capsys, argv, stdin=""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_adds_lists_changes_and_removes_users(cli, monkeypatch, capsys):
    code, out, _ = _run(monkeypatch, capsys, ["users", "add", "alice", "--role", "town", "--area", "330212108",
                                              "--password-stdin"], PASSWORD + "\n")
    assert code == 0 and "added alice: town 330212108" in out
    assert users.authenticate(cli, "alice", PASSWORD) is not None

    code, out, _ = _run(monkeypatch, capsys, ["users", "list"])
    assert "alice" in out and "town" in out and "330212108" in out and PASSWORD not in out

    code, out, _ = _run(monkeypatch, capsys, ["users", "passwd", "alice", "--password-stdin"], "a new long secret\n")
    assert code == 0 and users.authenticate(cli, "alice", "a new long secret") is not None

    code, out, _ = _run(monkeypatch, capsys, ["users", "remove", "alice"])
    assert code == 0 and users.get_user(cli, "alice") is None

    actions = [e.action for e in audit.entries(cli)]
    assert actions == ["user_removed", "password_reset", "user_added"]
    assert all(e.user.startswith("cli:") for e in audit.entries(cli))


def test_cli_without_a_terminal_generates_a_one_time_password(cli, monkeypatch, capsys):
    code, out, _ = _run(monkeypatch, capsys, ["users", "add", "bob", "--role", "district", "--area", "330212"])
    assert code == 0
    password = out.strip().rsplit(": ", 1)[1]
    assert users.authenticate(cli, "bob", password).must_change


def test_cli_refuses_a_wrong_area_with_a_clear_message(cli, monkeypatch, capsys):
    code, out, err = _run(monkeypatch, capsys, ["users", "add", "bob", "--role", "town", "--area", "330212",
                                                "--password-stdin"], PASSWORD + "\n")
    assert code == 2
    assert "error: area '330212' is not a town code" in err
    assert users.get_user(cli, "bob") is None


def test_ensure_demo_admin_prints_the_password_only_when_it_creates_the_admin(cli, monkeypatch, capsys):
    code, out, _ = _run(monkeypatch, capsys, ["users", "ensure-demo-admin"])
    assert code == 0 and "one-time password" in out
    password = out.split("one-time password: ")[1].split()[0]
    assert users.authenticate(cli, "admin", password) is not None

    code, out, _ = _run(monkeypatch, capsys, ["users", "ensure-demo-admin"])
    assert code == 0 and "no password shown" in out and password not in out


def test_cli_prints_the_audit_log(cli, monkeypatch, capsys):
    audit.record(cli, "alice", "export", "330212108", "ok", {"query": {"metric": "visits"}})
    code, out, _ = _run(monkeypatch, capsys, ["audit", "--limit", "5"])
    assert code == 0 and "alice  export  330212108  ok" in out
