"""Languages of the UI: Chinese (zh-CN) by default, English on request.

Flask-Babel translates the interface. Message ids are English; ``web/translations/zh`` holds
the Simplified Chinese catalog (Babel spells zh_CN as zh_Hans_CN, which gettext's folder lookup
would miss, so the folder is ``zh``; pages still say ``<html lang="zh-CN">``). The compiled
``messages.mo`` is committed next to its ``messages.po``, so a checkout needs no build step;
``tests/web/test_views.py`` fails when the two disagree. After changing texts::

    .venv/bin/pybabel extract -F web/babel.cfg -k _l --no-location --sort-output -o web/translations/messages.pot .
    .venv/bin/pybabel update -i web/translations/messages.pot -d web/translations --no-location
    # translate the new entries in web/translations/zh/LC_MESSAGES/messages.po, then
    .venv/bin/pybabel compile -d web/translations

Area names exist only in Chinese and are never translated; metric names and units come from
``geo.metrics`` in both languages.

The language is chosen by ``?lang=`` (which is also remembered in a cookie), then by that
cookie, then it is Chinese. Browsers' Accept-Language is ignored on purpose: the UI is Chinese
unless an official asks for English.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, request
from flask_babel import Babel, get_locale
from flask_babel import lazy_gettext as _l

from geo.atlas.metrics import Metric
from geo.query.classify import METHODS

DEFAULT_LOCALE = "zh"
# ?lang= value -> locale. The first spelling of each is the one links use.
LANG_PARAMS = {"zh": "zh", "zh-CN": "zh", "zh_CN": "zh", "en": "en"}
LANGUAGES = {"zh": ("zh", "中文", "zh-CN"), "en": ("en", "English", "en")}  # param, label, html lang
COOKIE = "lang"

LEVEL_NAMES = {
    "city": _l("City"),
    "district": _l("District"),
    "town": _l("Town/street"),
    "village": _l("Village/community"),
    "grid": _l("Grid"),
}
# Plural forms for the level picker ("show: towns / villages / grids").
LEVEL_PLURALS = {
    "district": _l("Districts"),
    "town": _l("Towns/streets"),
    "village": _l("Villages/communities"),
    "grid": _l("Grids"),
}
CHECKPOINT_KINDS = {
    "community_gate": _l("Community gate"),
    "road": _l("Road checkpoint"),
    "transport_hub": _l("Transport hub"),
}


def select_locale() -> str:
    """The locale of this request (see the module docstring)."""
    for value in (request.args.get("lang"), request.cookies.get(COOKIE)):
        if value in LANG_PARAMS:
            return LANG_PARAMS[value]
    return DEFAULT_LOCALE


def is_chinese() -> bool:
    """True when the current request is answered in Chinese."""
    return str(get_locale()).startswith("zh")


def metric_name(metric: Metric | dict) -> str:
    """Name of a metric in the current language."""
    get = metric.get if isinstance(metric, dict) else lambda k: getattr(metric, k)
    return get("name_zh") if is_chinese() else get("name_en")


def metric_unit(metric: Metric | dict) -> str:
    """Unit of a metric in the current language."""
    get = metric.get if isinstance(metric, dict) else lambda k: getattr(metric, k)
    return get("unit_zh") if is_chinese() else get("unit_en")


def method_name(method: str) -> str:
    """Name of a classification method in the current language."""
    zh, en = METHODS[method]
    return zh if is_chinese() else en


def html_lang() -> str:
    """The value of <html lang>."""
    return LANGUAGES[select_locale()][2]


def lang_url(param: str) -> str:
    """This page's URL in another language (the ``lang`` parameter replaced)."""
    args = request.args.to_dict()
    args["lang"] = param
    return f"{request.path}?{urlencode(args)}"


def js_labels() -> dict:
    """The words app.js needs, in the current language."""
    return {
        "levels": {k: str(v) for k, v in LEVEL_NAMES.items()},
        "kinds": {k: str(v) for k, v in CHECKPOINT_KINDS.items()},
        "open": str(_l("Open")),
        "details": str(_l("Details")),
        "loading": str(_l("Loading…")),
        "failed": str(_l("Could not load the data.")),
        "checks": str(_l("Checks")),
        "grid": str(_l("Grid")),
        "leaders": str(_l("Grid leaders")),
        "workers": str(_l("Grid workers")),
        "households": str(_l("Households")),
        "population": str(_l("Population")),
        "grids": str(_l("Grids")),
        "checkpoints": str(_l("Checkpoints")),
        "period": str(_l("Period")),
        "no_results": str(_l("No area found")),
        "hint_drill": str(_l("Click to open · right-click for details")),
        "hint_grid": str(_l("Click for details")),
        "persons": str(_l("persons")),
    }


def init_app(app: Flask) -> None:
    """Install Flask-Babel and the template helpers on ``app``."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(
        metric_name=metric_name, metric_unit=metric_unit, method_name=method_name,
        level_name=lambda level: str(LEVEL_NAMES[level]),
        level_names=lambda: {k: str(v) for k, v in LEVEL_NAMES.items()},
        level_plural=lambda level: str(LEVEL_PLURALS.get(level, LEVEL_NAMES[level])),
        html_lang=html_lang, lang_url=lang_url, languages=LANGUAGES, current_locale=select_locale,
    )

    @app.after_request
    def _remember_language(response):
        # Remember an explicit ?lang= so that links without it keep the language.
        value = request.args.get("lang")
        wanted = LANGUAGES[LANG_PARAMS[value]][0] if value in LANG_PARAMS else None
        if wanted and request.cookies.get(COOKIE) != wanted:
            response.set_cookie(COOKIE, wanted, max_age=365 * 24 * 3600,
                                samesite="Lax", httponly=True)
        return response
