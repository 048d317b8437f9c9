"""One vocabulary per edition: the glossaries, the chapters, the figure labels and the checker hints
use the same word for the same thing (../shared/TRANSLATION.md; the words are in book/terms.yml).

* (a) every term of ``book/terms.yml`` is in each edition's glossary page;
* (b) where the prose of an English chapter uses a term, its Russian and Chinese twins use one of
  the term's renderings (chapters are globbed, so new ones are covered as they land);
* (c) no forbidden variant (nor a calque of the ``avoid`` lists) appears in a language's chapter
  prose, book pages, figure labels or checker hints; the glossary page alone may name one;
* (d) figure labels and checker hints that use a term in English use its rendering too;
* (e) the Russian typography a machine can check: a no-break space (U+00A0) before an em dash and
  between a number and ``%`` or «нат», thousands grouped with U+202F.

Prose is the markdown with code blocks, inline code, math, URLs and link targets taken out, so
code, formulas and addresses cannot trigger a check; MyST directives (exercises, solutions) are
prose. Glue roles stand for numbers.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LANGS = ("en", "ru", "zh")
TERMS_FILE = ROOT / "book" / "terms.yml"
NBSP, NNBSP = "\u00a0", "\u202f"


# -- reading the vocabulary and the texts -----------------------------------------------------


_CLASS_OR_SPACE = re.compile(r"\[[^\]]*\]| ")


def compile_term(pattern: str) -> re.Pattern:
    """A space in a pattern (outside a character class) matches any run of whitespace, so a term
    that the markdown source wraps across two lines is still found."""
    pattern = _CLASS_OR_SPACE.sub(lambda m: r"\s+" if m.group(0) == " " else m.group(0), pattern)
    return re.compile(pattern, re.IGNORECASE)


def load_vocabulary(path: Path = TERMS_FILE) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for term in data["terms"]:
        for lang in LANGS:
            term[lang] = [compile_term(p) for p in term[lang]]
        term["forbidden"] = {
            lang: [compile_term(p) for p in term.get("forbidden", {}).get(lang, [])]
            for lang in LANGS
        }
    data["avoid"] = {
        lang: [compile_term(p) for p in data.get("avoid", {}).get(lang, [])] for lang in LANGS
    }
    return data


VOCAB = load_vocabulary()


def forbidden_patterns(lang: str) -> list[re.Pattern]:
    patterns = [p for term in VOCAB["terms"] for p in term["forbidden"][lang]]
    return patterns + VOCAB["avoid"][lang]


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*(\S*)")
_OPTION = re.compile(r"^\s*:[\w-]+:")
_GLUE = re.compile(r"\{glue(?::\w+)?\}`[^`]*`")
_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.DOTALL)
_DISPLAY_MATH = re.compile(r"\$\$.+?\$\$", re.DOTALL)
_MATH = re.compile(r"\$[^$]+?\$", re.DOTALL)
_URL = re.compile(r"https?://[A-Za-z0-9._~:/?#@!$&'*+,;=%-]+")
_LINK_TARGET = re.compile(r"\]\([^()\s]*\)")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HINT_CODE = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|\b\w+=(?:\"[^\"]*\"|\S+)")
_CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")


def drop_code_blocks(markdown: str) -> str:
    """Lines of fenced code blocks become empty; MyST directives (```{name}) stay, minus their
    ``:option:`` lines."""
    out, stack = [], []  # stack of (fence, is_directive)
    for line in markdown.split("\n"):
        m = _FENCE.match(line)
        if m:
            fence, info = m.group(1), m.group(2)
            if (
                stack
                and not info
                and fence[0] == stack[-1][0][0]
                and len(fence) >= len(stack[-1][0])
            ):
                stack.pop()
                out.append("")
                continue
            if not stack or stack[-1][1]:
                stack.append((fence, info.startswith("{")))
                out.append("")
                continue
        if stack and not stack[-1][1]:
            out.append("")
        elif stack and _OPTION.match(line):
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def prose(markdown: str, *, keep_code: bool = False) -> str:
    """The reader's text of a markdown source. Inline code becomes ``CODE`` (or stays, with
    ``keep_code``), math ``MATH``, a glue role the number ``0``; URLs and link targets go."""
    text = _COMMENT.sub(" ", drop_code_blocks(markdown))
    text = _GLUE.sub("0", text)
    text = _ROLE.sub("CODE", text)
    spans: list[str] = []

    def stash(m: re.Match) -> str:
        spans.append(m.group(0))
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE.sub(stash, text)
    text = _DISPLAY_MATH.sub("MATH", text)
    text = _MATH.sub("MATH", text)
    text = _LINK_TARGET.sub("]", text)
    text = _URL.sub("", text)
    text = _CJK_BREAK.sub("", text)  # a line break inside Chinese text is no word boundary
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))] if keep_code else "CODE", text)


def chapter_markdown(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def chapters(lang: str) -> list[Path]:
    return sorted((ROOT / "chapters" / lang).glob("*.ipynb"))


def glossary(lang: str) -> str:
    return (ROOT / "book" / lang / "glossary.md").read_text(encoding="utf-8")


def book_pages(lang: str) -> list[Path]:
    """The edition's own pages, the glossary excepted (it names the variants it forbids)."""
    return sorted(p for p in (ROOT / "book" / lang).glob("*.md") if p.name != "glossary.md")


def table_texts(lang: str) -> dict[str, str]:
    """Every figure label and checker hint of ``lang``, ``{fields}`` replaced by ``0``, dotted
    Python names (``dropoutlib.uncertainty.r_drop_loss``) and keyword arguments
    (``schedule="linear"``) by ``CODE``: code is not prose."""
    from dropoutlib import checks, viz

    out = {}
    for kind, table in (("label", viz.LABELS), ("hint", checks.HINTS)):
        for key, text in table[lang].items():
            text = re.sub(r"\{[^{}]*\}", "0", text)
            out[f"{kind} {key}"] = _HINT_CODE.sub("CODE", text)
    return out


def found(patterns, text: str) -> bool:
    return any(p.search(text) for p in patterns)


def where(text: str, m: re.Match) -> str:
    return repr(text[max(0, m.start() - 30) : m.end() + 30])


# -- the helpers themselves ------------------------------------------------------------------


def test_prose_keeps_directives_and_drops_code_math_urls():
    md = (
        "Intro `torch.rand` and $p = 0.5$ and {glue:text}`v10_params:,d` params.\n"
        "```python\nforbidden_in_code = 1\n```\n"
        "```{exercise}\n:label: ex-one\n\nThe question, with $$x$$ math.\n```\n"
        "See [a link](https://example.org/x) and https://example.org/y.\n"
        "![badge](https://example.org/b.svg)](https://example.org/c)中文，https://example.org/d。\n"
        "Later text (kept).\n"
    )
    text = prose(md)
    assert "forbidden_in_code" not in text and "ex-one" not in text
    assert "The question" in text and "example.org" not in text and "a link" in text
    assert "中文，。" in text and "Later text (kept)." in text
    assert "检查函数" in prose("调用其中的检查\n  函数。")
    assert "torch.rand" not in text and "p = 0.5" not in text and "0 params" in text
    assert "`torch.rand`" in prose(md, keep_code=True)


def test_vocabulary_patterns_behave():
    terms = {t["en"][0].pattern.replace(r"\s+", " "): t for t in VOCAB["terms"]}
    notebook = terms[r"\bnotebooks?\b"]["forbidden"]["ru"]
    assert found(notebook, "запуск ноутбука") and found(notebook, "на ноутбуке")
    assert not found(notebook, "ноутбук Jupyter") and not found(notebook, "блокнот")
    inverted = terms["inverted dropout"]["forbidden"]["ru"]
    assert found(inverted, "обратного dropout") and not found(inverted, "обратный проход")
    block = terms[r"\bblocks?\b"]["forbidden"]["zh"]
    assert found(block, "最初的 Transformer 在每个模块中都使用了它")
    assert not found(block, "Transformer 中的暂退模块") and not found(block, "3 个 Transformer 块")
    mask = terms[r"(?<![\[\w])masks?\b(?![/\]])"]["en"]
    assert found(mask, "a fresh mask") and not found(mask, "x[mask] = 0")
    assert not found(mask, "must be mask/(1-p) times")
    wrapped = terms["token masking"]
    assert found(wrapped["ru"], "и маскирование\nтокенов") and found(
        wrapped["en"], "token\n  masking"
    )
    early_exit = terms["early[ -]exit"]["en"]  # a space inside a character class stays one space
    assert found(early_exit, "early-exit") and not found(early_exit, "early\nexit")
    loss = terms[r"\bloss(?:es)?\b"]["forbidden"]["ru"]
    assert found(loss, "функция потерь на обучении равна") and found(loss, "обе функции потерь")
    assert not found(loss, "усреднение функции потерь по маскам")


def test_every_language_has_the_same_terms():
    for term in VOCAB["terms"]:
        for lang in LANGS:
            assert term[lang], (term["en"], lang)


# -- (a) the glossaries ----------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_glossary_holds_every_term(lang):
    text = glossary(lang)
    missing = [t[lang][0].pattern for t in VOCAB["terms"] if not t[lang][0].search(text)]
    assert not missing, f"book/{lang}/glossary.md lacks {missing}"


# -- (b) the chapters use the glossary's words -----------------------------------------------


def twin_pairs():
    for en in chapters("en"):
        for lang in ("ru", "zh"):
            yield pytest.param(en, ROOT / "chapters" / lang / en.name, lang, id=f"{lang}/{en.stem}")


@pytest.mark.parametrize("en_path, path, lang", list(twin_pairs()))
def test_twin_uses_the_rendering_of_every_term_the_english_uses(en_path, path, lang):
    assert path.exists(), f"{path} is missing"
    en_text, text = prose(chapter_markdown(en_path)), prose(chapter_markdown(path))
    missing = [
        (t["en"][0].pattern, t[lang][0].pattern)
        for t in VOCAB["terms"]
        if found(t["en"], en_text) and not found(t[lang], text)
    ]
    assert not missing, f"{path.name} ({lang}): no rendering of {missing}"


# -- (c) no forbidden variant -----------------------------------------------------------------


def sources(lang: str):
    """(name, text) of everything a reader of ``lang`` sees, the glossary excepted."""
    for path in chapters(lang):
        yield f"chapters/{lang}/{path.name}", prose(chapter_markdown(path), keep_code=True)
    for path in book_pages(lang):
        yield f"book/{lang}/{path.name}", prose(path.read_text(encoding="utf-8"), keep_code=True)
    yield from table_texts(lang).items()


@pytest.mark.parametrize("lang", ("ru", "zh"))
def test_no_forbidden_variant(lang):
    problems = []
    for name, text in sources(lang):
        for pattern in forbidden_patterns(lang):
            for m in pattern.finditer(text):
                problems.append(f"{name}: {pattern.pattern!r} at {where(text, m)}")
    assert not problems, "\n".join(problems)


# -- (d) labels and hints --------------------------------------------------------------------


@pytest.mark.parametrize("lang", ("ru", "zh"))
def test_labels_and_hints_use_the_glossary_words(lang):
    en, other = table_texts("en"), table_texts(lang)
    problems = [
        f"{key}: {other[key]!r} has no rendering of {t['en'][0].pattern!r}"
        for key, text in en.items()
        for t in VOCAB["terms"]
        if found(t["en"], text) and not found(t[lang], other[key])
    ]
    assert not problems, "\n".join(problems)


# -- (e) Russian typography ------------------------------------------------------------------

# A regular space (or a line break) before an em dash; "|" starts a table cell.
_DASH = re.compile(r"(?<=[^\s|])[ \t]*\n?[ \t]*(?<!\u00a0)—")
_UNIT = re.compile(r"\d(?:[ \t]+|[ \t]*\n[ \t]*)(?:%|нат\b)")
_GROUPED = re.compile(r"(?<![\d.,])\d{1,3}(?:[ \t\u00a0]\d{3})+(?![\d.,])")
_UNGROUPED = re.compile(r"(?<![\d.,\w])\d{5,}(?![\d.,\w])")


def typography_errors(text: str) -> list[tuple[str, re.Match]]:
    errors = []
    for m in _DASH.finditer(text):
        if m.group(0) != "—":  # some whitespace other than U+00A0 stands before the dash
            errors.append(("a no-break space (U+00A0) goes before «—»", m))
    for m in _UNIT.finditer(text):
        errors.append(("a no-break space (U+00A0) goes between a number and its unit", m))
    for m in _GROUPED.finditer(text):
        errors.append(("thousands are grouped with U+202F", m))
    for m in _UNGROUPED.finditer(text):
        errors.append(("a number of five digits or more is grouped with U+202F", m))
    return errors


def test_typography_checks_catch_the_usual_errors():
    assert typography_errors("слово — слово") and typography_errors("слово\n— слово")
    assert not typography_errors("слово\u00a0— слово") and not typography_errors("| — |")
    assert typography_errors("90 %") and typography_errors("0.285 нат")
    assert not typography_errors("90\u00a0%") and not typography_errors("0.285\u00a0нат")
    assert typography_errors("431 069") and typography_errors("431069")
    assert not typography_errors("431\u202f069") and not typography_errors("5000 шагов")
    assert not typography_errors("0.42860 и 1207.0580")


def russian_texts():
    for path in chapters("ru"):
        yield f"chapters/ru/{path.name}", prose(chapter_markdown(path))
    for path in sorted((ROOT / "book" / "ru").glob("*.md")):
        yield f"book/ru/{path.name}", prose(path.read_text(encoding="utf-8"))
    yield from table_texts("ru").items()


def test_russian_typography():
    problems = [
        f"{name}: {rule}: {where(text, m)}"
        for name, text in russian_texts()
        for rule, m in typography_errors(text)
    ]
    assert not problems, "\n".join(problems)
