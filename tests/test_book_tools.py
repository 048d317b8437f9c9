"""The book tooling: Colab install URL and metadata, student stubs, staging, papermill runs."""

from __future__ import annotations

import ast
import contextlib
import io
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import dropoutlib.train as T

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from book.tools import build, colab, common, execute, student  # noqa: E402
from book.tools.common import LANGS  # noqa: E402
from book.tools.langswitch import twin_href  # noqa: E402

URL = common.install_url()
CHAPTERS = [p for lang in LANGS for p in common.chapter_paths(lang)]
needs_chapters = pytest.mark.skipif(not CHAPTERS, reason="no chapter in chapters/<lang> yet")


def chapter(lang="en", url=URL, solution_in_start_cell=False):
    """A small chapter in the course's conventions, with one coding exercise."""
    start = "````{solution-start} ex-code\n:class: dropdown\n````"
    exercise = (
        "````{exercise-start}\n:label: ex-code\n````\n\nWrite `scale(x, p)`.\n\n"
        "````{exercise-end}\n````"
    )
    cells = [
        new_markdown_cell("# Title\n\nSummary."),
        new_code_cell(f'lang = "{lang}"\nprofile = "auto"', metadata={"tags": ["parameters"]}),
        new_code_cell(
            f'import sys\n\nif "google.colab" in sys.modules:\n    %pip install -q "{url}"'
        ),
        new_markdown_cell(
            "````{exercise}\n:label: ex-prose\n\nWhy scale by 1/(1-p)?\n````\n\n"
            "````{solution} ex-prose\n:class: dropdown\n\nSECRET_PROSE: the expectation.\n````\n"
            "\nText after the solution."
        ),
        new_markdown_cell(exercise + ("\n\n" + start if solution_in_start_cell else "")),
    ]
    if not solution_in_start_cell:
        cells.append(new_markdown_cell(start))
    cells += [
        new_code_cell(
            'import math\n\n\ndef scale(x, p: float = 0.5) -> float:\n    """Inverted scale."""\n'
            "    return x / (1 - p)  # SECRET_CODE\n",
            metadata={"tags": ["solution"]},
        ),
        new_markdown_cell("SECRET_GATED_PROSE\n\n````{solution-end}\n````\n\nAfter the end."),
        new_code_cell("checks.check_scale(scale, lang=lang)"),
    ]
    cells[-1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="✓ all good\n")]
    return new_notebook(cells=cells)


# -- Colab ---------------------------------------------------------------------------------


def test_install_url_comes_from_the_config():
    url, branch = common.repository()
    assert URL == f"git+{url}@{branch}"
    assert url.startswith("https://github.com/")


def test_colab_check_and_fix():
    nb = chapter(url="dropoutlib @ git+https://github.com/someone/else@dev")
    link = "https://colab.research.google.com/github/o/r/blob/main/chapters/en/01-x.ipynb"
    nb.cells[0].source += "\n[Colab](https://colab.research.google.com/github/a/b/blob/x/y.ipynb)"
    problems = colab.check_notebook(nb, URL, link)
    assert any("does not install" in p for p in problems)
    assert any("links" in p for p in problems)
    assert any("accelerator" in p for p in problems)
    assert colab.fix_notebook(nb, URL, link)
    assert colab.check_notebook(nb, URL, link) == []
    assert f'"dropoutlib @ {URL}"' in nb.cells[2].source
    assert nb.metadata.accelerator == "GPU" and nb.metadata.colab.gpuType == "T4"
    assert not colab.fix_notebook(nb, URL, link)  # idempotent


def test_colab_check_needs_exactly_one_install_cell():
    nb = chapter()
    del nb.cells[2]
    assert any("install cell" in p for p in colab.check_notebook(nb, URL))


def test_colab_link_of_a_chapter():
    url, branch = common.repository()
    path = ROOT / "chapters" / "ru" / "01-x.ipynb"
    expected = url.replace("https://github.com/", "https://colab.research.google.com/github/")
    assert colab.colab_link(path) == f"{expected}/blob/{branch}/chapters/ru/01-x.ipynb"


