"""Sphinx extension: a language switcher on every page of the three editions.

Jupyter Book 1 has no multilingual support (jupyter-book#223) and sphinx-book-theme no switcher
(sphinx-book-theme#449), so each edition is a separate Sphinx project and this extension links
them. The build tool (book/tools/build.py) passes, through the Sphinx config:

* ``langswitch_current``: the code of the edition being built (``en``, ``ru`` or ``zh``);
* ``langswitch_editions``: ``[{"code", "label", "lang", "docnames"}, ...]`` for all editions,
  where ``docnames`` lists the pages of that edition.

Every HTML page gets links to the same page name in the other editions, or to that edition's
landing page (its root document) where the twin is missing. Links are relative
(``../ru/01-standard-dropout.html``), so the book works from ``file://`` and under any prefix.
The switcher is rendered server-side by ``_templates/lang-switcher.html`` in the article header
(no JavaScript needed), plus ``<link rel="alternate" hreflang>`` tags. The page's ``<html lang>``
becomes a BCP 47 tag (``zh-CN``; Sphinx would write ``zh_CN``).

It also fills gaps in the interface translations: ``book/locales/<language>/LC_MESSAGES/ui.po``
is compiled and registered as a *fallback* catalog of sphinx-exercise, sphinx-book-theme and
pydata-sphinx-theme (e.g. sphinx-exercise 1.2 has no Russian or Chinese "Solution"), and Jupyter
Book's fixed English search placeholder is dropped so the theme's translated one is used.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE.parent / "_templates"
STATIC = HERE.parent / "_static"
LOCALES = HERE.parent / "locales"
# The catalogs ui.po backs up: sphinx-exercise, sphinx-book-theme, pydata-sphinx-theme.
CATALOGS = ("exercise", "booktheme", "sphinx")
JB_SEARCH_TEXT = "Search this book..."  # Jupyter Book's default, never translated
TEMPLATE = "lang-switcher.html"
# Pages every HTML build generates by itself: each edition has them.
GENERATED = {"search", "genindex"}


def twin_href(pagename: str, edition: dict, root_doc: str = "index") -> str:
    """Relative URL, from ``pagename`` of any edition, of its twin page in ``edition``."""
    docnames = set(edition["docnames"])
    target = pagename if (pagename in docnames or pagename in GENERATED) else root_doc
    up = "../" * (pagename.count("/") + 1)
    return f"{up}{edition['code']}/{target}.html"


def switcher_links(pagename: str, current: str, editions: list[dict], root_doc="index"):
    links = []
    for ed in editions:
        links.append(
            {
                "code": ed["code"],
                "label": ed["label"],
                "lang": ed["lang"],
                "current": ed["code"] == current,
                "href": twin_href(pagename, ed, root_doc),
            }
        )
    return links


def _config_inited(app: Sphinx, config) -> None:
    if not config.langswitch_editions:
        return
    codes = [ed["code"] for ed in config.langswitch_editions]
    if config.langswitch_current not in codes:
        raise ValueError(
            f"langswitch_current must be one of {codes}, got {config.langswitch_current!r}"
        )
    config.templates_path = [*config.templates_path, str(TEMPLATES)]
    config.html_static_path = [*config.html_static_path, str(STATIC)]
    options = dict(config.html_theme_options or {})
    # In the article header's left group, after the sidebar toggle: always visible, and it
    # leaves the right group (launch, download, full screen, ...) on one line.
    start = options.get("article_header_start", ["toggle-primary-sidebar.html"])
    if isinstance(start, str):
        start = [s.strip() for s in start.split(",") if s.strip()]
    if TEMPLATE not in start:
        start = [*start, TEMPLATE]
    options["article_header_start"] = start
    if options.get("search_bar_text") == JB_SEARCH_TEXT:
        del options["search_bar_text"]  # sphinx-book-theme then shows its translated "Search..."
    config.html_theme_options = options


def _add_ui_catalogs(app: Sphinx) -> None:
    """Compile ui.po of the build language and register it as a fallback of CATALOGS."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    language = app.config.language
    po = LOCALES / language / "LC_MESSAGES" / "ui.po"
    if not po.is_file():
        return
    locale_dir = Path(app.doctreedir).parent / "ui-locale"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    for name in CATALOGS:
        mo = locale_dir / language / "LC_MESSAGES" / f"{name}.mo"
        mo.parent.mkdir(parents=True, exist_ok=True)
        with mo.open("wb") as fh:
            write_mo(fh, catalog)
        app.add_message_catalog(name, str(locale_dir))


def _page_context(app: Sphinx, pagename, templatename, context, doctree) -> None:
    editions = app.config.langswitch_editions
    if not editions:
        return
    current = app.config.langswitch_current
    links = switcher_links(pagename, current, editions, app.config.root_doc)
    context["langswitch_links"] = links
    this = next(ed for ed in editions if ed["code"] == current)
    context["language"] = this["lang"]
    alternates = "".join(
        f'<link rel="alternate" hreflang="{link["lang"]}" href="{link["href"]}" />\n'
        for link in links
        if not link["current"]
    )
    context["metatags"] = context.get("metatags", "") + alternates


def setup(app: Sphinx) -> dict:
    app.add_config_value("langswitch_current", "", "html", [str])
    app.add_config_value("langswitch_editions", [], "html", [list])
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", _page_context)
    app.add_css_file("langswitch.css")
    _add_ui_catalogs(app)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
