"""Student notebooks: every solution replaced by a stub the checker rejects until it is solved.

A chapter marks its solutions two ways (sphinx-exercise, DESIGN.md):

* code cells tagged ``solution``, inside a gated ``solution-start`` / ``solution-end`` pair
  of markdown cells;
* prose solutions in ``{solution}`` directive blocks of markdown cells.

``student_notebook`` removes both. Each ``solution`` code cell becomes a stub: the functions it
defines keep their name, signature, decorators and docstring and their body becomes
``raise NotImplementedError("Exercise N: ...")``, so the exercise's ``dropoutlib.checks`` call
still finds the function and reports it as not done. A class keeps its name, bases and docstring,
and each of its methods is stubbed the same way. A dictionary of answers (``answers = {"q01":
1.25, ...}``, a quiz) keeps its keys, and every value becomes ``None``: the checker reports the
questions as not answered yet. Imports are kept; a cell with none of these becomes a single
``raise NotImplementedError(...)``. The outputs of checker cells (which would show the
instructor's verdict) are cleared; ``keep_outputs=False`` clears every output, for the notebooks
handed to students.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from book.tools import common
from book.tools.common import LANGS, ROOT

SOLUTION_TAG = "solution"
STUB_MESSAGE = {
    "en": "Exercise {n}: write your solution here",
    "ru": "Упражнение {n}: напишите здесь своё решение",
    "zh": "练习 {n}：请在这里写下你的解答",
}
STUB_COMMENT = {
    "en": "# Exercise {n}: replace the line `raise NotImplementedError(...)` with your code.",
    "ru": "# Упражнение {n}: замените строку `raise NotImplementedError(...)` своим кодом.",
    "zh": "# 练习 {n}：把 `raise NotImplementedError(...)` 这一行换成你的代码。",
}
ANSWERS_COMMENT = {
    "en": "# Exercise {n}: replace each None with your answer.",
    "ru": "# Упражнение {n}: замените каждое None своим ответом.",
    "zh": "# 练习 {n}：把每个 None 换成你的答案。",
}
_FENCE = r"(?P<fence>`{3,}|:{3,})"
EXERCISE_RE = re.compile(r"^\s*" + _FENCE + r"\{exercise(?:-start)?\}", re.M)
SOLUTION_BLOCK_RE = re.compile(
    r"^[ \t]*" + _FENCE + r"\{solution\}.*?^[ \t]*(?P=fence)[ \t]*$\n?", re.M | re.S
)
START_RE = re.compile(
    r"^[ \t]*" + _FENCE + r"\{solution-start\}.*?^[ \t]*(?P=fence)[ \t]*$\n?", re.M | re.S
)
END_RE = re.compile(
    r"^[ \t]*" + _FENCE + r"\{solution-end\}.*?^[ \t]*(?P=fence)[ \t]*$\n?", re.M | re.S
)
CHECK_RE = re.compile(r"\bchecks\.\w+\s*\(|dropoutlib\.checks\b")


def _stub_function(node: ast.FunctionDef | ast.AsyncFunctionDef, message: str):
    body = []
    doc = ast.get_docstring(node, clean=False)
    if doc is not None:
        body.append(ast.Expr(ast.Constant(doc)))
    body.append(
        ast.Raise(
            exc=ast.Call(ast.Name("NotImplementedError", ast.Load()), [ast.Constant(message)], []),
            cause=None,
        )
    )
    new = type(node)(
        name=node.name,
        args=node.args,
        body=body,
        decorator_list=node.decorator_list,
        returns=node.returns,
        type_comment=None,
        **({"type_params": node.type_params} if hasattr(node, "type_params") else {}),
    )
    return ast.fix_missing_locations(new)


def _stub_class(node: ast.ClassDef, message: str) -> ast.ClassDef:
    body = []
    doc = ast.get_docstring(node, clean=False)
    if doc is not None:
        body.append(ast.Expr(ast.Constant(doc)))
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            body.append(_stub_function(item, message))
    if not body:
        body.append(ast.Pass())
    new = ast.ClassDef(
        name=node.name,
        bases=node.bases,
        keywords=node.keywords,
        body=body,
        decorator_list=node.decorator_list,
        **({"type_params": node.type_params} if hasattr(node, "type_params") else {}),
    )
    return ast.fix_missing_locations(new)


def _answers_stub(node) -> str | None:
    """``name = {"q01": ..., ...}`` with constant keys -> the same keys, every value None, one
    key per line; None for any other statement."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
    if not (
        isinstance(value, ast.Dict)
        and value.keys
        and all(isinstance(k, ast.Constant) for k in value.keys)
        and all(isinstance(t, ast.Name) for t in targets)
    ):
        return None
    names = " = ".join(t.id for t in targets)
    lines = [f"    {ast.unparse(k)}: None," for k in value.keys]
    return f"{names} = {{\n" + "\n".join(lines) + "\n}"


