"""Grade student notebooks: ``python -m dropoutlib grade SUBMISSIONS...``.

    python -m dropoutlib grade submissions/            # every .ipynb under it
    python -m dropoutlib grade a.ipynb b.ipynb --timeout 900 --jobs 2 --out grades/

Each notebook is executed with papermill in a fresh kernel and a child process of its own, in
a working folder of its own, with

* the smoke profile (``DROPOUTLIB_PROFILE=smoke``): the chapters' experiments train for a few
  steps only (finished runs are cached, so thirty copies of a chapter train once);
* a time limit per notebook (``--timeout``, default 600 s): past it, the process and its kernel
  are killed and the notebook is reported as timed out;
* no network: ``DROPOUTLIB_OFFLINE=1`` (the corpora come from ``$DROPOUTLIB_DATA``, or the
  user's corpus cache, and are never downloaded), ``HF_HUB_OFFLINE=1`` and
  ``TRANSFORMERS_OFFLINE=1`` (models are built from config classes, nothing is fetched),
  ``PIP_NO_INDEX=1``, and HTTP(S) proxies pointed at a closed local port, so any other download
  fails at once instead of hanging;
* errors allowed: a cell that raises does not stop the notebook, so one broken exercise does not
  hide the verdicts of the others.

**Where the verdicts come from.** Every checker of :mod:`dropoutlib.checks` appends its verdict to
``$DROPOUTLIB_VERDICTS`` as a JSON line, with the execution count of the cell that called it.
The grader finds the graded exercises in the notebook itself: a code cell whose last line calls
a checker (``checks.check_<name>(...)``) belongs to the exercise whose ``:label:`` precedes it
(checker calls before the first exercise are demonstrations and are not graded). Each exercise
gets a status:

* ``pass`` / ``fail``: the checker's verdict (with the first failed property and its hint key);
* ``not done``: the checker saw the stub of the student edition (``raise NotImplementedError``,
  answers left at ``None``);
* ``error``: the checker cell raised (a ``NameError`` when the student deleted a function, say);
* ``timeout``: the cell was running when the time limit struck; ``not run``: never reached
  (after a time limit or a crashed kernel); ``no verdict``: the cell ran but called no checker.

and the notebook one: ``ok``, ``errors`` (some cells raised), ``not filled in`` (it ran and every
exercise is ``not done``), ``timeout``, ``crashed`` (the kernel or papermill died),
``malformed`` (not a readable notebook) or ``no exercises``. A notebook never crashes the grader.

**Results.** ``OUT/grades.csv`` (one row per notebook and exercise), ``OUT/summary.md`` (one row
per notebook, one column per exercise) and the summary on standard output; each notebook's
executed copy is kept in ``OUT/executed/`` for a closer look.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "Exercise",
    "ExerciseResult",
    "NotebookResult",
    "find_notebooks",
    "grade",
    "grade_notebook",
    "grading_env",
    "notebook_exercises",
    "private_kernel",
    "summary_table",
    "write_csv",
]

DEFAULT_TIMEOUT_S = 600.0
_ERROR_TAG = "papermill-error-cell-tag"  # papermill.execute.ERROR_MARKER_TAG
CSV_FIELDS = (
    "student",
    "notebook",
    "chapter",
    "lang",
    "exercise",
    "checker",
    "status",
    "held",
    "total",
    "failed",
    "hint",
    "notebook_status",
    "seconds",
    "message",
)

# A checker call on the last line of a cell: checks.check_xyz(...), review.check_xyz(...), ...
_CHECK_CALL = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?(check_\w+)\s*\(")
# The label of an exercise directive: ```{exercise} / ````{exercise-start}, then ":label: name".
_EXERCISE_LABEL = re.compile(
    r"^[ \t]*(?:`{3,}|:{3,})\{exercise(?:-start)?\}[^\n]*\n(?:[ \t]*:[\w-]+:[^\n]*\n)*?"
    r"[ \t]*:label:[ \t]*(\S+)",
    re.M,
)


@dataclass
class Exercise:
    """A graded exercise of a notebook: its label, the checker cell (index among all cells), the
    checker it calls, and the cell where the exercise starts (its statement)."""

    label: str
    cell: int
    checker: str
    start: int = 0


@dataclass
class ExerciseResult:
    exercise: str
    checker: str
    status: str
    held: int | None = None
    total: int | None = None
    failed: str | None = None
    hint: str | None = None
    message: str = ""


@dataclass
class NotebookResult:
    path: Path
    student: str
    chapter: str
    lang: str | None
    status: str
    seconds: float
    message: str = ""
    exercises: list[ExerciseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(e.status == "pass" for e in self.exercises)


# -----------------------------------------------------------------------------------------------
# Reading a notebook


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _last_line(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def notebook_exercises(nb) -> list[Exercise]:
    """The graded exercises of ``nb``: every code cell whose last line calls a checker, labelled
    by the last exercise directive above it (cells above the first exercise are not graded)."""
    exercises, label, start = [], None, 0
    for i, cell in enumerate(nb.cells):
        source = _source(cell)
        if cell.cell_type == "markdown":
            labels = _EXERCISE_LABEL.findall(source)
            if labels:
                label, start = labels[-1], i
        elif cell.cell_type == "code" and label is not None:
            match = _CHECK_CALL.match(_last_line(source))
            if match:
                exercises.append(Exercise(label, i, match.group(1), start))
                start = i + 1  # a second checker of the same exercise starts after this one
    return exercises


def _parameter(nb, name: str) -> str | None:
    """A string parameter (``lang = "ru"``) of the cell tagged ``parameters``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in _tags(cell):
            match = re.search(rf"^{name}\s*=\s*['\"]([^'\"]*)['\"]", _source(cell), re.M)
            return match.group(1) if match else None
    return None


