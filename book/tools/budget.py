"""What each chapter's cpu profile costs to train, read from the run cache, and printed.

    python -m book.tools.budget                 # every chapter, cpu profile, 2 processes
    python -m book.tools.budget --jobs 1 --profile smoke

For every chapter (in book order) this finds the experiments its notebook runs (the experiment
names written in its code cells), resolves their runs as :func:`dropoutlib.experiments.run`
would (a fine-tuning run's ``init_from`` is its parent's key) and looks each one up in the run
cache. Every cached result records the wall time it trained in (``wall_time_s``, one thread, the
machine it names), so the figures are measured ones, not guesses; but they are measured under
whatever load the machine had then. For the budget, fill a fresh cache with a cold build on an
otherwise idle machine and point this tool at it::

    DROPOUTLIB_CACHE=/tmp/cold make book FORCE=1
    DROPOUTLIB_CACHE=/tmp/cold python -m book.tools.budget

The columns:

* ``runs``: how many runs the chapter needs, ``new``: those no earlier chapter trained (a run
  two chapters share is paid once, by the first, as in a cold ``make book``);
* ``train s``: the recorded training seconds of the new runs, one after another;
* ``wall s``: what they take side by side in ``--jobs`` one-thread processes, parents before the
  runs that start from them (longest run first, as ``experiments.run`` orders them by their
  estimated compute; a lower bound that ignores starting the workers and the work outside the
  runs).

The budget of ../shared/CHAPTERS.md is about 2.5 minutes of training per chapter on 2 cores; a
chapter above it is flagged. A run missing from the cache is listed: train it (``make book``)
and run this again. Executing the notebook, drawing and the three editions come on top; ``python
-m book.tools.timing --cold`` measures the whole cold build.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import heapq
import json
from pathlib import Path

from book.tools.common import ROOT

BUDGET_S = 150.0


def notebook_experiments(path: Path, names) -> list[str]:
    """The experiment names (string literals of ``names``) in the code cells of ``path``, in
    the order they first appear."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        try:
            tree = ast.parse(source)
        except SyntaxError:  # IPython magics: fall back to no literal from this cell
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in names and node.value not in found:
                found.append(node.value)
    return found


def resolve(name: str, profile: str):
    """``{label: (key, wall_time_s or None, parent label)}`` of experiment ``name``."""
    from dropoutlib import experiments, train

    specs = experiments.specs(name, profile)
    out: dict[str, tuple[str | None, float | None, str | None]] = {}
    for label in _parents_first(specs):
        spec = specs[label]
        config = spec.train
        if spec.parent is not None:
            parent_key = out[spec.parent][0]
            if parent_key is None:
                out[label] = (None, None, spec.parent)
                continue
            config = dataclasses.replace(config, init_from=parent_key)
        result = train.lookup(spec.model, config, spec.corpus)
        if result is None:
            out[label] = (None, None, spec.parent)
        else:
            out[label] = (result.key, result.wall_time_s, spec.parent)
    return out


def _parents_first(specs) -> list[str]:
    order, placed = [], set()
    while len(order) < len(specs):
        wave = [
            label
            for label, spec in specs.items()
            if label not in placed and (spec.parent is None or spec.parent in placed)
        ]
        if not wave:
            raise ValueError(f"the parents of {sorted(set(specs) - placed)} form a cycle")
        order += wave
        placed.update(wave)
    return order


def makespan(durations: list[float], jobs: int) -> float:
    """Longest-first on ``jobs`` workers: when the last of ``durations`` ends."""
    workers = [0.0] * jobs
    for d in sorted(durations, reverse=True):
        heapq.heappush(workers, heapq.heappop(workers) + d)
    return max(workers) if durations else 0.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.tools.budget", description=__doc__)
    parser.add_argument("--profile", default="cpu", help="the profile to look up (default cpu)")
    parser.add_argument("--jobs", type=int, default=2, help="one-thread processes (default 2)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")

    from dropoutlib import experiments

    names = set(experiments.EXPERIMENTS)
    seen: set[str] = set()
    missing: list[str] = []
    total_wall = 0.0
    print(f"{'chapter':<34} {'runs':>5} {'new':>4} {'train s':>8} {'wall s':>7}  experiments")
    for path in sorted((ROOT / "chapters" / "en").glob("*.ipynb")):
        exps = notebook_experiments(path, names)
        runs = new = 0
        train_s = wall_s = 0.0
        for name in exps:  # one experiments.run after another
            waves: list[list[float]] = [[], []]  # parents, then the runs that start from them
            for label, (key, seconds, parent) in resolve(name, args.profile).items():
                runs += 1
                if key is None:
                    missing.append(f"{path.stem}: {name} / {label}")
                    continue
                if key in seen:
                    continue
                seen.add(key)
                new += 1
                waves[parent is not None].append(seconds)
            train_s += sum(waves[0]) + sum(waves[1])
            wall_s += makespan(waves[0], args.jobs) + makespan(waves[1], args.jobs)
        total_wall += wall_s
        flag = "  over budget" if wall_s > BUDGET_S else ""
        print(
            f"{path.stem:<34} {runs:>5} {new:>4} {train_s:>8.0f} {wall_s:>7.0f}  "
            f"{', '.join(exps) or '-'}{flag}"
        )
    print(
        f"{'all chapters':<34} {'':>5} {len(seen):>4} {'':>8} {total_wall:>7.0f}  "
        f"({total_wall / 60:.1f} min of training with {args.jobs} processes; "
        f"budget {BUDGET_S:.0f} s per chapter)"
    )
    if missing:
        print(f"not in the run cache ({len(missing)}): " + "; ".join(missing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
