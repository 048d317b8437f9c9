"""Execute the chapters with papermill and write the outputs back into ``chapters/<lang>/``.

    python -m book.tools.execute                  # what changed, all languages, en first
    python -m book.tools.execute --force          # every chapter (make book FORCE=1)
    python -m book.tools.execute --lang ru --chapter 01-standard-dropout

**Only what changed is executed.** After a run, each notebook's metadata records what it was
executed with (``metadata.dropoutlib.executed_with``): a hash of its code cells, its
parameters, dropoutlib's version, the results version of the run cache
(:data:`dropoutlib.train.RESULTS_VERSION`) and the profile the experiments resolved to. A
notebook whose record matches is skipped: its committed outputs are what executing it would
give, and re-executing on another CPU would only change last digits, widget ids and how stream
outputs are split, leaving the tree dirty when nothing changed. ``--force`` executes every
chapter (after a change to a figure of ``dropoutlib.viz``, say, which none of the above sees).

The committed notebooks carry the outputs of this run: the book renders them with
``execute_notebooks: off``. Choices, and why:

* No papermill parameters are passed: the ``parameters`` cell already holds ``lang`` (checked
  against the folder) and ``profile = "auto"`` (``gpu`` where CUDA is present, else ``cpu``;
  ``DROPOUTLIB_PROFILE`` overrides it). With no parameters papermill injects no extra cell, so
  the committed notebook stays the one the authors wrote and Colab opens.
* Working directory = the notebook's folder (papermill's ``cwd``), as for nbval, Jupyter and
  Colab's own run, so relative paths resolve the same way everywhere.
* Kernel ``python3``, pinned to the Python running this tool (the project's .venv): a private
  kernelspec is put first on ``JUPYTER_PATH``, so a ``python3`` kernel registered elsewhere
  (``~/.local/share/jupyter``) cannot take over.
* Chapters run one after another, English first: the runs they train are cached by
  ``dropoutlib.experiments``, so the Russian and Chinese twins reuse them.
* A failing notebook is not written back; its partial output is kept under
  ``book/_build/executed/<lang>/`` and the error names the cell.
* Papermill's per-cell timing metadata is dropped before writing back (it would make every run
  a diff); widget state, which the static book needs, is kept.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

from book.tools import colab, common
from book.tools.common import LANGS, ROOT


def private_kernel(work: Path) -> Path:
    """A ``python3`` kernelspec running ``sys.executable``; returns the dir for JUPYTER_PATH."""
    from dropoutlib.grade import private_kernel as kernel

    return kernel(work, display_name="Python 3 (ipykernel)")


def check_parameters(nb, lang: str, path: Path) -> dict:
    """The parameters cell must hold ``lang = "<lang>"`` and a ``profile``."""
    try:
        _, cell = common.parameters_cell(nb)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    values = common.parameter_values(cell.source)
    if values.get("lang") != lang:
        raise ValueError(
            f'{path}: the parameters cell must set lang = "{lang}", got {values.get("lang")!r}'
        )
    if "profile" not in values:
        raise ValueError(f'{path}: the parameters cell must set profile (e.g. profile = "auto")')
    return values


def execution_record(nb, lang: str, path: Path) -> dict:
    """What a notebook's outputs depend on, as recorded after executing it (see the docstring)."""
    import dropoutlib
    from dropoutlib.experiments import resolve_profile
    from dropoutlib.train import RESULTS_VERSION

    parameters = check_parameters(nb, lang, path)
    code = "\n\x1e\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    return {
        "code_sha256": hashlib.sha256(code.encode("utf-8")).hexdigest(),
        "parameters": parameters,
        "dropoutlib": dropoutlib.__version__,
        "results_version": RESULTS_VERSION,
        "profile": resolve_profile(parameters.get("profile", "auto")),
    }


def stale_reason(path: Path, lang: str) -> str | None:
    """Why chapter ``path`` must be executed again, or None when its outputs are current."""
    nb = common.read_notebook(path)
    recorded = (nb.metadata.get("dropoutlib") or {}).get("executed_with")
    if not recorded:
        return "never executed by this tool"
    now = execution_record(nb, lang, path)
    changed = [key for key in now if recorded.get(key) != now[key]]
    if not changed:
        return None
    return "changed: " + ", ".join(
        key if key == "code_sha256" else f"{key} {recorded.get(key)!r} -> {now[key]!r}"
        for key in changed
    )


def clean_executed(nb):
    """Drop papermill's run metadata (timings, status) from an executed notebook."""
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    return nb


def execute_chapter(path: Path, lang: str, *, root: Path = ROOT, work: Path) -> float:
    """Execute one chapter in place; return its wall time in seconds."""
    import papermill

    path = Path(path)
    nb = common.read_notebook(path)
    check_parameters(nb, lang, path)
    out = Path(work) / "executed" / lang / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(path),
            str(out),
            kernel_name="python3",
            language="python",
            cwd=str(path.parent),
            progress_bar=False,
            log_output=False,
            request_save_on_cell_execute=False,
        )
    except papermill.PapermillExecutionError as err:
        raise RuntimeError(
            f"{path} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\n  partial output kept in {out}"
        ) from None
    seconds = time.perf_counter() - t0
    executed = clean_executed(common.read_notebook(out))
    colab.fix_notebook(executed, common.install_url(root), colab.colab_link(path, root))
    record = dict(nb.metadata.get("dropoutlib") or {})
    record["executed_with"] = execution_record(executed, lang, path)
    executed.metadata["dropoutlib"] = record
    common.write_notebook(executed, path)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.tools.execute", description=__doc__)
    parser.add_argument("--lang", action="append", choices=LANGS, help="only these languages")
    parser.add_argument("--chapter", action="append", help="only these chapters (NN-slug)")
    parser.add_argument(
        "--force", action="store_true", help="execute even the chapters whose outputs are current"
    )
    args = parser.parse_args(argv)
    langs = args.lang or list(LANGS)
    work = ROOT / "book" / "_build"
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(private_kernel(work)), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    )
    profile = os.environ.get("DROPOUTLIB_PROFILE")
    print(
        f"[execute] profile: {profile or 'auto (the notebooks default)'}; python: {sys.executable}"
    )
    todo = [
        (lang, path)
        for lang in langs
        for path in common.chapter_paths(lang, ROOT)
        if not args.chapter or path.stem in args.chapter
    ]
    if not todo:
        print("[execute] no chapter to execute")
        return 0
    total, executed = 0.0, 0
    for lang, path in todo:
        try:
            reason = "--force" if args.force else stale_reason(path, lang)
        except ValueError as err:
            print(f"[execute] FAILED: {err}", file=sys.stderr)
            return 1
        if reason is None:
            print(f"[execute] {lang}/{path.name}: up to date, skipped", flush=True)
            continue
        print(f"[execute] {lang}/{path.name} ({reason}) ...", flush=True)
        try:
            seconds = execute_chapter(path, lang, work=work)
        except (RuntimeError, ValueError) as err:
            print(f"[execute] FAILED: {err}", file=sys.stderr)
            return 1
        total += seconds
        executed += 1
        print(f"[execute] {lang}/{path.name}: {seconds:.1f} s, outputs written back", flush=True)
    skipped = len(todo) - executed
    print(f"[execute] {executed} notebooks executed in {total:.1f} s, {skipped} up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