def _read(path: Path):
    """The notebook at ``path``, or the reason it is not one."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # JSON errors, schema errors, a binary file, ...
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return nb, ""


def find_notebooks(paths) -> list[tuple[Path, str]]:
    """(notebook, student) for every ``.ipynb`` given or under a folder given (checkpoints
    skipped). The student is the first folder under the given folder (``subs/alice/01.ipynb``:
    ``alice``), else the notebook's own name."""
    found = []
    for arg in paths:
        root = Path(arg)
        if root.is_dir():
            for path in sorted(root.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in path.parts:
                    continue
                rel = path.relative_to(root)
                found.append((path, rel.parts[0] if len(rel.parts) > 1 else path.stem))
        elif root.is_file():
            found.append((root, root.stem))
        else:
            raise FileNotFoundError(f"no notebook or folder at {root}")
    return found


# -----------------------------------------------------------------------------------------------
# Executing one notebook


def grading_env(
    work: Path, verdicts: Path, *, base: dict | None = None, threads: int | None = None
) -> dict[str, str]:
    """The environment of the process that executes a notebook (see the module docstring).
    ``threads``: the CPU threads of its kernel (``OMP_NUM_THREADS``), when several notebooks run
    at once and the caller's environment does not set it."""
    env = dict(os.environ if base is None else base)
    if threads is not None and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(threads)
    closed = "http://127.0.0.1:9"  # the discard port: connections are refused at once
    env.update(
        DROPOUTLIB_PROFILE="smoke",
        DROPOUTLIB_VERDICTS=str(verdicts),
        DROPOUTLIB_OFFLINE="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        PIP_NO_INDEX="1",
        HTTP_PROXY=closed,
        HTTPS_PROXY=closed,
        http_proxy=closed,
        https_proxy=closed,
        ALL_PROXY=closed,
        all_proxy=closed,
        MPLBACKEND="Agg",
        JUPYTER_PATH=str(private_kernel(work)),
        PYTHONUNBUFFERED="1",
    )
    for name in ("NO_PROXY", "no_proxy"):
        env.pop(name, None)
    return env


def private_kernel(work: Path, display_name: str = "Python 3 (dropoutlib grade)") -> Path:
    """A ``python3`` kernelspec under ``work`` running this Python, so notebooks run with this
    dropoutlib whatever ``python3`` kernel is registered elsewhere; returns the folder to put
    first on ``JUPYTER_PATH`` (the grader's and the book's executor both use it)."""
    data = Path(work) / "jupyter"
    spec = data / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(kernel, indent=1))
    return data


