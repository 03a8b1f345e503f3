"""The audit log: who exported or imported what, signed in, or was refused, and when.

Entries live in the store's ``audit_log`` table and are only ever appended (no function here
updates or deletes one). Each has a UTC time, the user (``cli:<os user>`` for the command line),
an action, its target (an area code, a file name), the outcome (``ok``, ``refused``,
``failed`` or an HTTP status) and a JSON detail (the query, the import report's counts). No
entry holds a password or a record's coordinates.

Writing an entry does not bump the store's data version.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from dataclasses import dataclass

from geo.store import Store

ACTIONS = ("login", "login_failed", "logout", "password_changed", "export", "import", "boundary_update",
           "user_added", "user_removed", "password_reset", "forbidden",
           "wall_device_issued", "wall_device_revoked", "wall_device_claimed", "wall_device_refused")
MAX_TEXT = 500


@dataclass(frozen=True)
class Entry:
    """One line of the audit log."""

    id: int
    at: str
    user: str
    action: str
    target: str
    outcome: str
    detail: dict
    client: str | None

    def line(self) -> str:
        """One readable line: time, user, action, target, outcome."""
        extra = f" {json.dumps(self.detail, ensure_ascii=False, sort_keys=True)}" if self.detail else ""
        client = f" from {self.client}" if self.client else ""
        return f"{self.at}  {self.user}  {self.action}  {self.target}  {self.outcome}{client}{extra}"


def cli_user() -> str:
    """Who runs the command line, as the audit log names them."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli:unknown"


def _clip(value) -> str:
    text = "" if value is None else str(value)
    return text[:MAX_TEXT]


def record(store: Store, user: str, action: str, target: str = "", outcome: str = "ok",
           detail: dict | None = None, client: str | None = None) -> None:
    """Append one entry. Long texts are cut to 500 characters, so a crafted query cannot
    flood the log."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; allowed: {', '.join(ACTIONS)}")
    body = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, default=str)[:4 * MAX_TEXT]
    at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with store.transaction(bump_version=False) as con:
        con.execute('INSERT INTO audit_log (at, "user", action, target, outcome, detail, client) '
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (at, _clip(user), action, _clip(target), _clip(outcome), body, _clip(client) or None))


def entries(store: Store, *, limit: int = 100, user: str | None = None, action: str | None = None) -> list[Entry]:
    """The latest entries, newest first, optionally of one user or one action."""
    # "user" is quoted: PostgreSQL reserves the word.
    sql = 'SELECT id, at, "user", action, target, outcome, detail, client FROM audit_log'
    where, params = [], []
    if user:
        where.append('"user" = ?')
        params.append(user)
    if action:
        where.append("action = ?")
        params.append(action)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(int(limit))
    rows = store.query(sql, params)
    out = []
    for id_, at, who, act, target, outcome, detail, client in rows:
        try:
            parsed = json.loads(detail)
        except ValueError:
            parsed = {"raw": detail}
        out.append(Entry(id_, at, who, act, target, outcome, parsed, client))
    return out
