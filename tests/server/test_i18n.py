"""Languages: the gettext catalogs are complete and up to date with the sources, and pages speak the request's
language.

The catalogs are checked against a fresh ``pybabel extract`` of the sources (the command the README gives, run
in-process into a temporary POT): every message a template, script or module marks is in every language's
catalog, translated (no empty form, nothing fuzzy) with the same placeholders, and the catalogs hold nothing
the sources no longer use.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from babel.messages.catalog import Catalog, Message
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.keys import IDENTITIES
from server.settings import load_settings
from server.web import i18n
from tests.server.conftest import ENGLISH

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {i18n.KIOSK: ("zh", "en", "ar"), i18n.STAFF: ("zh", "en")}
PASSWORD = "correct horse battery staple"
Client = TestClient[web.Request, web.Application]

# ---------------------------------------------------------------- the catalogs


@pytest.fixture(scope="module")
def pots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Catalog]:
    """Each domain's POT as `pybabel extract` makes it of the sources now."""
    out = {}
    for domain in REQUIRED:
        pot = tmp_path_factory.mktemp("pot") / f"{domain}.pot"
        CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(i18n.LOCALE_DIR / f"{domain}.cfg"),
                                    "-o", str(pot), "--no-wrap", str(ROOT)])
        with pot.open("rb") as fp:
            out[domain] = read_po(fp)
    return out


def catalog(domain: str, lang: str) -> Catalog:
    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po").open("rb") as fp:
        return read_po(fp, locale=lang, domain=domain)


def key(message: Message) -> tuple[str | None, str]:
    msgid = message.id[0] if isinstance(message.id, tuple | list) else message.id
    return message.context, str(msgid)


def placeholders(text: str) -> set[str]:
    """``{name}`` (the scripts') and ``%(name)s`` (templates' and Python's) placeholders of a text."""
    found = {f"%({name})" for name in re.findall(r"%\((\w+)\)", text)}
    found |= {f"{{{field}}}" for _, field, _, _ in string.Formatter().parse(text) if field}
    return found


def test_extraction_finds_the_marked_texts(pots: dict[str, Catalog]) -> None:
    # one from each kind of source: kiosk.html (N_), kiosk.js (t), a plural (tn)
    assert {(None, "Welcome"), (None, "Back"), (None, "{n} person ahead of you")} <= {key(m) for m in pots["kiosk"]}
    # templates, clerk.js, clerk-wrapup.js, admin.js, Python, a context
    assert {(None, "Live board"), (None, "Incoming call"), (None, "Completed"), (None, "Nobody is waiting."),
            (None, "Wrong username or password."), ("status", "Wrap-up")} <= {key(m) for m in pots["staff"]}


@pytest.mark.parametrize(("domain", "lang"), [(d, lang) for d, langs in REQUIRED.items() for lang in langs])
def test_every_extracted_message_is_translated(pots: dict[str, Catalog], domain: str, lang: str) -> None:
    pot = pots[domain]
    po = catalog(domain, lang)
    wanted = {key(m) for m in pot if m.id}
    have = {key(m): m for m in po if m.id}
    assert not sorted(wanted - set(have), key=str), f"{domain}/{lang}: not in the catalog (run pybabel update)"
    assert not sorted(set(have) - wanted, key=str), f"{domain}/{lang}: no longer in the sources (pybabel update)"
    for k, message in have.items():
        assert not message.fuzzy, f"{domain}/{lang}: fuzzy {k}"
        forms = list(message.string) if message.pluralizable else [message.string]
        assert forms and all(forms), f"{domain}/{lang}: untranslated {k}"
        if message.pluralizable:
            singular, plural = (str(x) for x in message.id)
            assert len(forms) == po.num_plurals, f"{domain}/{lang}: {k} has {len(forms)} of {po.num_plurals} forms"
            # a form may spell the count out ("one person"): {n} may be left out, nothing else
            allowed = placeholders(singular) | placeholders(plural)
            required = allowed - {"{n}", "%(num)", "%(count)"}
            for form in forms:
                assert required <= placeholders(str(form)) <= allowed, f"{domain}/{lang}: placeholders of {k}: {form}"
        else:
            assert placeholders(str(message.string)) == placeholders(str(message.id)), (
                f"{domain}/{lang}: placeholders of {k} differ: {message.string!r}")
    problems = [(m.id, [str(e) for e in errors]) for m, errors in po.check()]
    assert not problems, f"{domain}/{lang}: Babel's checks: {problems}"


def test_arabic_plural_forms_map_to_every_cldr_category() -> None:
    ar = catalog(i18n.KIOSK, "ar")
    assert sorted(i18n.plural_categories(ar)) == sorted(["zero", "one", "two", "few", "many", "other"])
    forms = i18n.js_messages(ar)["{n} person ahead of you"]
    assert isinstance(forms, dict) and len(set(forms.values())) == 6
    assert i18n.plural_categories(catalog(i18n.KIOSK, "zh")) == ["other"]
    assert i18n.plural_categories(catalog(i18n.KIOSK, "en")) == ["one", "other"]


def test_the_staff_scripts_get_only_their_texts() -> None:
    staff = i18n.load_domain(i18n.STAFF)
    js = staff.js["zh"]
    assert js["Incoming call"] == "来电" and js[f"status{i18n.CONTEXT_SEPARATOR}Wrap-up"] == "话后处理"
    assert "Live board" not in js  # a template's text: rendered by the server


