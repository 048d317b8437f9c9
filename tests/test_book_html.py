"""The built book: links, language switcher, Colab buttons, <html lang>, interface language.

One build per test session (``make html`` itself: committed outputs, no execution, warnings as
errors, into the real ``book/_build/html``; the fixture ``site`` is in conftest.py); skipped
while no chapter exists. ``BOOK_ROOT=/some/checkout`` runs the same checks on another tree (the
tools always come from this one).
"""

from __future__ import annotations

import json
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from book.tools import build, colab, common  # noqa: E402
from book.tools.common import EDITIONS, LANGS  # noqa: E402

BOOK = Path(os.environ.get("BOOK_ROOT", ROOT)).resolve()
HAS_CHAPTERS = any(common.all_chapters(BOOK).values())
pytestmark = pytest.mark.skipif(not HAS_CHAPTERS, reason="no chapter in chapters/<lang> yet")


class Page(HTMLParser):
    """Links, the <html lang>, the switcher's links and the launch buttons of one page."""

    def __init__(self, text: str):
        super().__init__()
        self.links: list[str] = []
        self.lang = None
        self.switcher: dict[str, str] = {}
        self.switcher_current = None
        self.in_switcher = False
        self.external: list[str] = []
        self.alternates: dict[str, str] = {}  # hreflang -> href of <link rel="alternate">
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "link" and a.get("rel") == "alternate" and a.get("hreflang"):
            self.alternates[a["hreflang"]] = a.get("href")
        if tag == "nav" and "langswitch" in (a.get("class") or ""):
            self.in_switcher = True
        if self.in_switcher and tag == "a":
            self.switcher[a["data-edition"]] = a["href"]
        if self.in_switcher and tag == "span" and "langswitch-current" in (a.get("class") or ""):
            self.switcher_current = a.get("lang")
        for key in ("href", "src"):
            url = a.get(key)
            if not url or url.startswith(("#", "data:", "mailto:", "javascript:")):
                continue
            (self.external if urlsplit(url).scheme else self.links).append(url)

    def handle_endtag(self, tag):
        if tag == "nav":
            self.in_switcher = False


def pages(site: Path, lang: str) -> list[Path]:
    return sorted(
        p for p in (site / lang).rglob("*.html") if not {"_static", "_sources"} & set(p.parts)
    )