@needs_chapters
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_chapters_agree_with_config(path):
    """Every chapter installs dropoutlib from _config.yml's URL and asks Colab for a GPU."""
    problems = colab.check_notebook(common.read_notebook(path), URL, colab.colab_link(path))
    assert not problems, f"{path.relative_to(ROOT)} (run `make colab`): {problems}"


# -- Student notebooks ---------------------------------------------------------------------


def signature(source: str, name: str) -> str:
    fn = next(n for n in ast.parse(source).body if getattr(n, "name", None) == name)
    return ast.unparse(fn.args) + " -> " + (ast.unparse(fn.returns) if fn.returns else "")


def test_stub_keeps_the_signature_and_raises():
    source = chapter().cells[6].source
    stub = student.stub_source(source, 3, "ru")
    assert signature(stub, "scale") == signature(source, "scale")
    assert "Inverted scale." in stub and "SECRET_CODE" not in stub and "return" not in stub
    namespace: dict = {}
    exec(stub, namespace)
    with pytest.raises(NotImplementedError, match="Упражнение 3"):
        namespace["scale"](1.0)


def test_stub_of_a_cell_without_function():
    stub = student.stub_source("answer = 0.5 * 2\nprint(answer)", 2, "zh")
    with pytest.raises(NotImplementedError, match="练习 2"):
        exec(stub, {})


