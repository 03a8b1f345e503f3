"""User accounts, kept in the store's ``users`` table.

Passwords are stored only as Argon2id hashes (argon2-cffi, RFC 9106 parameters); a hash made
with weaker parameters is upgraded at the next successful login. Each user has a role and an
area (see :mod:`geo.scope`). There is no default account: ``python -m geo users add`` makes
one, and ``python -m geo users ensure-demo-admin`` (run by ``make run``) makes a first admin
with a random one-time password, printed once and to be changed at the first login.

Writes here do not bump the store's data version: a new user changes no count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from geo.access.scope import ROLES, Scope, check_role_area
from geo.errors import BadParameter
from geo.store import Store

MIN_PASSWORD = 12
MAX_PASSWORD = 256
NAME_RE = re.compile(r"[\w.@-]{2,64}")
DEMO_ADMIN = "admin"

_hasher = PasswordHasher()
# Verified against when the user name is unknown, so that a wrong name takes as long as a
# wrong password and the login form does not reveal which names exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class User:
    """One account (never carries the password hash out of this module)."""

    name: str
    role: str
    area: str
    must_change: bool
    created_at: str
    password_changed_at: str
    last_login_at: str | None
    stamp: str  # changes with the password: signed-in sessions of an older password end

    @property
    def scope(self) -> Scope:
        """The user's jurisdiction."""
        return Scope.for_user(self)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


def check_name(name: str) -> str:
    """The user name, or BadParameter: 2 to 64 letters, digits or ``_ . @ -``."""
    name = (name or "").strip()
    if not NAME_RE.fullmatch(name):
        raise BadParameter(f"user name {name!r} must be 2 to 64 letters, digits or _ . @ -")
    return name


def check_password(password: str, name: str = "") -> str:
    """The password, or BadParameter when it is too short, too long or the user name."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise BadParameter(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise BadParameter(f"the password must have at most {MAX_PASSWORD} characters")
    if name and name.lower() in password.lower():
        raise BadParameter("the password must not contain the user name")
    if len(set(password)) < 4:
        raise BadParameter("the password must not repeat so few characters")
    return password


def generate_password() -> str:
    """A random password of 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)


def _row_to_user(row) -> User:
    name, role, area, password_hash, must_change, created, changed, last = row
    return User(name, role, area, bool(must_change), created, changed, last, _stamp(password_hash))


_COLUMNS = "name, role, area, password_hash, must_change, created_at, password_changed_at, last_login_at"


def get_user(store: Store, name: str) -> User | None:
    """The user called ``name``, or None (asked on every signed-in request)."""
    rows = store.query(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,))
    return _row_to_user(rows[0]) if rows else None


def list_users(store: Store) -> list[User]:
    """Every user, by name."""
    con = store.connect()
    try:
        rows = con.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()
    finally:
        con.close()
    return [_row_to_user(r) for r in rows]


def add_user(store: Store, name: str, role: str, area: str | None, password: str, *,
             must_change: bool = False, atlas=None) -> User:
    """Create a user; BadParameter for a taken name, an unknown role, a wrong area or a weak
    password. With ``atlas`` the area must also exist (AreaNotFound otherwise)."""
    name = check_name(name)
    area = check_role_area(role, area)
    if atlas is not None:
        atlas.get(area)
    check_password(password, name)
    now = _now()
    with store.transaction(bump_version=False) as con:
        if con.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise BadParameter(f"user {name!r} exists already; use `users passwd {name}` to change the password")
        con.execute(f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (name, role, area, _hasher.hash(password), int(must_change), now, now))
    return get_user(store, name)


def remove_user(store: Store, name: str) -> None:
    """Delete a user; BadParameter when there is none, or when it is the last admin."""
    with store.transaction(bump_version=False) as con:
        row = con.execute("SELECT role FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise BadParameter(f"no user named {name!r}")
        if row[0] == "admin" and con.execute("SELECT COUNT(*) FROM users WHERE role = 'admin'").fetchone()[0] == 1:
            raise BadParameter(f"{name!r} is the last admin; add another admin first")
        con.execute("DELETE FROM users WHERE name = ?", (name,))


def set_password(store: Store, name: str, password: str, *, must_change: bool = False) -> User:
    """Replace a user's password (their open sessions end); BadParameter for an unknown user
    or a weak password."""
    check_password(password, name)
    with store.transaction(bump_version=False) as con:
        updated = con.execute(
            "UPDATE users SET password_hash = ?, must_change = ?, password_changed_at = ? WHERE name = ?",
            (_hasher.hash(password), int(must_change), _now(), name)).rowcount
    if not updated:
        raise BadParameter(f"no user named {name!r}")
    return get_user(store, name)


def change_own_password(store: Store, name: str, current: str, new: str) -> User:
    """A signed-in user's own change: the current password must match and the new one differ."""
    if authenticate(store, name, current, record_login=False) is None:
        raise BadParameter("the current password is wrong")
    if new == current:
        raise BadParameter("the new password must differ from the current one")
    return set_password(store, name, new)


def authenticate(store: Store, name: str, password: str, *, record_login: bool = True) -> User | None:
    """The user when ``password`` is theirs, else None (an unknown name takes as long)."""
    con = store.connect()
    try:
        row = con.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
    finally:
        con.close()
    stored = row[0] if row else _DUMMY_HASH
    try:
        _hasher.verify(stored, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(stored) or record_login:
        with store.transaction(bump_version=False) as con:
            if _hasher.check_needs_rehash(stored):
                con.execute("UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                            (_hasher.hash(password), name, stored))
            if record_login:
                con.execute("UPDATE users SET last_login_at = ? WHERE name = ?", (_now(), name))
    return get_user(store, name)


def ensure_demo_admin(store: Store, name: str = DEMO_ADMIN) -> tuple[User | None, str | None]:
    """Make a first admin when there is no admin yet: (user, its one-time password). The
    password is random, shown only by this call, and must be changed at the first login.
    When an admin exists: (None, None), and nothing changes."""
    con = store.connect()
    try:
        exists = con.execute("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1").fetchone()
    finally:
        con.close()
    if exists:
        return None, None
    password = generate_password()
    return add_user(store, name, "admin", None, password, must_change=True), password


__all__ = ["DEMO_ADMIN", "MIN_PASSWORD", "ROLES", "User", "add_user", "authenticate", "change_own_password",
           "check_name", "check_password", "ensure_demo_admin", "generate_password", "get_user", "list_users",
           "remove_user", "set_password"]