def parse(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def resolve(page: Path, url: str) -> Path:
    return (page.parent / unquote(urlsplit(url).path)).resolve()


def test_root_index_offers_the_three_editions(site):
    page = parse(site / "index.html")
    assert set(page.links) == {f"{lang}/index.html" for lang in LANGS}
    for url in page.links:
        assert resolve(site / "index.html", url).is_file()


@pytest.mark.parametrize("lang", LANGS)
def test_every_internal_link_resolves(site, lang):
    broken = []
    for path in pages(site, lang):
        for url in parse(path).links:
            if not resolve(path, url).exists():
                broken.append(f"{path.relative_to(site)} -> {url}")
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize("lang", LANGS)
def test_html_lang_matches_the_edition(site, lang):
    wrong = {
        str(p.relative_to(site)): parse(p).lang
        for p in pages(site, lang)
        if parse(p).lang != EDITIONS[lang]["html"]
    }
    assert not wrong, f"expected <html lang={EDITIONS[lang]['html']!r}>: {wrong}"


@pytest.mark.parametrize("lang", LANGS)
def test_switcher_links_to_the_twin_page(site, lang):
    docs = {code: {p.stem for p in (site / code).glob("*.html")} for code in LANGS}
    for path in pages(site, lang):
        page = parse(path)
        where = path.relative_to(site)
        assert page.switcher_current == EDITIONS[lang]["html"], f"{where}: no current edition"
        assert sorted(page.switcher) == sorted(set(LANGS) - {lang}), f"{where}: {page.switcher}"
        for code, url in page.switcher.items():
            target = resolve(path, url)
            assert target.is_file(), f"{where}: switcher link {url} is broken"
            assert target.parent == (site / code).resolve(), f"{where}: {url} leaves {code}/"
            twin = path.stem if path.stem in docs[code] else "index"
            assert target.stem == twin, f"{where}: switcher to {code} gives {url}"


@pytest.mark.parametrize("lang", LANGS)
def test_every_chapter_page_reaches_its_twin_chapter(site, lang):
    """Chapters have the same file name in every language, so the switcher and the hreflang
    alternates of a chapter page must reach that chapter, never the other edition's landing."""
    chapters = common.chapter_paths(lang, BOOK)
    assert chapters, f"no chapter in chapters/{lang}"
    for chapter in chapters:
        path = site / lang / f"{chapter.stem}.html"
        page = parse(path)
        for code in set(LANGS) - {lang}:
            if not (BOOK / "chapters" / code / chapter.name).is_file():
                continue
            twin = (site / code / f"{chapter.stem}.html").resolve()
            assert resolve(path, page.switcher[code]) == twin, (
                f"{lang}/{path.name}: switcher to {code} gives {page.switcher[code]}"
            )
            hreflang = EDITIONS[code]["html"]
            assert hreflang in page.alternates, f"{lang}/{path.name}: no hreflang={hreflang}"
            assert resolve(path, page.alternates[hreflang]) == twin, (
                f"{lang}/{path.name}: hreflang={hreflang} gives {page.alternates[hreflang]}"
            )


def test_the_site_is_the_real_build_folder(site):
    """The session's book is built where ``make html`` builds it (staging under book/_build)."""
    out, work = build.default_paths(BOOK)
    assert site == out and (work / "src" / "en" / "_toc.yml").is_file()


@pytest.mark.parametrize("lang", LANGS)
def test_each_chapter_page_has_its_colab_button(site, lang):
    chapters = common.chapter_paths(lang, BOOK)
    for path in chapters:
        html = (site / lang / f"{path.stem}.html").read_text(encoding="utf-8")
        url = colab.colab_link(path, BOOK)
        button = re.search(
            r'<a href="([^"]+)"[^>]*\n?\s*class="btn[^"]*"[^>]*title="[^"]*Colab"', html
        )
        assert button, f"{lang}/{path.stem}.html has no Colab launch button"
        assert button.group(1) == url, f"Colab button opens {button.group(1)}, expected {url}"


def test_interface_speaks_the_edition_language(site):
    search_text = {"en": "Search...", "ru": "Поиск...", "zh": "搜索..."}
    for lang in LANGS:
        html = (site / lang / "index.html").read_text(encoding="utf-8")
        assert f'placeholder="{search_text[lang]}"' in html, lang
    exercise = {
        "en": ("Exercise", "Solution"),
        "ru": ("Упражнение", "Решение"),
        "zh": ("练习", "解答"),
    }
    for lang in LANGS:
        for path in common.chapter_paths(lang, BOOK):
            html = (site / lang / f"{path.stem}.html").read_text(encoding="utf-8")
            titles = re.findall(r'<p class="admonition-title">(.*?)</p>', html, re.S)
            text = " ".join(re.sub(r"<[^>]+>", " ", t) for t in titles)
            if 'class="exercise' in html:
                assert exercise[lang][0] in text, f"{lang}/{path.name}: {text}"
            if 'class="solution' in html:
                assert exercise[lang][1] in text, f"{lang}/{path.name}: {text}"
                assert "Solution" not in text or lang == "en"


def test_chinese_search_indexes_chinese_words(site):
    """Sphinx splits Chinese with jieba: words of the text become search terms."""
    pytest.importorskip("jieba", reason="jieba (the book extra) splits Chinese for search")
    text = (site / "zh" / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    words = set(index["terms"]) | set(index["titleterms"])
    cjk = {w for w in words if re.fullmatch(r"[\u4e00-\u9fff]{2,}", w)}
    assert len(cjk) >= 10, f"too few Chinese terms in the zh search index: {sorted(cjk)[:20]}"
    sources = " ".join(p.read_text(encoding="utf-8") for p in common.chapter_paths("zh", BOOK))
    userdict = (BOOK / "book" / "zh" / "jieba_userdict.txt").read_text(encoding="utf-8").split()
    for word in userdict[::3]:
        if word in sources:
            assert word in words, f"{word!r} is in the Chinese chapters but not a search term"