@pytest.mark.parametrize(("header", "expected"), [
    ("", "zh"), ("en-US,en;q=0.9", "en"), ("fr-CH, fr;q=0.9, en;q=0.8, zh;q=0.7", "en"), ("zh-CN", "zh"),
    ("ar", "ar"), ("en;q=0, ar;q=0.5", "ar"), ("*", "zh"), ("de", "zh"),
])
def test_accept_language_picks_among_the_supported(header: str, expected: str) -> None:
    languages = i18n.Languages.load(["zh", "en", "ar"])
    request = _request(header)
    assert languages.choose(request, i18n.KIOSK) == expected
    # the staff pages have no Arabic: the first configured language instead
    assert languages.choose(request, i18n.STAFF) == (expected if expected != "ar" else "zh")


def _request(accept_language: str, cookie: str = "") -> web.Request:
    from aiohttp.test_utils import make_mocked_request

    headers = {"Accept-Language": accept_language} if accept_language else {}
    if cookie:
        headers["Cookie"] = f"{i18n.LANG_COOKIE}={cookie}"
    return make_mocked_request("GET", "/", headers=headers)


def test_the_cookie_wins_over_accept_language() -> None:
    languages = i18n.Languages.load(["zh", "en", "ar"])
    assert languages.choose(_request("en", cookie="zh"), i18n.STAFF) == "zh"
    assert languages.choose(_request("zh", cookie="ar"), i18n.STAFF) == "zh"  # no Arabic staff catalog: ignored
    assert languages.choose(_request("zh", cookie="ar"), i18n.KIOSK) == "ar"


# ---------------------------------------------------------------- pages


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, tmp_path: Path) -> Client:
    app = create_app(load_settings(env={}, data_dir=tmp_path))
    client = await aiohttp_client(app)
    await app[IDENTITIES].add_user("Ada Admin", "admin", username="ada", password=PASSWORD)
    return client


def html_lang(html: str) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', html)
    assert found is not None
    return found.group(1), found.group(2)


async def log_in(client: Client) -> None:
    page = await (await client.get("/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    resp = await client.post("/login", data={"csrf_token": token.group(1), "username": "ada", "password": PASSWORD,
                                             "next": "/admin"}, allow_redirects=False)
    assert resp.status == 303, await resp.text()


async def test_login_clerk_and_admin_pages_follow_accept_language(client: Client) -> None:
    zh = await (await client.get("/login")).text()  # no Accept-Language: the first configured language
    assert html_lang(zh) == ("zh", "ltr") and ">登录名</label>" in zh and ">Username<" not in zh
    en = await (await client.get("/login", headers=ENGLISH)).text()
    assert html_lang(en) == ("en", "ltr") and ">Username</label>" in en and "登录名" not in en

    clerk_zh = await (await client.get("/clerk", headers={"Accept-Language": "zh-CN"})).text()
    assert html_lang(clerk_zh) == ("zh", "ltr") and "坐席工作台" in clerk_zh
    assert 'data-testid="set-available">空闲<' in clerk_zh
    clerk_en = await (await client.get("/clerk", headers=ENGLISH)).text()
    assert 'data-testid="set-available">Available<' in clerk_en and "空闲" not in clerk_en
    catalogs = json.loads(re.search(r'<script id="vw-i18n" type="application/json">(.*?)</script>',
                                    clerk_zh, re.S).group(1))  # type: ignore[union-attr]
    assert list(catalogs) == ["zh"] and catalogs["zh"]["messages"]["No follow-up was opened."] == "未产生待办。"

    await log_in(client)
    board_zh = await (await client.get("/admin")).text()
    assert html_lang(board_zh) == ("zh", "ltr") and "实时看板" in board_zh and "Live board" not in board_zh
    board_en = await (await client.get("/admin", headers=ENGLISH)).text()
    assert "Live board" in board_en and "实时看板" not in board_en


async def test_the_language_switch_sets_a_cookie_and_goes_back(client: Client) -> None:
    resp = await client.get("/lang/en", params={"next": "/login?next=/admin"}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login?next=/admin"
    assert resp.cookies[i18n.LANG_COOKIE].value == "en"
    # the cookie wins over Accept-Language from now on
    page = await (await client.get("/login", headers={"Accept-Language": "zh"})).text()
    assert html_lang(page)[0] == "en" and ">Username</label>" in page
    # the switch links back to the page it is on
    assert 'href="/lang/zh?next=/login"' in page
    # never to another site, and only to a language there is
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        resp = await client.get("/lang/zh", params={"next": bad}, allow_redirects=False)
        assert resp.headers["Location"] == "/"
    assert (await client.get("/lang/tlh", allow_redirects=False)).status == 404


async def test_the_kiosk_page_carries_every_kiosk_language(client: Client) -> None:
    page = await (await client.get("/kiosk", headers={"Accept-Language": "ar"})).text()
    assert html_lang(page) == ("ar", "rtl")
    found = re.search(r'<script id="vw-i18n" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    catalogs: dict[str, Any] = json.loads(found.group(1))
    assert sorted(catalogs) == ["ar", "en", "zh"]
    assert catalogs["ar"]["dir"] == "rtl" and catalogs["ar"]["name"] == "العربية" and catalogs["zh"]["name"] == "中文"
    assert catalogs["zh"]["messages"]["Welcome"] == "欢迎"
    assert set(catalogs["ar"]["messages"]["about {n} minute"]) == {"zero", "one", "two", "few", "many", "other"}
    # every data-i18n on the page is a msgid every language translates
    for msgid in re.findall(r'data-i18n="([^"]+)"', page):
        text = msgid.replace("&#39;", "'").replace("&amp;", "&")
        assert all(text in catalogs[lang]["messages"] for lang in catalogs), text