def _kill(proc: subprocess.Popen) -> None:
    """Kill the executing process group; its kernel exits with it (ipykernel watches its parent)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _execute(src: Path, out: Path, work: Path, env: dict, timeout: float):
    """Run papermill on ``src`` in a child process; return (status, seconds, message)."""
    cmd = [sys.executable, "-m", "dropoutlib.grade", str(src), str(out), str(work), str(timeout)]
    log = work / "papermill.log"
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(
            cmd, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return "timeout", time.perf_counter() - t0, f"killed after {timeout:g} s"
    seconds = time.perf_counter() - t0
    if code == 0:
        return "ok", seconds, ""
    tail = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line]
    return "crashed", seconds, tail[-1][:300] if tail else f"exit code {code}"


def _worker(src: str, out: str, cwd: str, timeout: str) -> int:
    """The child process: execute ``src`` into ``out`` with papermill, errors allowed."""
    import papermill

    try:
        papermill.execute_notebook(
            src,
            out,
            kernel_name="python3",
            language="python",
            cwd=cwd,
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=True,  # the saved copy shows where a time limit struck
            execution_timeout=int(float(timeout)) + 1,  # per cell; the parent limits the total
            allow_errors=True,
        )
    except papermill.PapermillExecutionError:
        pass  # some cells raised; their errors are in the output notebook
    return 0


def _verdicts(path: Path) -> list[dict]:
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a kill
    return records


def _counts(nb, executed) -> dict[int, int]:
    """Execution count -> cell index: as the executed copy records it when it has them, else by
    order (nbclient runs every non-empty code cell once, in order: the k-th has count k)."""
    if executed is not None:
        counts = {
            cell.execution_count: i
            for i, cell in enumerate(executed.cells)
            if cell.cell_type == "code" and isinstance(cell.get("execution_count"), int)
        }
        if counts:
            return counts
    counts, k = {}, 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and _source(cell).strip():
            k += 1
            counts[k] = i
    return counts


def _tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _cell_error(cell) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"[:300]
    return None


def _cell_state(cell) -> str | None:
    return (cell.get("metadata", {}).get("papermill") or {}).get("status")


def _exercise_results(nb, executed, records, run_status) -> list[ExerciseResult]:
    running = None  # the cell the time limit struck in, as the last saved copy shows
    if executed is not None:
        running = next(
            (i for i, c in enumerate(executed.cells) if _cell_state(c) == "running"), None
        )
    by_cell: dict[int, dict] = {}
    counts = _counts(nb, executed)
    for record in records:
        index = counts.get(record.get("cell"))
        if index is not None:
            by_cell[index] = record  # the last verdict of a cell counts
    results = []
    for ex in notebook_exercises(nb):
        record = by_cell.get(ex.cell)
        cell = executed.cells[ex.cell] if executed is not None else None
        if record is not None:
            status = "pass" if record.get("passed") else "fail"
            if record.get("not_done"):
                status = "not done"
            results.append(
                ExerciseResult(
                    ex.label,
                    ex.checker,
                    status,
                    record.get("held"),
                    record.get("total"),
                    record.get("failed"),
                    record.get("hint"),
                )
            )
            continue
        error = _cell_error(cell) if cell is not None else None
        state = _cell_state(cell) if cell is not None else None
        if error:
            status, message = "error", error
        elif run_status == "timeout" and running is not None and ex.start <= running <= ex.cell:
            status, message = "timeout", f"the time limit struck in cell {running}"
        elif run_status in ("timeout", "crashed") and state != "completed":
            status, message = "not run", f"the notebook {run_status} before this cell"
        else:
            status, message = "no verdict", "the cell ran but called no checker"
        results.append(ExerciseResult(ex.label, ex.checker, status, message=message))
    return results


def grade_notebook(
    path,
    *,
    student: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    out: Path | None = None,
    threads: int | None = None,
) -> NotebookResult:
    """Execute and grade one notebook (see the module docstring); never raises for a bad
    notebook. ``out``: a folder to keep the executed copy in (``out/executed/<student>/<name>``);
    ``threads``: see :func:`grading_env`."""
    path = Path(path)
    student = student or path.stem
    nb, problem = _read(path)
    if nb is None:
        return NotebookResult(path, student, path.stem, None, "malformed", 0.0, problem)
    lang = _parameter(nb, "lang")
    exercises = notebook_exercises(nb)
    if not exercises:
        return NotebookResult(path, student, path.stem, lang, "no exercises", 0.0)
    with tempfile.TemporaryDirectory(prefix="dropoutlib-grade-") as tmp:
        work = Path(tmp)
        src, executed_path, verdicts = work / path.name, work / "executed.ipynb", work / "v.jsonl"
        shutil.copyfile(path, src)
        env = grading_env(work, verdicts, threads=threads)
        run_status, seconds, message = _execute(src, executed_path, work, env, timeout)
        executed = _read(executed_path)[0] if executed_path.is_file() else None
        if executed is not None:  # without the two cells papermill adds to point at an error
            executed.cells = [c for c in executed.cells if _ERROR_TAG not in _tags(c)]
        if executed is not None and len(executed.cells) != len(nb.cells):
            executed = None  # not the notebook we know how to map
        results = _exercise_results(nb, executed, _verdicts(verdicts), run_status)
        if out is not None and executed_path.is_file():
            keep = Path(out) / "executed" / student / path.name
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(executed_path, keep)
    status = run_status
    if run_status == "ok":
        errors = [c for c in (executed.cells if executed else []) if _cell_error(c)]
        if all(r.status == "not done" for r in results):
            status = "not filled in"
        elif errors:
            status = "errors"
            message = f"{len(errors)} cell(s) raised, first: {_cell_error(errors[0])}"
    return NotebookResult(path, student, path.stem, lang, status, seconds, message, results)


def grade(
    paths, *, timeout: float = DEFAULT_TIMEOUT_S, jobs: int = 1, out: Path | None = None, log=print
) -> list[NotebookResult]:
    """Grade every notebook of ``paths`` (files or folders), ``jobs`` at a time."""
    notebooks = find_notebooks(paths)
    # Several kernels at once share the cores instead of each taking all of them.
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None

    def one(item):
        path, student = item
        result = grade_notebook(path, student=student, timeout=timeout, out=out, threads=threads)
        log(
            f"[grade] {path}: {result.status}, {result.passed}/{len(result.exercises)} passed, "
            f"{result.seconds:.0f} s"
        )
        return result

    if jobs <= 1:
        return [one(item) for item in notebooks]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, notebooks))


# -----------------------------------------------------------------------------------------------
# Reporting


def _rows(results: list[NotebookResult]):
    for r in results:
        base = dict(
            student=r.student,
            notebook=str(r.path),
            chapter=r.chapter,
            lang=r.lang or "",
            notebook_status=r.status,
            seconds=f"{r.seconds:.1f}",
        )
        if not r.exercises:
            yield {**base, "exercise": "", "checker": "", "status": r.status, "message": r.message}
        for e in r.exercises:
            row = {k: ("" if v is None else v) for k, v in asdict(e).items()}
            yield {**base, **row, "message": e.message or r.message}


def write_csv(results: list[NotebookResult], path) -> Path:
    """One row per notebook and exercise (a notebook without exercises: one row)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in _rows(results):
            writer.writerow({k: row.get(k, "") for k in CSV_FIELDS})
    return path


