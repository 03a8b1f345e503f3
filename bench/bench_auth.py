"""Authentication for benchmark clients. Until logins exist every route is open: no cookie."""

from __future__ import annotations


def session_cookie(base: str, data_dir: str) -> str | None:
    """A session cookie that benchmark requests send, or None when none is needed."""
    return None
