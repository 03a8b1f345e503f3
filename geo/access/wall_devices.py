"""Wall devices: long-lived, revocable logins for the unattended screens of the command centre.

A person's session ends after ``session_hours`` however active; a video wall must run for days.
An administrator issues a *device token* for one screen instead::

    python -m geo users wall-token hall-left --area 330200 --days 30

The token (256 random bits) is shown once, inside the URL to open on the wall PC
(``/wall/device#token=…``); the store keeps only its SHA-256 hash. The token is in the URL's
fragment, which browsers never send to a server, so it is not written to any access log or
proxy log; the page's script posts it (with the CSRF token) and gets a session cookie bound to
the device. A token can be *claimed* once: a second use is refused, so a copy of the URL that
leaks after installation is worth nothing.

The device's session is a wall, not a person: it opens only the wall and the JSON endpoints the
wall draws from (``web/auth.py`` keeps that list), only for the device's area (the city or one
district), and lasts while it keeps polling (it ends after ``wall_device_idle_hours`` without a
request), until the token expires or is revoked, whichever comes first. Revoking, or issuing a
new token under the same name, ends the device's session at its next request.

Times are UTC; every function takes ``now`` so tests can move the clock. Writes here do not
bump the store's data version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from geo.access.scope import Scope, check_role_area
from geo.access.users import check_name
from geo.atlas.hierarchy import CITY_CODE
from geo.errors import BadParameter, Forbidden
from geo.store import Store, StoreBusy

DEFAULT_DAYS = 30
MAX_DAYS = 366
# last_seen_at is written at most this often (a wall polls every 30 s; the store need not know each poll).
SEEN_EVERY = dt.timedelta(minutes=5)
# The refusals a device can meet, for messages and the audit log.
REASONS = ("unknown", "expired", "revoked", "used", "replaced")


class DeviceRefused(Forbidden):
    """A device token or device session that does not (or no longer) open the wall. ``reason``
    is one of :data:`REASONS`; the message says what to do."""

    def __init__(self, reason: str, message: str, device: "Device | None" = None):
        super().__init__(message)
        self.reason = reason
        self.device = device


@dataclass(frozen=True)
class Device:
    """One wall device (never carries the token or its hash out of this module, only ``stamp``)."""

    name: str
    area: str
    created_at: str
    expires_at: str
    revoked_at: str | None
    claimed_at: str | None
    claimed_from: str | None
    last_seen_at: str | None
    stamp: str  # changes with every new token: sessions of an older token end

    @property
    def role(self) -> str:
        """The role whose jurisdiction the device has: ``city`` or ``district``."""
        return "city" if self.area == CITY_CODE else "district"

    @property
    def scope(self) -> Scope:
        """The device's jurisdiction (its area's subtree)."""
        return Scope(self.role, self.area, f"wall:{self.name}")

    def state(self, now: dt.datetime | None = None) -> str:
        """``active``, ``issued`` (not yet claimed), ``expired`` or ``revoked``."""
        if self.revoked_at:
            return "revoked"
        if _parse(self.expires_at) <= _now(now):
            return "expired"
        return "active" if self.claimed_at else "issued"


def _now(now: dt.datetime | None = None) -> dt.datetime:
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def token_hash(token: str) -> str:
    """The SHA-256 of a token, as stored (a 256-bit random token needs no slow hash)."""
    return hashlib.sha256((token or "").encode("utf-8")).hexdigest()


def _stamp(hashed: str) -> str:
    return hashlib.sha256(("stamp:" + hashed).encode("ascii")).hexdigest()[:16]


_COLUMNS = "name, area, token_hash, created_at, expires_at, revoked_at, claimed_at, claimed_from, last_seen_at"


def _row(row) -> Device:
    name, area, hashed, created, expires, revoked, claimed, claimed_from, seen = row
    return Device(name, area, created, expires, revoked, claimed, claimed_from, seen, _stamp(hashed))


def check_area(area: str | None, atlas=None) -> str:
    """The area a wall device may show: the city (default) or one district; else BadParameter
    (with ``atlas``, an unknown code is AreaNotFound)."""
    area = (area or "").strip() or CITY_CODE
    if area != CITY_CODE:
        try:
            check_role_area("district", area)
        except BadParameter:
            raise BadParameter(f"wall device area {area!r} must be the city {CITY_CODE} or a district code "
                               f"of 6 digits (the wall shows the city or one district)") from None
    if atlas is not None:
        atlas.get(area)
    return area


def issue(store: Store, name: str, area: str | None = None, days: int = DEFAULT_DAYS, *,
          now: dt.datetime | None = None, atlas=None) -> tuple[Device, str]:
    """Create a device (or give an existing one a new token): (device, token). The token is
    returned only here; a new token ends the sessions of the old one and clears a revocation."""
    try:
        name = check_name(name)
    except BadParameter:
        raise BadParameter(f"wall device name {name!r} must be 2 to 64 letters, digits or _ . @ -") from None
    area = check_area(area, atlas)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise BadParameter(f"days {days!r} must be a whole number from 1 to {MAX_DAYS}")
    token = secrets.token_urlsafe(32)
    t = _now(now)
    with store.transaction(bump_version=False) as con:
        con.execute("DELETE FROM wall_devices WHERE name = ?", (name,))
        con.execute(f"INSERT INTO wall_devices ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
                    (name, area, token_hash(token), _iso(t), _iso(t + dt.timedelta(days=days))))
    return get_device(store, name), token


def get_device(store: Store, name: str) -> Device | None:
    """The device called ``name``, or None (asked on every request of a device's session)."""
    rows = store.query(f"SELECT {_COLUMNS} FROM wall_devices WHERE name = ?", (name,))
    return _row(rows[0]) if rows else None


def list_devices(store: Store) -> list[Device]:
    """Every device, by name."""
    con = store.connect()
    try:
        rows = con.execute(f"SELECT {_COLUMNS} FROM wall_devices ORDER BY name").fetchall()
    finally:
        con.close()
    return [_row(r) for r in rows]


def revoke(store: Store, name: str, *, now: dt.datetime | None = None) -> Device:
    """Revoke a device: its session ends at its next request. BadParameter for an unknown name."""
    with store.transaction(bump_version=False) as con:
        updated = con.execute("UPDATE wall_devices SET revoked_at = COALESCE(revoked_at, ?) WHERE name = ?",
                              (_iso(_now(now)), name)).rowcount
    if not updated:
        raise BadParameter(f"no wall device named {name!r}; see `python -m geo users wall-token --list`")
    return get_device(store, name)


def _refuse_state(device: Device, now: dt.datetime) -> None:
    state = device.state(now)
    if state == "revoked":
        raise DeviceRefused("revoked", f"wall device {device.name!r} was revoked on {device.revoked_at[:10]}; "
                            "an administrator can issue a new link", device)
    if state == "expired":
        raise DeviceRefused("expired", f"the link of wall device {device.name!r} expired on "
                            f"{device.expires_at[:10]}; an administrator can issue a new link", device)


def claim(store: Store, token: str, client: str | None = None, *, now: dt.datetime | None = None) -> Device:
    """Exchange a token for its device, once. Raises DeviceRefused for an unknown, expired,
    revoked or already claimed token."""
    t = _now(now)
    hashed = token_hash(token)
    with store.transaction(bump_version=False) as con:
        row = con.execute(f"SELECT {_COLUMNS} FROM wall_devices WHERE token_hash = ?", (hashed,)).fetchone()
        if row is None:
            raise DeviceRefused("unknown", "this wall link is not valid (mistyped, or replaced by a newer "
                                "link); ask an administrator for a new one")
        device = _row(row)
        _refuse_state(device, t)
        if device.claimed_at:
            raise DeviceRefused("used", f"this wall link was already used on {device.claimed_at[:16]} "
                                f"(each link opens one screen once); ask an administrator for a new one", device)
        con.execute("UPDATE wall_devices SET claimed_at = ?, claimed_from = ?, last_seen_at = ? WHERE name = ?",
                    (_iso(t), (client or "")[:100] or None, _iso(t), device.name))
    return get_device(store, device.name)


def check_session(store: Store, name: str, stamp: str, *, now: dt.datetime | None = None) -> Device:
    """The device of a device session, still valid; else DeviceRefused (unknown or replaced
    token, expired, revoked). Notes when it was last seen (at most every few minutes)."""
    t = _now(now)
    device = get_device(store, name)
    if device is None or device.stamp != stamp:
        raise DeviceRefused("replaced", f"the login of wall device {name!r} was replaced or removed; "
                            "an administrator can issue a new link", device)
    _refuse_state(device, t)
    if device.last_seen_at is None or t - _parse(device.last_seen_at) >= SEEN_EVERY:
        _touch(store, name, t)
    return device


def _touch(store: Store, name: str, t: dt.datetime) -> None:
    """Write last_seen_at, but never wait for a long import to commit: a poll must not hang."""
    try:
        with store.transaction(bump_version=False, wait_seconds=0.2) as con:
            con.execute("UPDATE wall_devices SET last_seen_at = ? WHERE name = ?", (_iso(t), name))
    except StoreBusy:
        pass  # another writer holds the store: the next poll notes it


__all__ = ["DEFAULT_DAYS", "Device", "DeviceRefused", "MAX_DAYS", "check_area", "check_session", "claim",
           "get_device", "issue", "list_devices", "revoke", "token_hash"]
