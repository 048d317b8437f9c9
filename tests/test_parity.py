"""The Russian and Chinese chapters are the English ones, translated: same files, same code.

nbval re-executes only the English notebooks; these checks tie ru/ zh/ to them:

* the three folders hold the same chapter files;
* code cells are identical, in the same order, once comments are removed (tokenize, after
  IPython's own transformation of ``%magics``); the ``parameters`` cell may differ only in the
  value of ``lang``, which must name the folder;
* every code cell carries the same tags;
* text outputs (stdout, stderr, ``text/plain``) are identical to the English ones, after the
  nbval sanitizer (figure sizes, addresses, timings). Exempt, by design: cells tagged
  ``nbval-ignore-output`` (their output depends on the run, so even two English runs differ),
  and cells whose code reads ``lang`` (they print in the reader's language, e.g. a checker's
  verdict). Images are not compared (labels are translated).
"""

from __future__ import annotations

import configparser
import io
import os
import re
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from book.tools import common  # noqa: E402

SANITIZE_CFG = ROOT / "tests" / "nbval_sanitize.cfg"
IGNORE_OUTPUT = "nbval-ignore-output"
BOOK = Path(os.environ.get("BOOK_ROOT", ROOT)).resolve()  # another checkout to check, if set
EN = common.chapter_paths("en", BOOK)
needs_chapters = pytest.mark.skipif(not EN, reason="no chapter in chapters/en yet")


def code_tokens(source: str) -> list[tuple[int, str]]:
    """The code of a cell without comments: its tokens, minus COMMENT / NL / ENCODING."""
    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(source)
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING}
    return [
        (tok.type, tok.string)
        for tok in tokenize.generate_tokens(io.StringIO(python).readline)
        if tok.type not in skip
    ]


def parameters_without_lang(source: str) -> list[tuple[int, str]]:
    """Tokens of a parameters cell with the value of ``lang = "..."`` blanked out."""
    tokens = code_tokens(source)
    out = list(tokens)
    for i in range(len(tokens) - 2):
        if tokens[i] == (tokenize.NAME, "lang") and tokens[i + 1] == (tokenize.OP, "="):
            out[i + 2] = (tokenize.STRING, "LANG")
    return out


def reads_lang(source: str) -> bool:
    return (tokenize.NAME, "lang") in code_tokens(source)


def load_sanitizers(path: Path = SANITIZE_CFG) -> list[tuple[re.Pattern, str]]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    return [(re.compile(parser[s]["regex"]), parser[s]["replace"]) for s in parser.sections()]


def text_outputs(cell, sanitizers) -> dict[str, str]:
    """stdout / stderr (joined: papermill may split a stream) and text/plain, sanitized."""
    out: dict[str, str] = {}
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            out[o.name] = out.get(o.name, "") + o.text
        elif o.output_type in ("execute_result", "display_data") and "text/plain" in o.data:
            out.setdefault("text/plain", "")
            out["text/plain"] += o.data["text/plain"] + "\n"
        elif o.output_type == "error":
            out["error"] = f"{o.ename}: {o.evalue}"
    for key, text in out.items():
        for regex, replace in sanitizers:
            text = regex.sub(replace, text)
        out[key] = text
    return out


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def compare(en_nb, other_nb, lang: str, sanitizers) -> list[str]:
    """Every difference between two twins (an empty list when they agree)."""
    problems = []
    en_cells, cells = code_cells(en_nb), code_cells(other_nb)
    if len(en_cells) != len(cells):
        return [f"{len(cells)} code cells, English has {len(en_cells)}"]
    for i, (a, b) in enumerate(zip(en_cells, cells)):
        tags_a, tags_b = set(common.cell_tags(a)), set(common.cell_tags(b))
        if tags_a != tags_b:
            problems.append(f"code cell {i}: tags {sorted(tags_b)}, English {sorted(tags_a)}")
        if "parameters" in tags_a:
            if parameters_without_lang(a.source) != parameters_without_lang(b.source):
                problems.append(f"code cell {i} (parameters) differs beyond `lang`")
            value = common.parameter_values(b.source).get("lang")
            if value != lang:
                problems.append(f'parameters cell sets lang = {value!r}, expected "{lang}"')
            continue
        if code_tokens(a.source) != code_tokens(b.source):
            problems.append(f"code cell {i} differs from English (comments aside)")
            continue
        if IGNORE_OUTPUT in tags_a or reads_lang(a.source):
            continue
        out_a, out_b = text_outputs(a, sanitizers), text_outputs(b, sanitizers)
        if out_a != out_b:
            problems.append(f"code cell {i}: text output differs from English: {out_b} != {out_a}")
    return problems


# -- the helpers themselves ------------------------------------------------------------------


def test_comments_are_ignored_but_code_is_not():
    a = 'x = 1  # one\n# a whole line\ny = "# not a comment"\n%timeit f(x)\n'
    b = 'x = 1  # один\ny = "# not a comment"\n%timeit f(x)\n'
    assert code_tokens(a) == code_tokens(b)
    # a %magic line is handed to the magic whole, so text after # there is code
    assert code_tokens(a) != code_tokens(b.replace("f(x)", "f(x)  # magic"))
    assert code_tokens(a) != code_tokens(b.replace("x = 1", "x = 2"))
    assert code_tokens('s = "# a"') != code_tokens('s = "# б"')  # strings are code


def test_parameters_may_differ_only_in_lang():
    en = 'lang = "en"  # language\nprofile = "auto"\n'
    ru = 'lang = "ru"  # язык\nprofile = "auto"\n'
    assert parameters_without_lang(en) == parameters_without_lang(ru)
    assert parameters_without_lang(en) != parameters_without_lang(ru.replace("auto", "cpu"))


