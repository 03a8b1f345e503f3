"""Domain errors. Each carries the HTTP status the web layer answers with.

The web layer maps them in one place (``web/errors.py``); the CLI prints ``str(err)`` and exits
with ``err.exit_code``. Messages name the bad value and what is allowed, so that both a clerk
and an engineer can act on them.
"""

from __future__ import annotations


class GridAtlasError(Exception):
    """Base class of every error the core raises on purpose."""

    http_status = 500
    exit_code = 1


class BadParameter(GridAtlasError, ValueError):
    """A caller passed a value that is not allowed (unknown metric, bad date, bad CRS...)."""

    http_status = 400
    exit_code = 2


class AreaNotFound(GridAtlasError, LookupError):
    """No area has the requested code."""

    http_status = 404
    exit_code = 3


class Forbidden(GridAtlasError, PermissionError):
    """The user may not see or do this: an area outside their jurisdiction, or an action their
    role does not allow. The message names the user's scope, never the requested area's data."""

    http_status = 403
    exit_code = 6


class InputFileError(GridAtlasError):
    """A data file cannot be read as asked. The message names the file, the row and the reason."""

    http_status = 422
    exit_code = 4

    def __init__(self, path, reason: str, *, row=None, feature=None):
        self.path = str(path)
        self.reason = reason
        self.row = row
        self.feature = feature
        where = self.path
        if row is not None:
            where += f", row {row}"
        if feature is not None:
            where += f", feature {feature}"
        super().__init__(f"{where}: {reason}")


class DataNotReady(GridAtlasError):
    """The store has not been built yet (run `python -m geo demo` or `make run`)."""

    http_status = 503
    exit_code = 5
