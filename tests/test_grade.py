"""python -m dropoutlib grade: executing student notebooks and collecting the checkers' verdicts.

The fast tests read notebooks and records without a kernel. The slow ones execute small
synthetic notebooks that call real checkers (solutions: all pass; the student edition's stubs:
all "not done"; a broken cell; a malformed file; an endless loop against the time limit) and
chapter 01's student notebook (book.tools.student) in the smoke profile.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from dropoutlib import grade
from dropoutlib.grade import ExerciseResult, NotebookResult

ROOT = Path(__file__).resolve().parents[1]

MY_DROPOUT = '''import torch


def my_dropout(x, p, training=True):
    """Inverted dropout."""
    if not training or p == 0:
        return x
    if p == 1:
        return torch.zeros_like(x)
    return x * (torch.rand(x.shape) >= p) / (1 - p)
'''

FIXED_GPT = '''import torch
import torch.nn.functional as F
from torch import nn

from dropoutlib.checks.review import BuggyGPT


class FixedGPT(BuggyGPT):
    """BuggyGPT with its four bugs fixed."""

    def __init__(self, *args, resid_dropout=0.1, **kwargs):
        super().__init__(*args, resid_dropout=resid_dropout, **kwargs)
        self.resid_dropout = nn.Dropout(resid_dropout)

    def forward(self, idx):
        B, T = idx.shape
        pos = torch.arange(T)
        x = F.dropout(self.tok_emb(idx) + self.pos_emb(pos), self.emb_dropout, self.training)
        q, k, v = self.c_attn(self.ln_1(x)).split(x.size(-1), dim=2)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        p = self.attn_dropout.p if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        x = x + self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, -1)))
        h = F.gelu(self.c_fc(self.ln_2(x)))
        return self.lm_head(self.ln_f(x + self.ffn_dropout(self.mlp_proj(h))))
'''


def exercise(label: str, text: str = "Do it.") -> nbformat.NotebookNode:
    return new_markdown_cell(f"````{{exercise}}\n:label: {label}\n\n{text}\n````")


def notebook(*cells, lang="en") -> nbformat.NotebookNode:
    head = [
        new_markdown_cell("# A chapter"),
        new_code_cell(f'lang = "{lang}"\nprofile = "auto"', metadata={"tags": ["parameters"]}),
        new_code_cell("from dropoutlib import checks"),
    ]
    nb = new_notebook(cells=head + list(cells))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def solution(source: str) -> nbformat.NotebookNode:
    return new_code_cell(source, metadata={"tags": ["solution"]})


def solved() -> nbformat.NotebookNode:
    """Two exercises, one per kind of checker, both solved; a demonstration call before them."""
    return notebook(
        new_code_cell("checks.check_inverted_dropout(lambda x, p, training=True: x, lang=lang)"),
        exercise("ex-dropout"),
        new_markdown_cell("````{solution-start} ex-dropout\n````"),
        solution(MY_DROPOUT),
        new_markdown_cell("````{solution-end}\n````"),
        new_code_cell("checks.check_inverted_dropout(my_dropout, lang=lang)"),
        exercise("ex-bugs"),
        new_markdown_cell("````{solution-start} ex-bugs\n````"),
        solution(FIXED_GPT),
        new_markdown_cell("````{solution-end}\n````"),
        new_code_cell(
            "from dropoutlib.checks import review\n\nreview.check_dropout_bugs(FixedGPT)"
        ),
    )


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


# -- reading notebooks (no kernel) ----------------------------------------------------------------


def test_exercises_are_the_checker_cells_after_a_label():
    nb = solved()
    found = grade.notebook_exercises(nb)
    assert [(e.label, e.checker) for e in found] == [
        ("ex-dropout", "check_inverted_dropout"),
        ("ex-bugs", "check_dropout_bugs"),
    ]
    assert all(nb.cells[e.cell].cell_type == "code" for e in found)
    assert found[0].start < found[0].cell < found[1].start < found[1].cell
    # the demonstration above the first exercise is not graded; gated starts and prose are not
    # exercises; a label in a ```{exercise-start} block is
    nb.cells.insert(4, new_markdown_cell("```{exercise-start}\n:class: x\n:label: ex-0\n```"))
    nb.cells.insert(5, new_code_cell("x = 1\ndropoutlib.checks.check_quiz({})\n\n"))
    assert [e.label for e in grade.notebook_exercises(nb)] == ["ex-0", "ex-dropout", "ex-bugs"]


def test_chapter_01_has_one_graded_exercise():
    nb = nbformat.read(str(ROOT / "chapters" / "en" / "01-standard-dropout.ipynb"), as_version=4)
    assert [(e.label, e.checker) for e in grade.notebook_exercises(nb)] == [
        ("ex-my-dropout", "check_inverted_dropout")
    ]


def test_find_notebooks_names_students(tmp_path):
    nb = solved()
    write(nb, tmp_path / "subs" / "alice" / "01-a.ipynb")
    write(nb, tmp_path / "subs" / "bob" / "deep" / "01-a.ipynb")
    write(nb, tmp_path / "subs" / "carol.ipynb")
    write(nb, tmp_path / "subs" / "alice" / ".ipynb_checkpoints" / "01-a-checkpoint.ipynb")
    single = write(nb, tmp_path / "dave" / "10-review.ipynb")
    found = grade.find_notebooks([tmp_path / "subs", single])
    assert [(p.relative_to(tmp_path).as_posix(), s) for p, s in found] == [
        ("subs/alice/01-a.ipynb", "alice"),
        ("subs/bob/deep/01-a.ipynb", "bob"),
        ("subs/carol.ipynb", "carol"),
        ("dave/10-review.ipynb", "10-review"),
    ]
    with pytest.raises(FileNotFoundError, match="nothing"):
        grade.find_notebooks([tmp_path / "nothing"])


def test_grading_env_is_offline_and_smoke(tmp_path):
    env = grade.grading_env(tmp_path, tmp_path / "v.jsonl", base={"NO_PROXY": "*", "PATH": "/x"})
    assert env["DROPOUTLIB_PROFILE"] == "smoke" and env["DROPOUTLIB_OFFLINE"] == "1"
    assert env["HF_HUB_OFFLINE"] == env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["DROPOUTLIB_VERDICTS"] == str(tmp_path / "v.jsonl")
    assert env["HTTPS_PROXY"].startswith("http://127.0.0.1:") and "NO_PROXY" not in env
    kernel = json.loads((Path(env["JUPYTER_PATH"]) / "kernels/python3/kernel.json").read_text())
    assert kernel["argv"][0] == sys.executable and env["PATH"] == "/x"
    assert "OMP_NUM_THREADS" not in env
    assert grade.grading_env(tmp_path, tmp_path / "v", base={}, threads=2)["OMP_NUM_THREADS"] == "2"
    mine = {"OMP_NUM_THREADS": "4"}  # the instructor's own setting wins
    assert (
        grade.grading_env(tmp_path, tmp_path / "v", base=mine, threads=2)["OMP_NUM_THREADS"] == "4"
    )


def test_malformed_and_empty_notebooks_get_a_verdict(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    result = grade.grade_notebook(bad)
    assert result.status == "malformed" and "JSON" in result.message and not result.exercises
    schema = tmp_path / "schema.ipynb"
    schema.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "cells": [{"x": 1}]}))
    assert grade.grade_notebook(schema).status == "malformed"
    empty = write(notebook(new_code_cell("1 + 1")), tmp_path / "empty.ipynb")
    assert grade.grade_notebook(empty).status == "no exercises"


def executed_copy(nb, running=None, errors=(), counts=True):
    """``nb`` as papermill leaves it: execution counts, statuses (cells before ``running``
    completed, after it pending), error outputs."""
    out = nbformat.from_dict(json.loads(json.dumps(nb)))
    k = 0
    for i, cell in enumerate(out.cells):
        state = "completed" if running is None or i < running else "pending"
        cell.metadata["papermill"] = {"status": "running" if i == running else state}
        if cell.cell_type == "code":
            k += 1
            cell.execution_count = k if counts else None
            if i in errors:
                cell.outputs = [nbformat.v4.new_output("error", ename="NameError", evalue="x")]
    return out


def test_records_become_exercise_statuses():
    nb = solved()
    first, second = grade.notebook_exercises(nb)
    count = {i: k for k, i in grade._counts(nb, None).items()}
    ok = {"passed": True, "held": 12, "total": 12, "failed": None, "hint": None}
    stub = {"passed": False, "not_done": True, "held": 0, "total": 5, "failed": "site_emb"}
    wrong = {"passed": False, "held": 3, "total": 5, "failed": "site_ffn", "hint": "bug_mean"}
    demo = {"passed": False, "held": 0, "total": 12, "cell": count[3]}

    def statuses(records, executed, run_status="ok"):
        results = grade._exercise_results(nb, executed, records, run_status)
        return [(r.exercise, r.status, r.failed, r.hint) for r in results]

    done = executed_copy(nb)
    records = [demo, {**ok, "cell": count[first.cell]}, {**wrong, "cell": count[second.cell]}]
    assert statuses(records, done) == [
        ("ex-dropout", "pass", None, None),
        ("ex-bugs", "fail", "site_ffn", "bug_mean"),
    ]
    # the executed copy's counts are used when it has them, the order of the cells otherwise
    assert statuses(records, executed_copy(nb, counts=False)) == statuses(records, done)
    assert statuses(records, None) == statuses(records, done)
    records = [{**stub, "cell": count[first.cell]}, {**ok, "cell": count[first.cell]}]
    assert statuses(records, done)[0][1] == "pass"  # the last verdict of a cell counts
    assert statuses(records[:1], done)[0][1] == "not done"
    # no verdict: the checker cell raised, the time limit struck, or the kernel died first
    broken = executed_copy(nb, errors={second.cell})
    assert [s[1] for s in statuses(records[:1], broken)] == ["not done", "error"]
    hung = executed_copy(nb, running=second.cell - 2)
    assert [s[1] for s in statuses(records[:1], hung, "timeout")] == ["not done", "timeout"]
    hung_early = executed_copy(nb, running=first.cell - 2)
    assert [s[1] for s in statuses([], hung_early, "timeout")] == ["timeout", "not run"]
    assert [s[1] for s in statuses([], None, "crashed")] == ["not run", "not run"]
    assert [s[1] for s in statuses([], done)] == ["no verdict", "no verdict"]


def test_csv_and_summary(tmp_path):
    results = [
        NotebookResult(
            Path("subs/alice/01.ipynb"),
            "alice",
            "01",
            "ru",
            "ok",
            12.34,
            exercises=[
                ExerciseResult("ex-a", "check_a", "pass", 12, 12),
                ExerciseResult("ex-b", "check_b", "fail", 3, 5, "site_ffn", "bug_mean"),
            ],
        ),
        NotebookResult(Path("subs/bob/01.ipynb"), "bob", "01", None, "malformed", 0.0, "bad"),
    ]
    path = grade.write_csv(results, tmp_path / "g" / "grades.csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [r["status"] for r in rows] == ["pass", "fail", "malformed"]
    assert rows[1]["hint"] == "bug_mean" and rows[1]["held"] == "3" and rows[0]["lang"] == "ru"
    assert rows[2]["message"] == "bad" and rows[2]["exercise"] == ""
    table = grade.summary_table(results).splitlines()
    assert table[0] == "| student | notebook | status | passed | ex-a | ex-b |"
    assert table[2] == "| alice | 01.ipynb | ok | 1/2 | pass | fail |"
    assert table[3] == "| bob | 01.ipynb | malformed | - |  |  |"


def test_command_line_errors(tmp_path):
    from dropoutlib.__main__ import main

    with pytest.raises(SystemExit, match="no .ipynb"):
        main(["grade", str(tmp_path)])
    with pytest.raises(SystemExit, match="no notebook or folder"):
        main(["grade", str(tmp_path / "missing.ipynb")])
    with pytest.raises(SystemExit, match="--timeout"):
        main(["grade", str(tmp_path), "--timeout", "0"])


# -- executing notebooks (a kernel each: seconds) ------------------------------------------------


@pytest.mark.slow
def test_grade_solutions_stubs_broken_and_malformed(tmp_path, isolated_run_cache):
    sys.path.insert(0, str(ROOT))
    from book.tools import student

    subs = tmp_path / "subs"
    write(solved(), subs / "teacher" / "chapter.ipynb")
    write(student.student_notebook(solved(), "ru"), subs / "empty" / "chapter.ipynb")
    broken = solved()
    broken.cells[6].source = "def my_dropot(x, p, training=True):\n    return x\n"  # a typo
    write(broken, subs / "typo" / "chapter.ipynb")
    (subs / "garbage").mkdir()
    (subs / "garbage" / "chapter.ipynb").write_bytes(b"\x89PNG\r\n")
    out = tmp_path / "grades"
    cmd = [sys.executable, "-m", "dropoutlib", "grade", str(subs), "--out", str(out)]
    done = subprocess.run(cmd + ["--jobs", "2", "--timeout", "300"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = {
        (r["student"], r["exercise"]): r
        for r in csv.DictReader((out / "grades.csv").open(encoding="utf-8"))
    }
    assert {k: r["status"] for k, r in rows.items()} == {
        ("teacher", "ex-dropout"): "pass",
        ("teacher", "ex-bugs"): "pass",
        ("empty", "ex-dropout"): "not done",
        ("empty", "ex-bugs"): "not done",
        ("typo", "ex-dropout"): "error",
        ("typo", "ex-bugs"): "pass",
        ("garbage", ""): "malformed",
    }
    assert rows["teacher", "ex-bugs"]["held"] == rows["teacher", "ex-bugs"]["total"] == "5"
    assert rows["empty", "ex-dropout"]["notebook_status"] == "not filled in"
    assert rows["empty", "ex-bugs"]["lang"] == "en"  # the notebook's own parameter
    assert "NameError" in rows["typo", "ex-dropout"]["message"]
    assert rows["typo", "ex-bugs"]["notebook_status"] == "errors"
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "| teacher | chapter.ipynb | ok | 2/2 | pass | pass |" in summary
    assert "| empty | chapter.ipynb | not filled in | 0/2 | not done | not done |" in summary
    assert (out / "executed" / "teacher" / "chapter.ipynb").is_file()


@pytest.mark.slow
def test_an_endless_loop_meets_the_time_limit(tmp_path):
    nb = notebook(
        exercise("ex-loop"),
        solution("while True:\n    pass\n"),
        new_code_cell("checks.check_inverted_dropout(my_dropout, lang=lang)"),
        exercise("ex-after"),
        new_code_cell("checks.check_inverted_dropout(my_dropout, lang=lang)"),
    )
    nb.cells.pop(2)  # the import comes after the loop: the kernel reaches the loop at once
    nb.cells.insert(4, new_code_cell("from dropoutlib import checks"))
    result = grade.grade_notebook(write(nb, tmp_path / "loop.ipynb"), timeout=30)
    assert result.status == "timeout" and 30 <= result.seconds < 60
    assert [(e.exercise, e.status) for e in result.exercises] == [
        ("ex-loop", "timeout"),
        ("ex-after", "not run"),
    ]


@pytest.mark.slow
def test_chapter_01_student_notebook(tmp_path, isolated_run_cache):
    """The real chapter, as handed to students: it runs in the smoke profile, offline, and its
    exercise is reported as not done."""
    sys.path.insert(0, str(ROOT))
    from book.tools import common, student

    path = ROOT / "chapters" / "en" / "01-standard-dropout.ipynb"
    nb = student.student_notebook(common.read_notebook(path), "en")
    result = grade.grade_notebook(write(nb, tmp_path / "01-standard-dropout.ipynb"), timeout=600)
    assert result.status == "not filled in", result.message
    assert [(e.exercise, e.status) for e in result.exercises] == [("ex-my-dropout", "not done")]
