"""A real browser reads the book: headless Chromium opens a chapter page of each edition, the
screenshot is not blank, the language switcher leads to the twin page, and a Chinese search finds
Chinese words.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make system-deps`` installs them) and
selenium (the ``test`` extra). Skipped, with the reason, only where they are missing, and while
no chapter exists. Pages are opened from ``file://``: the book is static and uses relative links.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from book.tools import common  # noqa: E402
from book.tools.common import EDITIONS, LANGS  # noqa: E402

BOOK = Path(os.environ.get("BOOK_ROOT", ROOT)).resolve()
CHAPTERS = {lang: common.chapter_paths(lang, BOOK) for lang in LANGS}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]

pytestmark = [
    pytest.mark.skipif(
        not all(CHAPTERS.values()), reason="no chapter in every chapters/<lang> yet"
    ),
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="headless Chromium not installed (Debian chromium + chromium-driver: "
        "`make system-deps` as root)",
    ),
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (the test extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(driver, condition, timeout=20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def assert_not_blank(png: bytes, where: str, out: Path) -> None:
    """The screenshot shows something: many grey levels, and a fair share of non-white."""
    import io

    import numpy as np
    from PIL import Image

    out.write_bytes(png)
    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    assert gray.shape[0] > 400 and gray.shape[1] > 600, f"{where}: tiny screenshot {gray.shape}"
    non_white = float((gray < 200).mean())
    levels = len(np.unique(gray.astype(int)))
    assert gray.std() > 10 and non_white > 0.01 and levels > 16, (
        f"{where}: screenshot looks blank (std {gray.std():.1f}, {non_white:.1%} non-white, "
        f"{levels} grey levels); saved to {out}"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_chapter_page_renders_and_switcher_leads_to_twin(site, browser, lang, tmp_path):
    from selenium.webdriver.common.by import By

    chapter = CHAPTERS[lang][0].stem
    page = site / lang / f"{chapter}.html"
    browser.get(page.as_uri())
    wait_for(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    assert browser.execute_script("return document.documentElement.lang") == EDITIONS[lang]["html"]
    assert browser.find_element(By.CSS_SELECTOR, "article h1").text.strip(), (
        "the page has no visible title"
    )
    assert_not_blank(browser.get_screenshot_as_png(), f"{lang}/{chapter}", tmp_path / "page.png")

    other = LANGS[(LANGS.index(lang) + 1) % len(LANGS)]
    link = browser.find_element(By.CSS_SELECTOR, f'nav.langswitch a[data-edition="{other}"]')
    assert link.is_displayed(), "the language switcher is not visible"
    link.click()
    twin = site / other / f"{chapter}.html"
    wait_for(browser, lambda d: d.current_url == twin.as_uri())
    wait_for(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    assert browser.execute_script("return document.documentElement.lang") == EDITIONS[other]["html"]
    assert_not_blank(browser.get_screenshot_as_png(), f"{other}/{chapter}", tmp_path / "twin.png")


def test_chinese_search_finds_a_chinese_word(site, browser):
    from selenium.webdriver.common.by import By

    sources = " ".join(p.read_text(encoding="utf-8") for p in CHAPTERS["zh"])
    userdict = (BOOK / "book" / "zh" / "jieba_userdict.txt").read_text(encoding="utf-8").split()
    words = [w for w in userdict[::3] if w in sources]
    if not words:
        pytest.skip("no word of book/zh/jieba_userdict.txt occurs in the Chinese chapters")
    browser.get((site / "zh" / "search.html").as_uri() + f"?q={words[0]}")

    def results(driver):
        items = driver.find_elements(By.CSS_SELECTOR, "#search-results ul.search li")
        return items or None

    found = wait_for(browser, results)
    assert any(CHAPTERS["zh"][0].stem in li.get_attribute("innerHTML") for li in found) or found
