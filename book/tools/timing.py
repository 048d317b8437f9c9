"""How long the book takes to build, measured side by side and printed.

    python -m book.tools.timing            # make html, then a warm make book (nothing changed)
    python -m book.tools.timing --cold     # also a cold make book: empty run cache, FORCE=1
    python -m book.tools.timing --ci       # also CI (.ci/run) on a fresh clone of HEAD
    python -m book.tools.timing --cold --cache /tmp/cold   # keep the cold run cache, and print
                                           # each chapter's training cost from it (budget)

The goals these figures are held to:

* a warm ``make book`` (every notebook current, every run cached) within 2x ``make html``;
* a cold ``make book`` of the ten-chapter book within 30 minutes on 2 cores (each chapter's cpu
  profile within the budget of ../shared/CHAPTERS.md: about 2.5 minutes of training);
* CI within 30 minutes.

A cold build uses a temporary run cache and executes every chapter, so the committed notebooks
are rewritten with fresh outputs; run it on a clean tree and look at ``git diff`` afterwards.
Each command's output is kept in ``book/_build/timing/<name>.log``; the per-notebook execution
times come from ``[execute]`` lines there.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from book.tools.common import ROOT

LOGS = ROOT / "book" / "_build" / "timing"
GOALS = {"warm_over_html": 2.0, "cold_minutes": 30.0, "ci_minutes": 30.0}


def timed(name: str, cmd: list[str], *, cwd: Path = ROOT, env: dict | None = None) -> float:
    """Run ``cmd``; return its wall time in seconds (raises if it fails; output in the log)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    print(f"[timing] {name}: {' '.join(cmd)} (log: {log})", flush=True)
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed with exit code {proc.returncode}; see {log}")
    print(f"[timing] {name}: {seconds:.1f} s", flush=True)
    return seconds


def notebook_times(name: str) -> list[tuple[str, float]]:
    """The ``[execute] <lang>/<nb>: N s`` lines of a logged make book."""
    text = (LOGS / f"{name}.log").read_text(encoding="utf-8")
    return [(m[1], float(m[2])) for m in re.finditer(r"\[execute\] (\S+): ([\d.]+) s", text)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.tools.timing", description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also a cold make book (long)")
    parser.add_argument("--ci", action="store_true", help="also .ci/run on a fresh clone (long)")
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the cold build's run cache in this new folder (default: a temporary one) and "
        "print each chapter's training cost from it (book.tools.budget)",
    )
    args = parser.parse_args(argv)
    if args.cache is not None and (
        not args.cold or (args.cache.exists() and any(args.cache.iterdir()))
    ):
        parser.error("--cache needs --cold and a folder that is new or empty")

    rows = []
    html = timed("make-html", ["make", "html"])
    warm = timed("make-book-warm", ["make", "book"])
    rows.append(("make html", html, ""))
    ratio = warm / html
    ok = "met" if ratio <= GOALS["warm_over_html"] else "MISSED"
    rows.append(("make book, warm", warm, f"{ratio:.2f}x make html (goal <= 2x: {ok})"))
    if args.cold:
        with contextlib.ExitStack() as stack:
            cache = (
                str(args.cache)
                if args.cache
                else stack.enter_context(tempfile.TemporaryDirectory())
            )
            env = dict(os.environ, DROPOUTLIB_CACHE=cache)
            cold = timed("make-book-cold", ["make", "book", "FORCE=1"], env=env)
            if args.cache:
                data = ROOT.parent / "shared" / "data"  # as the Makefile finds the corpora
                if "DROPOUTLIB_DATA" not in env and data.is_dir():
                    env["DROPOUTLIB_DATA"] = str(data)
                budget = [sys.executable, "-m", "book.tools.budget"]
                subprocess.run(budget, cwd=ROOT, env=env, check=True)
        ok = "met" if cold / 60 <= GOALS["cold_minutes"] else "MISSED"
        rows.append(("make book, cold", cold, f"{cold / 60:.1f} min (goal <= 30 min: {ok})"))
        for nb, seconds in notebook_times("make-book-cold"):
            rows.append((f"  execute {nb}", seconds, ""))
    if args.ci:
        with tempfile.TemporaryDirectory() as tmp:
            clone = Path(tmp) / ROOT.name
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            shared = ROOT.parent / "shared"
            if shared.is_dir():  # CI has ../shared beside the checkout
                (Path(tmp) / "shared").symlink_to(shared)
            ci = timed("ci", ["bash", ".ci/run"], cwd=clone, env=dict(os.environ, CI="true"))
            shutil.rmtree(clone / ".venv", ignore_errors=True)
        ok = "met" if ci / 60 <= GOALS["ci_minutes"] else "MISSED"
        rows.append(("CI (.ci/run, fresh clone)", ci, f"{ci / 60:.1f} min (goal <= 30 min: {ok})"))

    print()
    print(f"{'what':<34} {'seconds':>9}  note")
    for what, seconds, note in rows:
        print(f"{what:<34} {seconds:>9.1f}  {note}")
    print(f"(machine: {os.cpu_count()} cores; python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
