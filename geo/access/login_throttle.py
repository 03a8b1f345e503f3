"""Failed-login limits kept in the store, so every web process shares them.

Two keys are counted for each sign-in attempt, in a sliding window of
``login_window_minutes``:

* the account name (lower-cased): ``login_attempts`` failures lock that account, whoever
  tries and from however many addresses (a distributed guess at one account);
* the client address: ``4 × login_attempts`` failures lock that address for every account
  (one machine guessing many names; a whole office behind one address still has room).

An attempt is counted *before* its password is checked (:func:`begin`), inside one
``BEGIN IMMEDIATE`` transaction, so several processes or threads cannot together run more
checks than the limit. A successful sign-in takes its own mark back and clears the account's
failures (:func:`succeeded`); the address keeps its failures, so signing in to one's own
account does not buy more guesses at others.

Rows are (key, time) pairs in the store's ``login_failures`` table; rows older than the window
are deleted as new ones arrive. Times are wall-clock seconds (``time.time``), shared by all
processes on the machine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from geo.store import Store

# A client address may fail this many times the per-account limit.
CLIENT_FACTOR = 4


@dataclass(frozen=True)
class Limits:
    """How many failures each key may have in ``window_seconds``."""

    attempts: int
    window_seconds: float

    @classmethod
    def from_settings(cls, settings) -> "Limits":
        """The limits of :class:`geo.settings.Settings` (``login_attempts``, ``login_window_minutes``)."""
        return cls(int(settings.login_attempts), float(settings.login_window_minutes) * 60)

    @property
    def per_client(self) -> int:
        """Failures allowed per client address."""
        return self.attempts * CLIENT_FACTOR


@dataclass(frozen=True)
class Lockout:
    """A refused attempt: which key is locked and for how many more seconds."""

    key: str
    retry_after: int  # whole seconds, at least 1

    @property
    def minutes(self) -> int:
        """The wait in whole minutes, rounded up (for messages)."""
        return max(1, math.ceil(self.retry_after / 60))

    @property
    def kind(self) -> str:
        """``account`` or ``client``."""
        return self.key.split(":", 1)[0] if ":" in self.key else self.key


@dataclass(frozen=True)
class Attempt:
    """An attempt that was let through; its marks are failures until :func:`succeeded`."""

    name_key: str
    client_key: str
    at: float


def name_key(name: str) -> str:
    """The key of an account name (names are compared without case)."""
    return f"account:{(name or '').strip().lower()[:64]}"


def client_key(client: str) -> str:
    """The key of a client address."""
    return f"client:{(client or '-')[:64]}"


def _retry_after(times: list[float], limit: int, window: float, now: float) -> int | None:
    """Seconds until a key with failure ``times`` (ascending) is below ``limit`` again; None when it is."""
    if len(times) < limit:
        return None
    # The key frees up when enough of its oldest failures leave the window.
    frees_at = times[len(times) - limit] + window
    return max(1, math.ceil(frees_at - now))


def _times(con, key: str, since: float) -> list[float]:
    rows = con.execute("SELECT at FROM login_failures WHERE key = ? AND at > ? ORDER BY at", (key, since))
    return [r[0] for r in rows]


def begin(store: Store, name: str, client: str, limits: Limits, now: float | None = None) -> Attempt | Lockout:
    """Count one sign-in attempt for ``name`` from ``client``, or refuse it.

    Returns a :class:`Lockout` (nothing counted) when the account or the address has used up
    its failures in the window; else an :class:`Attempt` whose marks stay as failures unless
    :func:`succeeded` takes them back.
    """
    now = time.time() if now is None else float(now)
    since = now - limits.window_seconds
    nk, ck = name_key(name), client_key(client)
    with store.transaction(bump_version=False) as con:
        con.execute("DELETE FROM login_failures WHERE at <= ?", (since,))
        for key, limit in ((nk, limits.attempts), (ck, limits.per_client)):
            wait = _retry_after(_times(con, key, since), limit, limits.window_seconds, now)
            if wait is not None:
                return Lockout(key, wait)
        con.executemany("INSERT INTO login_failures (key, at) VALUES (?, ?)", [(nk, now), (ck, now)])
    return Attempt(nk, ck, now)


def succeeded(store: Store, attempt: Attempt) -> None:
    """The attempt signed in: clear the account's failures and take back the address's mark."""
    with store.transaction(bump_version=False) as con:
        con.execute("DELETE FROM login_failures WHERE key = ?", (attempt.name_key,))
        # Exactly one mark: several attempts from one address may share a timestamp. (The store
        # serialises writers, so reading then deleting one row is safe.)
        row = con.execute("SELECT COUNT(*) FROM login_failures WHERE key = ? AND at = ?",
                          (attempt.client_key, attempt.at)).fetchone()
        if row[0]:
            con.execute("DELETE FROM login_failures WHERE key = ? AND at = ?", (attempt.client_key, attempt.at))
            con.executemany("INSERT INTO login_failures (key, at) VALUES (?, ?)",
                            [(attempt.client_key, attempt.at)] * (row[0] - 1))


def locked(store: Store, name: str, client: str, limits: Limits, now: float | None = None) -> Lockout | None:
    """The lockout that a new attempt for ``name`` from ``client`` would meet now, if any (read only)."""
    now = time.time() if now is None else float(now)
    since = now - limits.window_seconds
    with store.snapshot() as con:
        for key, limit in ((name_key(name), limits.attempts), (client_key(client), limits.per_client)):
            wait = _retry_after(_times(con, key, since), limit, limits.window_seconds, now)
            if wait is not None:
                return Lockout(key, wait)
    return None


def clear(store: Store, name: str) -> int:
    """Forget the failures of account ``name`` (an administrator unlocks it); returns how many."""
    with store.transaction(bump_version=False) as con:
        return con.execute("DELETE FROM login_failures WHERE key = ?", (name_key(name),)).rowcount
