"""Languages: gettext catalogs read with Babel, the request's language, and the catalogs handed to the pages' JS.

The catalogs are ``client/locale/<lang>/LC_MESSAGES/<domain>.po`` (English source texts as msgids), in two
domains: ``kiosk`` (the visitor's screen, every kiosk language) and ``staff`` (clerk console, login and the
administrator's pages, at least Chinese and English). They are read once at startup and compiled in memory
(no ``.mo`` files). ``babel-kiosk.cfg`` and ``babel-staff.cfg`` tell ``pybabel extract`` where each domain's
messages are and which functions mark them (README, "Languages").

A page's language: the ``lang`` cookie (set by ``/lang/{code}``), else the best match of Accept-Language,
else the first of ``settings.languages`` that the domain has.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web
from babel import Locale, negotiate_locale
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from server.web.urls import local_path

LOCALE_DIR = Path(__file__).resolve().parents[2] / "client" / "locale"
KIOSK = "kiosk"
STAFF = "staff"
DOMAINS = (KIOSK, STAFF)
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
CONTEXT_SEPARATOR = "\x04"  # gettext's key for a message with a context: "context\x04msgid"

# A message for the pages' JS: a text, or its plural forms by CLDR category (Intl.PluralRules' names).
JsMessage = str | dict[str, str]


def plural_categories(catalog: Catalog) -> list[str]:
    """The CLDR plural category of each of the catalog's plural forms, in order.

    A catalog numbers its plural forms by its Plural-Forms expression (Arabic's puts "other" before
    "many"); the browser names them by category (``Intl.PluralRules``). Both are evaluated on counts
    0..1000 and must agree on a one-to-one mapping.
    """
    assert catalog.locale is not None
    locale = catalog.locale if isinstance(catalog.locale, Locale) else Locale.parse(catalog.locale)
    index_of = gettext.c2py(catalog.plural_expr)
    found: dict[int, str] = {}
    for n in range(1001):
        index, category = index_of(n), locale.plural_form(n)
        if found.setdefault(index, category) != category:
            raise ValueError(f"{locale}: plural form {index} holds both {found[index]!r} and {category!r}")
    categories = [found.get(i, "") for i in range(catalog.num_plurals)]
    if "" in categories or len(set(categories)) != len(categories):
        raise ValueError(f"{locale}: plural forms {categories} do not map one to one to CLDR categories")
    return categories


def used_by_scripts(message: Message) -> bool:
    """Does a script use this message? (By the source locations extraction wrote into the catalog.)"""
    return any(filename.endswith(".js") for filename, _ in message.locations)


def js_messages(catalog: Catalog, scripts_only: bool = False) -> dict[str, JsMessage]:
    """The translated messages of a catalog for the pages' JS (fuzzy and untranslated ones left out); with
    ``scripts_only``, only those a script uses."""
    categories: list[str] | None = None
    out: dict[str, JsMessage] = {}
    for message in catalog:
        if not message.id or message.fuzzy or (scripts_only and not used_by_scripts(message)):
            continue
        msgid = message.id[0] if isinstance(message.id, tuple | list) else message.id
        key = f"{message.context}{CONTEXT_SEPARATOR}{msgid}" if message.context else msgid
        if message.pluralizable:
            if categories is None:
                categories = plural_categories(catalog)
            forms = [str(form) for form in message.string or ()]
            if not all(forms):
                continue
            out[key] = dict(zip(categories, forms, strict=True))
        elif message.string:
            out[key] = str(message.string)
    return out


def _translations(catalog: Catalog, domain: str) -> Translations:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy messages are left out
    buffer.seek(0)
    return Translations(buffer, domain=domain)


@dataclass(frozen=True)
class Domain:
    """One domain's catalogs, by language."""

    name: str
    catalogs: dict[str, Catalog]
    translations: dict[str, Translations]
    js: dict[str, dict[str, JsMessage]]

    @property
    def languages(self) -> list[str]:
        return list(self.catalogs)

    def gettext(self, lang: str) -> NullTranslations:
        return self.translations.get(lang) or NullTranslations()


def load_domain(name: str, locale_dir: Path = LOCALE_DIR) -> Domain:
    catalogs: dict[str, Catalog] = {}
    for po in sorted(locale_dir.glob(f"*/LC_MESSAGES/{name}.po")):
        lang = po.parent.parent.name
        with po.open("rb") as fp:
            catalogs[lang] = read_po(fp, locale=lang, domain=name)
    if not catalogs:
        raise FileNotFoundError(f"no catalog of the domain {name!r} under {locale_dir}")
    # the kiosk page is all script; the staff pages are rendered by the server, and their scripts need only theirs
    return Domain(name, catalogs, {lang: _translations(c, name) for lang, c in catalogs.items()},
                  {lang: js_messages(c, scripts_only=name != KIOSK) for lang, c in catalogs.items()})