def test_compare_finds_each_kind_of_difference():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    def nb(lang, body="print(1)", out="1\n", tags=(), note="# note"):
        cells = [
            new_markdown_cell("prose"),
            new_code_cell(f'lang = "{lang}"\nprofile = "auto"', metadata={"tags": ["parameters"]}),
            new_code_cell(f"{note}\n{body}", metadata={"tags": list(tags)}),
            new_code_cell("checks.run(f, lang=lang)"),
        ]
        cells[2].outputs = [new_output("stream", name="stdout", text=out)]
        cells[3].outputs = [new_output("stream", name="stdout", text=f"verdict in {lang}\n")]
        return new_notebook(cells=cells)

    san = load_sanitizers()
    assert compare(nb("en"), nb("ru", note="# заметка"), "ru", san) == []
    assert "differs from English" in compare(nb("en"), nb("ru", body="print(2)"), "ru", san)[0]
    assert "tags" in compare(nb("en"), nb("ru", tags=["hide-input"]), "ru", san)[0]
    assert "text output" in compare(nb("en"), nb("ru", out="2\n"), "ru", san)[0]
    assert "lang =" in compare(nb("en"), nb("en"), "zh", san)[0]
    ignored = nb("en", tags=[IGNORE_OUTPUT]), nb("ru", tags=[IGNORE_OUTPUT], out="2\n")
    assert compare(*ignored, "ru", san) == []


def sanitize(text: str, sanitizers) -> str:
    for regex, replace in sanitizers:
        text = regex.sub(replace, text)
    return text


def vendor_rules() -> dict[str, re.Pattern]:
    """The sanitizer's rules for nn.Dropout's CPU-vendor-dependent masks, by section name."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SANITIZE_CFG, encoding="utf-8")
    return {s: re.compile(parser[s]["regex"]) for s in parser.sections() if "CPU vendor" in s}


def test_nbval_reads_the_rules_these_tests_read():
    from nbval.plugin import get_sanitize_patterns

    text = SANITIZE_CFG.read_text(encoding="utf-8")
    assert get_sanitize_patterns(text) == [(r.pattern, rep) for r, rep in load_sanitizers()]


def test_native_dropout_rules_hide_the_cpu_vendor_not_errors():
    """PyTorch draws nn.Dropout's CPU mask with MKL on Intel and with its own generator elsewhere,
    so one seed gives two masks: the rules map either to one text, but not a wrong mask (unscaled)
    or statistics outside sampling noise (p and 1 - p swapped)."""
    san = load_sanitizers()
    assert len(vendor_rules()) == 2
    ones = "tensor([[1., 1., 1., 1., 1., 1.],\n        [1., 1., 1., 1., 1., 1.]])\n"
    mask = "True\ntensor([[{}],\n        [{}]])\nFalse\n" + ones
    here = mask.format("0., 0., 2., 0., 0., 0.", "2., 2., 0., 2., 2., 2.")
    there = mask.format("2., 0., 2., 2., 0., 0.", "0., 2., 2., 0., 2., 0.")
    unscaled = mask.format("1., 0., 1., 0., 0., 0.", "1., 1., 0., 1., 1., 1.")
    assert sanitize(here, san) == sanitize(there, san) != here
    assert sanitize(unscaled, san) != sanitize(here, san)

    line = "{:20s} keep={}  E[y]={}  Var[y]={}\n"
    for name in ("nn.Dropout", "dropoutlib.Dropout"):
        here = line.format(name, "0.7001", "1.0001", "0.4285")
        there = line.format(name, "0.6994", "0.9991", "0.4290")
        swapped = line.format(name, "0.3001", "0.4287", "0.5715")
        assert sanitize(here, san) == sanitize(there, san) != here
        assert sanitize(swapped, san) == swapped
    # the scratch version draws with torch.rand, the same on every CPU: compared as it is
    scratch = line.format("dropout_scratch", "0.7002", "1.0003", "0.4284")
    assert sanitize(scratch, san) == scratch


# -- the real chapters ---------------------------------------------------------------------


@needs_chapters
@pytest.mark.parametrize("lang", ["ru", "zh"])
def test_same_chapter_files(lang):
    assert [p.name for p in common.chapter_paths(lang, BOOK)] == [p.name for p in EN]


@needs_chapters
@pytest.mark.parametrize("lang", ["ru", "zh"])
@pytest.mark.parametrize("name", [p.name for p in EN])
def test_twin_matches_english(lang, name):
    twin = BOOK / "chapters" / lang / name
    if not twin.is_file():
        pytest.fail(f"chapters/{lang}/{name} is missing")
    en_nb = common.read_notebook(BOOK / "chapters" / "en" / name)
    problems = compare(en_nb, common.read_notebook(twin), lang, load_sanitizers())
    assert not problems, f"chapters/{lang}/{name}:\n  " + "\n  ".join(problems)


@needs_chapters
@pytest.mark.parametrize("name", [p.name for p in EN])
def test_english_parameters_cell(name):
    _, cell = common.parameters_cell(common.read_notebook(BOOK / "chapters" / "en" / name))
    values = common.parameter_values(cell.source)
    assert values.get("lang") == "en" and values.get("profile") == "auto", values


@needs_chapters
def test_native_dropout_rules_still_match_the_chapters():
    """A rule that no longer matches its output hides nothing and guards nothing: each must
    match a committed English output (chapter 01's sections 1.4 and 1.5)."""
    texts = [
        text_outputs(cell, []).get("stdout", "")
        for path in EN
        for cell in code_cells(common.read_notebook(path))
    ]
    for name, regex in vendor_rules().items():
        assert any(regex.search(text) for text in texts), f"[{name}] matches no chapter output"