def test_stub_of_a_class_keeps_its_bases_and_methods():
    source = (
        "import torch\nfrom torch import nn\n\n\nclass Fixed(nn.Module):\n"
        '    """A fixed model."""\n\n    scale = 2  # SECRET_ATTR\n\n'
        "    def __init__(self, p: float = 0.1):\n        super().__init__()\n"
        "        self.p = p  # SECRET_INIT\n\n    def forward(self, x):\n"
        "        return x * self.scale  # SECRET_FORWARD\n"
    )
    stub = student.stub_source(source, 2, "en")
    assert "SECRET" not in stub and "A fixed model." in stub and "from torch import nn" in stub
    namespace: dict = {}
    exec(stub, namespace)
    cls = namespace["Fixed"]
    assert issubclass(cls, namespace["nn"].Module)
    with pytest.raises(NotImplementedError, match="Exercise 2"):
        cls(0.5)
    tree = ast.parse(stub)
    (node,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    methods = {n.name: ast.unparse(n.args) for n in node.body if isinstance(n, ast.FunctionDef)}
    assert methods == {"__init__": "self, p: float=0.1", "forward": "self, x"}


def test_stub_of_an_answers_dict_keeps_the_keys():
    source = 'answers = {\n    "q01": 1.25,  # SECRET\n    "q02": "b",\n}\n'
    stub = student.stub_source(source, 1, "ru")
    assert "SECRET" not in stub and "1.25" not in stub and '"b"' not in stub
    assert "замените каждое None" in stub
    namespace: dict = {}
    exec(stub, namespace)
    assert namespace["answers"] == {"q01": None, "q02": None}
    assert stub.count("\n") >= 4  # one key per line, as the student will fill them in
    # anything else in such a cell is dropped; a cell with nothing to keep still raises
    assert student.stub_source("answers = compute()\n", 1, "en").strip().endswith(")")


@pytest.mark.parametrize("in_start_cell", [False, True])
def test_student_notebook_removes_every_solution(in_start_cell):
    nb = student.student_notebook(chapter(solution_in_start_cell=in_start_cell), "en")
    text = nbformat.writes(nb)
    for secret in ("SECRET_PROSE", "SECRET_CODE", "SECRET_GATED_PROSE", "solution-start", "✓"):
        assert secret not in text, secret
    for kept in ("Why scale by 1/(1-p)?", "Text after the solution.", "Write `scale(x, p)`."):
        assert kept in text, kept
    assert "After the end." in text
    stubs = [c for c in nb.cells if "student-stub" in common.cell_tags(c)]
    assert len(stubs) == 1 and "Exercise 2" in stubs[0].source
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_unclosed_gated_solution_is_an_error():
    nb = chapter()
    nb.cells = [c for c in nb.cells if "solution-end" not in c.source]
    with pytest.raises(ValueError, match="solution-end"):
        student.student_notebook(nb, "en")


@needs_chapters
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_stubs_are_rejected_by_their_checker(path):
    """Each stubbed function still exists with its signature, and its checker says "not yet"."""
    lang = path.parent.name
    nb = common.read_notebook(path)
    stubbed = student.student_notebook(nb, lang)
    solutions = [c for c in nb.cells if "solution" in common.cell_tags(c)]
    stubs = [c for c in stubbed.cells if "student-stub" in common.cell_tags(c)]
    assert len(stubs) == len(solutions)
    checks = pytest.importorskip("dropoutlib.checks")
    for solution, stub in zip(solutions, stubs):
        names = [n.name for n in ast.parse(solution.source).body if isinstance(n, ast.FunctionDef)]
        for name in names:
            assert signature(stub.source, name) == signature(solution.source, name)
        i = nb.cells.index(solution)
        check = next(c for c in nb.cells[i + 1 :] if "checks." in c.source)
        # the notebook's own imports are in scope (a stub may subclass torch.autograd.Function)
        namespace = {"lang": lang, "checks": checks, "torch": torch, "nn": torch.nn}
        exec(stub.source, namespace)
        with contextlib.redirect_stdout(io.StringIO()) as out:
            verdict = eval(check.source.strip().splitlines()[-1], namespace)
        assert verdict is False, f"the checker accepted the stub: {out.getvalue()}"
        assert out.getvalue().strip(), "the checker printed no verdict"


# -- Staging -------------------------------------------------------------------------------


def test_twin_href():
    ed = {"code": "ru", "docnames": ["index", "01-a", "part/02-b"]}
    assert twin_href("01-a", ed) == "../ru/01-a.html"
    assert twin_href("03-missing", ed) == "../ru/index.html"
    assert twin_href("part/02-b", ed) == "../../ru/part/02-b.html"
    assert twin_href("search", ed) == "../ru/search.html"


def test_prune_toc_drops_empty_globs_and_parts():
    toc = {
        "root": "index",
        "parts": [
            {"caption": "Chapters", "chapters": [{"glob": "[0-9][0-9]-*"}]},
            {"caption": "For instructors", "chapters": [{"file": "instructors"}]},
        ],
    }
    assert build._prune_toc(toc, {"index", "instructors"})["parts"] == [toc["parts"][1]]
    assert build._prune_toc(toc, {"index", "01-a", "instructors"}) == toc


def fake_tree(tmp_path: Path, langs=LANGS) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copytree(
        ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("_build", "tools")
    )
    for lang in langs:
        common.write_notebook(chapter(lang), tmp_path / "chapters" / lang / "01-x.ipynb")
    return tmp_path


def test_stage_assembles_each_edition(tmp_path):
    root = fake_tree(tmp_path / "repo", langs=("en", "ru"))  # zh has no chapter yet
    staged = build.stage(tmp_path / "src", root=root)
    config = common.load_yaml(staged["ru"] / "_config.yml")
    assert config["repository"]["path_to_book"] == "chapters/ru"
    assert config["sphinx"]["config"]["language"] == "ru"
    assert config["execute"]["execute_notebooks"] == "off"
    editions = {e["code"]: e for e in config["sphinx"]["config"]["langswitch_editions"]}
    assert "01-x" in editions["en"]["docnames"] and "01-x" not in editions["zh"]["docnames"]
    assert (staged["ru"] / "01-x.ipynb").read_bytes() == (
        root / "chapters" / "ru" / "01-x.ipynb"
    ).read_bytes()
    zh = common.load_yaml(staged["zh"] / "_config.yml")["sphinx"]["config"]
    assert Path(zh["html_search_options"]["dict"]).is_file()
    assert "glob" not in (staged["zh"] / "_toc.yml").read_text()


def test_staging_under_a_build_folder_keeps_every_page(tmp_path):
    """The real staging folder is book/_build/work/src/<lang>: a "_build" in its own path must
    not hide the pages from the switcher (it once sent every chapter to the landing page)."""
    root = fake_tree(tmp_path / "repo")
    staged = build.stage(tmp_path / "book" / "_build" / "work" / "src", root=root)
    assert "01-x" in build.toc_docnames(staged["en"])
    assert "index" in build.toc_docnames(staged["en"])


def test_student_stage_hides_solutions(tmp_path):
    root = fake_tree(tmp_path / "repo", langs=("en",))
    staged = build.stage(tmp_path / "src", root=root, langs=("en",), student=True)
    config = common.load_yaml(staged["en"] / "_config.yml")
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert config["launch_buttons"]["colab_url"] == ""
    assert "SECRET" not in (staged["en"] / "01-x.ipynb").read_text()


def test_edition_language_must_match(tmp_path):
    root = fake_tree(tmp_path / "repo", langs=())
    (root / "book" / "ru" / "_config.yml").write_text("sphinx:\n  config:\n    language: uk\n")
    with pytest.raises(ValueError, match="language must be 'ru'"):
        build.edition_build_config("ru", [], root=root)


# -- Execution -----------------------------------------------------------------------------


def test_parameters_cell_is_checked():
    nb = chapter("ru")
    assert execute.check_parameters(nb, "ru", Path("x"))["profile"] == "auto"
    with pytest.raises(ValueError, match='lang = "zh"'):
        execute.check_parameters(nb, "zh", Path("x"))
    nb.cells[1].metadata["tags"] = []
    with pytest.raises(ValueError, match="parameters"):
        execute.check_parameters(nb, "ru", Path("x"))


def test_papermill_runs_in_the_notebook_folder_with_this_python(tmp_path, monkeypatch):
    root = fake_tree(tmp_path / "repo", langs=())
    path = root / "chapters" / "en" / "01-x.ipynb"
    nb = new_notebook(
        cells=[
            new_code_cell('lang = "en"\nprofile = "auto"', metadata={"tags": ["parameters"]}),
            new_code_cell('import sys\n\nif "google.colab" in sys.modules:\n    pass'),
            new_code_cell("import os, sys\nprint(os.getcwd())\nprint(sys.executable)"),
        ]
    )
    common.write_notebook(nb, path)
    monkeypatch.setenv("JUPYTER_PATH", str(execute.private_kernel(tmp_path / "work")))
    seconds = execute.execute_chapter(path, "en", root=root, work=tmp_path / "work")
    assert seconds > 0
    done = common.read_notebook(path)
    cwd, python = done.cells[2].outputs[0].text.split()
    assert Path(cwd) == path.parent
    assert os.path.realpath(python) == os.path.realpath(sys.executable)
    assert "papermill" not in done.metadata
    assert all("papermill" not in c.metadata and "execution" not in c.metadata for c in done.cells)
    assert done.metadata.accelerator == "GPU"
    assert [c.source for c in done.cells] == [c.source for c in nb.cells]  # nothing injected

    # What it was executed with is recorded, so an unchanged notebook is not executed again.
    assert execute.stale_reason(path, "en") is None
    record = done.metadata.dropoutlib.executed_with
    assert record["results_version"] == T.RESULTS_VERSION and record["parameters"]["lang"] == "en"
    monkeypatch.setenv("DROPOUTLIB_PROFILE", "smoke")
    assert (
        "profile 'cpu' -> 'smoke'" in execute.stale_reason(path, "en")
        or record["profile"] == "smoke"
    )
    monkeypatch.delenv("DROPOUTLIB_PROFILE")
    done.cells[2].source += "\nprint(1)"
    common.write_notebook(done, path)
    assert execute.stale_reason(path, "en") == "changed: code_sha256"
    monkeypatch.setattr(T, "RESULTS_VERSION", T.RESULTS_VERSION + 1)
    assert "results_version" in execute.stale_reason(path, "en")


def test_only_stale_chapters_are_executed(tmp_path, monkeypatch, capsys):
    root = fake_tree(tmp_path / "repo", langs=("en",))
    monkeypatch.setattr(execute, "ROOT", root)
    calls = []
    monkeypatch.setattr(
        execute, "execute_chapter", lambda path, lang, **kw: calls.append(path.name) or 0.5
    )
    monkeypatch.setattr(execute, "stale_reason", lambda path, lang: None)
    assert execute.main(["--lang", "en"]) == 0
    assert calls == [] and "up to date, skipped" in capsys.readouterr().out
    assert execute.main(["--lang", "en", "--force"]) == 0
    assert calls == ["01-x.ipynb"] and "(--force)" in capsys.readouterr().out


def output_text(cell) -> str:
    """The text a code cell's outputs show (streams and the plain-text form of results)."""
    parts = []
    for output in cell.get("outputs", []):
        text = output.get("text") or output.get("data", {}).get("text/plain", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


@needs_chapters
def test_student_edition_html_has_no_solution_code(tmp_path):
    """The student edition (English) shows the stubs and none of the solution code."""
    import html
    import re

    chapters = common.chapter_paths("en")
    if not chapters:
        pytest.skip("no chapter in chapters/en yet")
    out = build.build(tmp_path / "html", work=tmp_path / "work", langs=("en",), student=True)
    for path in chapters:
        page = (out.parent / "en" / f"{path.stem}.html").read_text(encoding="utf-8")
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        cells = common.read_notebook(path).cells
        solutions = [c for c in cells if "solution" in c.metadata.get("tags", [])]
        elsewhere = "\n".join(c.source for c in cells if c not in solutions)
        elsewhere += "\n".join(output_text(c) for c in cells if c not in solutions)
        for cell in solutions:
            body = [
                line.strip()
                for line in cell.source.splitlines()
                if line.strip() and not line.lstrip().startswith(("def ", "#", '"""'))
            ]
            # lines that also occur outside the solutions (e.g. `return x`, or the code a bug
            # hunt shows as an output), or in the stub itself (a class header, the `answers = {`
            # of a quiz), prove nothing
            stub = student.stub_source(cell.source, 1, "en")
            leaked = [
                line
                for line in body
                if line in text and line not in elsewhere and line.split("#")[0].strip() not in stub
            ]
            assert not leaked, f"{path.name}: solution code in the student edition: {leaked}"
        if solutions:
            assert "write your solution here" in text
        assert 'class="solution' not in page


# -- budget: what each chapter's runs cost, from the run cache ---------------------------------


def test_budget_makespan_is_longest_first_on_the_workers():
    from book.tools.budget import makespan

    assert makespan([], 2) == 0.0
    assert makespan([30.0, 10.0, 20.0], 1) == 60.0
    assert makespan([30.0, 10.0, 20.0], 2) == 30.0  # 30 | 20 + 10
    assert makespan([5.0, 5.0, 5.0, 5.0, 5.0], 2) == 15.0


def test_budget_finds_the_experiments_a_notebook_names(tmp_path):
    from book.tools.budget import notebook_experiments

    nb = new_notebook(
        cells=[
            new_markdown_cell('run("not-code")'),
            new_code_cell('results = experiments.run("beta", profile)'),
            new_code_cell('for name in ("alpha", "beta", "other"):\n    run(name)'),
            new_code_cell("%matplotlib inline\nrun('gamma')"),  # a magic: the cell is skipped
        ]
    )
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert notebook_experiments(path, {"alpha", "beta", "gamma"}) == ["beta", "alpha"]


def test_budget_resolves_a_child_through_its_cached_parent(tmp_path, monkeypatch):
    """A fine-tuning run is found under the key its parent gives it, as experiments.run trains
    it; a run never trained is reported missing, not an error."""
    from book.tools.budget import resolve
    from dropoutlib import experiments

    monkeypatch.setenv("DROPOUTLIB_CACHE", str(tmp_path))
    specs = experiments.specs("fine-tuning-su-shi", "smoke")
    before = resolve("fine-tuning-su-shi", "smoke")
    assert set(before) == set(specs) and all(k is None for k, _, _ in before.values())
    results = experiments.run("fine-tuning-su-shi", "smoke", progress=False)
    after = resolve("fine-tuning-su-shi", "smoke")
    for label, (key, seconds, parent) in after.items():
        assert key == results[label].key and seconds == results[label].wall_time_s
        assert parent == specs[label].parent


@pytest.mark.parametrize(
    "path", sorted((ROOT / "chapters").glob("*/*.ipynb")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_chapters_have_no_placeholder_left(path):
    """A chapter written before its neighbours may leave a marker (chapter 10 once had
    ``TODO-LINK``); the book ships none."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for marker in ("TODO", "FIXME", "XXX", "TBD"):
            assert marker not in cell.source, f"{path.name} cell {i}: {marker}"