def summary_table(results: list[NotebookResult]) -> str:
    """A Markdown table: one row per notebook, one column per exercise label."""
    labels = []
    for r in results:
        for e in r.exercises:
            if e.exercise not in labels:
                labels.append(e.exercise)
    head = ["student", "notebook", "status", "passed", *labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = {e.exercise: e.status for e in r.exercises}
        passed = f"{r.passed}/{len(r.exercises)}" if r.exercises else "-"
        row = [r.student, r.path.name, r.status, passed, *(cells.get(x, "") for x in labels)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


# -----------------------------------------------------------------------------------------------
# Command line (python -m dropoutlib grade)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("submissions", nargs="+", help="notebooks, or folders searched for *.ipynb")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds per notebook, kernel start included (default {DEFAULT_TIMEOUT_S:g})",
    )
    p.add_argument("--jobs", type=int, default=1, help="notebooks executed at once (default 1)")
    p.add_argument("--out", default="grades", help="folder for grades.csv, summary.md, executed/")


def run_from_args(args: argparse.Namespace) -> int:
    try:
        import nbformat  # noqa: F401
        import papermill  # noqa: F401
    except ImportError as err:
        raise SystemExit(
            f"error: grading needs papermill and nbformat ({err}); "
            'install them with pip install "dropoutlib[book]"'
        ) from None
    if args.timeout <= 0:
        raise SystemExit(f"error: --timeout must be > 0 seconds, got {args.timeout}")
    if args.jobs < 1:
        raise SystemExit(f"error: --jobs must be >= 1, got {args.jobs}")
    try:
        notebooks = find_notebooks(args.submissions)
    except FileNotFoundError as err:
        raise SystemExit(f"error: {err}") from None
    if not notebooks:
        raise SystemExit(f"error: no .ipynb file in {' '.join(args.submissions)}")
    out = Path(args.out)
    results = grade(args.submissions, timeout=args.timeout, jobs=args.jobs, out=out)
    csv_path = write_csv(results, out / "grades.csv")
    table = summary_table(results)
    (out / "summary.md").write_text(table + "\n", encoding="utf-8")
    print(table)
    print(f"\nwritten: {csv_path}, {out / 'summary.md'}, executed copies in {out / 'executed'}")
    return 0


if __name__ == "__main__":  # the child process of _execute
    sys.exit(_worker(*sys.argv[1:5]))