def stub_source(source: str, n: int, lang: str = "en") -> str:
    """The stub that replaces the solution ``source`` of exercise ``n``."""
    common.check_lang(lang)
    message = STUB_MESSAGE[lang].format(n=n)
    comment = STUB_COMMENT[lang].format(n=n)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = None
    imports, parts, code, answers = [], [], False, False
    if tree is not None:
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                imports.append(ast.unparse(node))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                parts.append(ast.unparse(_stub_function(node, message)))
                code = True
            elif isinstance(node, ast.ClassDef):
                parts.append(ast.unparse(_stub_class(node, message)))
                code = True
            elif isinstance(node, ast.Assign | ast.AnnAssign) and _answers_stub(node):
                parts.append(_answers_stub(node))
                answers = True
    if not (code or answers):
        return f"{comment}\nraise NotImplementedError({message!r})\n"
    comments = [comment] * code + [ANSWERS_COMMENT[lang].format(n=n)] * answers
    body = "\n\n\n".join(["\n".join(imports)] * bool(imports) + parts)
    return "\n".join(comments) + f"\n{body}\n"


def _strip_solution_prose(text: str) -> str:
    return SOLUTION_BLOCK_RE.sub("", text)


def student_notebook(nb, lang: str, *, keep_outputs: bool = False):
    """A copy of ``nb`` without solutions (see the module docstring)."""
    common.check_lang(lang)
    nb = nbformat.from_dict(nb)  # deep copy
    cells = []
    n_exercise = 0
    in_gated = False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = cell.source
            n_exercise += len(EXERCISE_RE.findall(text))
            if in_gated:
                end = END_RE.search(text)
                if not end:
                    continue  # prose inside a gated solution
                text = text[end.end() :]
                in_gated = False
            start = START_RE.search(text)
            if start:
                end = END_RE.search(text, start.end())
                if end:
                    text = text[: start.start()] + text[end.end() :]
                else:
                    text = text[: start.start()]
                    in_gated = True
            text = _strip_solution_prose(text)
            if text.strip():
                cell.source = text
                cells.append(cell)
            continue
        if cell.cell_type == "code" and (in_gated or SOLUTION_TAG in common.cell_tags(cell)):
            stub = nbformat.v4.new_code_cell(stub_source(cell.source, max(n_exercise, 1), lang))
            tags = [t for t in common.cell_tags(cell) if t != SOLUTION_TAG]
            stub.metadata["tags"] = [*tags, "student-stub"]
            cells.append(stub)
            continue
        if in_gated:
            continue  # a raw cell inside a gated solution
        if cell.cell_type == "code":
            if not keep_outputs or CHECK_RE.search(cell.source):
                cell.outputs = []
                cell.execution_count = None
        cells.append(cell)
    if in_gated:
        raise ValueError("a {solution-start} block has no matching {solution-end}")
    nb.cells = cells
    if not keep_outputs:
        nb.metadata.pop("widgets", None)  # widget state belongs to the cleared outputs
    return nb


def write_student_notebooks(out: Path, *, root: Path = ROOT, langs=LANGS) -> list[Path]:
    """Write ``out/<lang>/NN-slug.ipynb`` for every chapter; return the paths."""
    written = []
    for lang in langs:
        for path in common.chapter_paths(lang, root):
            nb = student_notebook(common.read_notebook(path), lang)
            dest = Path(out) / lang / path.name
            common.write_notebook(nb, dest)
            written.append(dest)
    return written
