"""Query-string parsing shared by the pages and the JSON endpoints.

Only the shape of each value is checked here (a date is ISO, a zoom is a whole number); what
is allowed (known metric, period inside the data, level below the area) is checked by the
``geo`` function the route calls, which raises ``BadParameter`` with a message naming the
value. An empty value (an empty form field) counts as not given.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from werkzeug.datastructures import MultiDict

from geo.atlas.metrics import PERIOD_END, PERIOD_START, parse_date
from geo.errors import BadParameter
from geo.query.classify import DEFAULT_K, DEFAULT_METHOD

from .i18n import LANG_PARAMS

DEFAULT_METRIC = "visits"


def _get(args: MultiDict, name: str) -> str | None:
    value = args.get(name)
    return value.strip() if value and value.strip() else None


def date_arg(args: MultiDict, name: str, default: dt.date) -> dt.date:
    """An ISO date parameter (``from``/``to``), or ``default`` when absent."""
    text = _get(args, name)
    return default if text is None else parse_date(text, name=name)


def int_arg(args: MultiDict, name: str, default: int | None) -> int | None:
    """A whole-number parameter, or ``default`` when absent."""
    text = _get(args, name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise BadParameter(f"{name} {text!r} is not a whole number") from None


def check_lang(args: MultiDict) -> None:
    """Refuse an unknown ``lang`` (the locale selector itself silently ignores it)."""
    text = _get(args, "lang")
    if text is not None and text not in LANG_PARAMS:
        raise BadParameter(f"unknown language {text!r}; allowed: zh, en")


@dataclass(frozen=True)
class MapArgs:
    """The state of a map page, all of it in the URL: metric, period, classes and level."""

    metric: str = DEFAULT_METRIC
    start: dt.date = PERIOD_START
    end: dt.date = PERIOD_END
    method: str = DEFAULT_METHOD
    k: int = DEFAULT_K
    level: str | None = None

    def query(self, **changes) -> dict:
        """The URL parameters of this state (``changes`` override some); defaults of the
        classification and level are left out to keep links short."""
        q = {"metric": self.metric, "from": self.start.isoformat(), "to": self.end.isoformat()}
        if self.method != DEFAULT_METHOD:
            q["method"] = self.method
        if self.k != DEFAULT_K:
            q["k"] = str(self.k)
        if self.level:
            q["level"] = self.level
        q.update({k: v for k, v in changes.items()})
        return {k: v for k, v in q.items() if v is not None}


def map_args(args: MultiDict) -> MapArgs:
    """Read the map state from a query string."""
    check_lang(args)
    return MapArgs(
        metric=_get(args, "metric") or DEFAULT_METRIC,
        start=date_arg(args, "from", PERIOD_START),
        end=date_arg(args, "to", PERIOD_END),
        method=_get(args, "method") or DEFAULT_METHOD,
        k=int_arg(args, "k", DEFAULT_K),
        level=_get(args, "level"),
    )


def text_arg(args: MultiDict, name: str) -> str | None:
    """A free-text parameter, stripped; None when absent or blank."""
    return _get(args, name)