@dataclass(frozen=True)
class Languages:
    """Every domain's catalogs and the languages the deployment offers (``settings.languages``, in order)."""

    domains: dict[str, Domain]
    offered: tuple[str, ...]

    @classmethod
    def load(cls, offered: Sequence[str], locale_dir: Path = LOCALE_DIR) -> Languages:
        return cls({name: load_domain(name, locale_dir) for name in DOMAINS}, tuple(offered))

    def supported(self, domain: str) -> list[str]:
        """The offered languages this domain has catalogs for, in the configured order (else all it has)."""
        have = self.domains[domain].languages
        return [lang for lang in self.offered if lang in have] or have

    def choose(self, request: web.Request, domain: str) -> str:
        supported = self.supported(domain)
        cookie = request.cookies.get(LANG_COOKIE, "")
        if cookie in supported:
            return cookie
        found = negotiate_locale(accepted_languages(request.headers.get("Accept-Language", "")), supported,
                                 sep="-", aliases={})
        if found:
            return found.split("-")[0].lower()
        return supported[0]


def accepted_languages(header: str) -> list[str]:
    """Accept-Language's tags, most wanted first (q=0 and "*" left out)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag.strip() and tag.strip() != "*" and q > 0:
            ranked.append((-q, i, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def text_direction(lang: str) -> str:
    return "rtl" if Locale.parse(lang).character_order == "right-to-left" else "ltr"


def language_names(codes: Iterable[str], in_lang: str | None = None) -> dict[str, str]:
    """Each language's name, in ``in_lang`` (Babel's CLDR data), or in itself when ``in_lang`` is None."""
    return {code: Locale.parse(code).get_display_name(in_lang or code) or code for code in codes}


# ---------------------------------------------------------------- the request's language


LANGUAGES = web.AppKey("languages", Languages)
LANG_KEY = "vw_lang"


def request_language(request: web.Request, domain: str = STAFF) -> str:
    key = f"{LANG_KEY}:{domain}"
    if key not in request:
        request[key] = request.app[LANGUAGES].choose(request, domain)
    lang: str = request[key]
    return lang


def translations(request: web.Request, domain: str = STAFF) -> NullTranslations:
    """The request's translations of ``domain``: ``translations(request).gettext("...")``."""
    return request.app[LANGUAGES].domains[domain].gettext(request_language(request, domain))


def page_context(request: web.Request, domain: str = STAFF) -> dict[str, Any]:
    """What every template needs to speak the request's language (a context processor's part)."""
    languages = request.app[LANGUAGES]
    lang = request_language(request, domain)
    here = request.rel_url.path_qs
    return {
        "lang": lang,
        "dir": text_direction(lang),
        "i18n": languages.domains[domain].gettext(lang),
        "language_names": language_names(languages.offered, lang),
        "i18n_catalogs": js_catalog(request, domain, [lang]),
        "lang_choices": [(code, name, f"/lang/{code}?next={quote(here, safe='/')}")
                         for code, name in language_names(languages.supported(domain)).items()],
    }


async def context_processor(request: web.Request) -> dict[str, Any]:
    """aiohttp_jinja2's: the staff pages' language (the kiosk page's view gives its own)."""
    return page_context(request, STAFF)


def js_catalog(request: web.Request, domain: str, langs: Sequence[str]) -> dict[str, Any]:
    """The JSON a page's script reads its texts from: per language its name, direction and messages."""
    d = request.app[LANGUAGES].domains[domain]
    return {lang: {"name": language_names([lang])[lang], "dir": text_direction(lang), "messages": d.js.get(lang, {})}
            for lang in langs}


def _safe_next(value: str | None) -> str:
    """A local path to go back to (never another site)."""
    return local_path(value, "/")


async def switch_language(request: web.Request) -> web.StreamResponse:
    """``GET /lang/{code}?next=/path``: remember the language in a cookie and go back."""
    code = request.match_info["code"]
    languages = request.app[LANGUAGES]
    if not any(code in languages.supported(d) for d in DOMAINS):
        raise web.HTTPNotFound(text=f"no such language: {code}")
    response = web.HTTPSeeOther(_safe_next(request.query.get("next")))
    response.set_cookie(LANG_COOKIE, code, max_age=LANG_COOKIE_MAX_AGE, path="/", samesite="Lax", httponly=True,
                        secure=request.secure)
    raise response


# ---------------------------------------------------------------- jinja2


def _context_translations(context: jinja2.runtime.Context) -> NullTranslations:
    found = context.get("i18n")
    return found if isinstance(found, NullTranslations) else NullTranslations()


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return _context_translations(context).gettext(message)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return _context_translations(context).ngettext(singular, plural, n)


@jinja2.pass_context
def _pgettext(context: jinja2.runtime.Context, ctx: str, message: str) -> str:
    return str(_context_translations(context).pgettext(ctx, message))


@jinja2.pass_context
def _npgettext(context: jinja2.runtime.Context, ctx: str, singular: str, plural: str, n: int) -> str:
    return str(_context_translations(context).npgettext(ctx, singular, plural, n))


def noop(message: str) -> str:
    """``N_("...")``: marks a text for extraction; it is translated later, where it is shown."""
    return message


def install(env: jinja2.Environment) -> None:
    """jinja2's i18n extension with the translations the template's context carries (``i18n``)."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True, pgettext=_pgettext, npgettext=_npgettext)
    env.globals["N_"] = noop
N_ = noop
