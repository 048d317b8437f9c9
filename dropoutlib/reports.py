"""Tables of finished runs: the losses of any experiment (:func:`loss_summary`), and the Learned
Dropout study (seed 002) with its small-scale reproduction.

Yifei Yan's "Learned Dropout" README (``yiphei/yif-AI``, ``learned_dropout/README.md``) reports
one row per run: train loss, validation loss, the average fraction of ones in the rounded mask
("average % of 1s in M_rounded") and the parameter count. :func:`learned_dropout_table` builds the
same rows from our runs (:func:`dropoutlib.experiments.run` of
``"learned-dropout-shakespeare"``), :func:`learned_dropout_markdown` prints them in the book's
three languages, :func:`learned_dropout_findings` checks the README's three claims on them, and
:data:`PUBLISHED` holds the README's own numbers for a side-by-side.

What a row means:

* ``train_loss`` / ``val_loss``: the last evaluation of the run (after the last step), pure
  cross-entropy in nats per token with the model in eval mode (every dropout off; LearnedDropout
  uses its deterministic ``M >= 0.5`` mask).
* ``ones``: the fraction of ones in the rounded LearnedDropout mask of the last *training*
  forward before that evaluation, averaged over the layers (``mask_stats(model)["ones"]``).
  ``None`` for the baselines: their mask is not learned (during training its expected fraction
  of ones is ``1 - p`` at every site; in eval it is 1). The markdown prints ``—`` there, as the
  README prints "NA".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = [
    "PUBLISHED",
    "loss_summary",
    "loss_summary_text",
    "RESULTS_URL",
    "load_results",
    "learned_dropout_findings",
    "learned_dropout_markdown",
    "learned_dropout_report",
    "learned_dropout_table",
    "mask_history",
    "published_rows",
    "row_name",
    "seed_spread",
    "split_loss",
]

# seed 002 = learned_dropout/README.md of yiphei/yif-AI, tables of the "Results" section (GPT-2
# BPE tokens of a Wikipedia corpus, 26k steps, one A100). The "without penalty", pi/2 and pi runs
# have the LearnedDropout model's size (the README prints it once, for shift 0).
PUBLISHED: dict[str, dict] = {
    "LearnedDropout shift 0": dict(train_loss=2.937, val_loss=3.384, ones=0.6167, params=15335424),
    "LearnedDropout shift 0, no penalty": dict(
        train_loss=2.911, val_loss=3.403, ones=0.9609, params=15335424
    ),
    "LearnedDropout shift pi/2": dict(
        train_loss=2.967, val_loss=3.405, ones=0.5955, params=15335424
    ),
    "LearnedDropout shift pi": dict(train_loss=3.055, val_loss=3.457, ones=0.2507, params=15335424),
    "baseline dropout 0": dict(train_loss=2.845, val_loss=3.475, ones=None, params=15441192),
    "baseline dropout 0.2": dict(train_loss=3.1, val_loss=3.354, ones=None, params=15441192),
    "baseline dropout 0.3": dict(train_loss=3.213, val_loss=3.425, ones=None, params=15441192),
    "baseline dropout 0.4": dict(train_loss=3.319, val_loss=3.512, ones=None, params=15441192),
}

# Where the committed results files live when this package was installed without its checkout
# (``pip install git+...`` on Colab): the repository of _config.yml, branch main.
RESULTS_URL = (
    "https://raw.githubusercontent.com/dropout-in-llms/dropout-in-llms/main/results/{name}"
)


def load_results(name: str) -> dict:
    """A committed results file of the repository's ``results/`` folder, e.g.
    ``load_results("bench-cpu.json")``, as a dict.

    Read from ``$DROPOUTLIB_RESULTS`` when set, else from the checkout this package lives in
    (``results/`` beside ``dropoutlib/``); where neither holds it (a package installed without
    its checkout, as on Colab) it is downloaded once from :data:`RESULTS_URL` into
    ``results/`` under the corpus cache (:func:`dropoutlib.data.data_dir`).
    """
    import http.client
    import json
    import os
    from pathlib import Path

    from dropoutlib._io import atomic_write
    from dropoutlib.data import _fetch, data_dir

    if not isinstance(name, str) or not name.endswith(".json") or "/" in name or "\\" in name:
        raise ValueError(f"name must be a file name ending in .json, got {name!r}")
    env = os.environ.get("DROPOUTLIB_RESULTS")
    folders = [Path(env).expanduser()] if env else []
    folders += [Path(__file__).resolve().parents[1] / "results", data_dir() / "results"]
    for folder in folders:
        path = folder / name
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    url = RESULTS_URL.format(name=name)
    try:
        data = _fetch(url)
    except (OSError, http.client.HTTPException) as err:
        raise FileNotFoundError(
            f"results file {name!r} is in none of {[str(f) for f in folders]} and could not be "
            f"downloaded from {url} ({err})"
        ) from None
    doc = json.loads(data.decode("utf-8"))  # a broken download raises here, before the cache
    atomic_write(data_dir() / "results" / name, data)
    return doc


_HEADERS = {
    "en": ("run", "train loss", "val loss", "average fraction of 1s in M_rounded", "parameters"),
    "ru": (
        "запуск",
        "потери на обучении",
        "потери на валидации",
        "средняя доля 1 в M_rounded",
        "параметры",
    ),
    "zh": ("运行", "训练损失", "验证损失", "M_rounded 中 1 的平均比例", "参数量"),
}
_WORDS = {
    "en": {
        "penalty": "penalty",
        "no_penalty": "no penalty",
        "shift": "shift",
        "base": "baseline",
        "rate": "dropout",
    },
    "ru": {
        "penalty": "штраф",
        "no_penalty": "без штрафа",
        "shift": "сдвиг",
        "base": "базовая модель",
        "rate": "dropout",
    },
    "zh": {
        "penalty": "有惩罚",
        "no_penalty": "无惩罚",
        "shift": "偏移",
        "base": "基线",
        "rate": "暂退概率",
    },
}
_SHIFT_NAMES = ((0.0, "0"), (math.pi / 2, "π/2"), (math.pi, "π"))


def _as_result(value):
    """A RunResult from a RunResult or its dict (``RunResult.to_dict`` / the CLI's JSON)."""
    from dropoutlib.train import RunResult

    if isinstance(value, RunResult):
        return value
    if isinstance(value, Mapping):
        return RunResult.from_dict({k: v for k, v in value.items() if k != "note"})
    raise ValueError(f"expected a RunResult or its dict, got {type(value).__name__}")


def _runs(results) -> dict:
    if isinstance(results, Mapping) and "runs" in results and isinstance(results["runs"], Mapping):
        results = results["runs"]  # the JSON written by `python -m dropoutlib experiment --output`
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty dict {label: RunResult}")
    return {label: _as_result(r) for label, r in results.items()}


def _shift_name(shift: float) -> str:
    for value, name in _SHIFT_NAMES:
        if math.isclose(shift, value, abs_tol=1e-4):
            return name
    return f"{shift:.3g}"


def learned_dropout_table(results) -> list[dict]:
    """One row per run, in the order of ``results`` (``{label: RunResult}``, or the dict that
    ``python -m dropoutlib experiment --output`` writes).

    Each row: ``label``; ``kind`` (``"learned"`` or ``"baseline"``); ``penalty`` (the penalty
    kind, or None: off, or a baseline); ``shift_init`` (LearnedDropout) and ``dropout`` (the
    baseline's rate); ``train_loss``, ``val_loss`` and ``step`` of the last evaluation; ``ones``
    (the final fraction of ones in the rounded mask, None for a baseline); ``params``;
    ``wall_time_s``.
    """
    rows = []
    for label, r in _runs(results).items():
        if not r.history:
            raise ValueError(f"run {label!r} has no evaluations in its history")
        mc, tc, last = r.model_config, r.train_config, r.final
        learned = mc.get("ffn_kind") == "learned"
        stats = last.get("mask_stats") or {}
        rows.append(
            {
                "label": label,
                "kind": "learned" if learned else "baseline",
                "penalty": tc.get("penalty") if learned else None,
                "shift_init": float((mc.get("learned_dropout") or {}).get("shift_init", 0.0))
                if learned
                else None,
                "dropout": None if learned else mc.get("dropout"),
                "train_loss": last["train_loss"],
                "val_loss": last["val_loss"],
                "step": last["step"],
                "ones": stats.get("ones") if learned else None,
                "params": r.num_params,
                "wall_time_s": r.wall_time_s,
            }
        )
    return rows


def row_name(row: dict, lang: str = "en") -> str:
    """The name of a :func:`learned_dropout_table` row in ``lang``, e.g. "LearnedDropout, shift
    π/2, penalty" or "baseline, dropout 0.2"."""
    if lang not in _WORDS:
        raise ValueError(f"lang must be one of {tuple(_WORDS)}, got {lang!r}")
    w = _WORDS[lang]
    sep = "，" if lang == "zh" else ", "
    if row["kind"] == "learned":
        penalty = w["penalty"] if row["penalty"] else w["no_penalty"]
        return sep.join(
            ["LearnedDropout", f"{w['shift']} {_shift_name(row['shift_init'])}", penalty]
        )
    p = row["dropout"]
    return sep.join(
        [w["base"], f"{w['rate']} {p:g}" if isinstance(p, (int, float)) else f"{w['rate']} {p}"]
    )


def learned_dropout_markdown(rows: list[dict], lang: str = "en", *, digits: int = 3) -> str:
    """A markdown table of :func:`learned_dropout_table` rows in ``lang`` ("en", "ru", "zh"):
    run, train loss, val loss, fraction of ones (``—`` for baselines), parameters. The lowest
    validation loss is bold, as in the README."""
    if lang not in _HEADERS:
        raise ValueError(f"lang must be one of {tuple(_HEADERS)}, got {lang!r}")
    if not rows:
        raise ValueError("rows must hold at least one row")
    best = min(r["val_loss"] for r in rows)
    lines = ["| " + " | ".join(_HEADERS[lang]) + " |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        val = f"{r['val_loss']:.{digits}f}"
        if r["val_loss"] == best:
            val = f"**{val}**"
        ones = "—" if r["ones"] is None else f"{r['ones']:.4f}"
        cells = [row_name(r, lang), f"{r['train_loss']:.{digits}f}", val, ones, f"{r['params']:,}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(b, float) and isinstance(a, (int, float)):
        return math.isclose(a, b, abs_tol=1e-4)
    return a == b


def _find(rows: list[dict], **want) -> dict | None:
    """The first row whose fields equal ``want`` (floats to 1e-4), or None."""
    return next((r for r in rows if all(_same(r.get(k), v) for k, v in want.items())), None)


def learned_dropout_findings(rows: list[dict]) -> dict[str, bool | None]:
    """The README's three findings, checked on validation losses of our rows.

    * ``"penalty_helps"``: shift 0 with the penalty has a lower val loss than without it;
    * ``"shift0_best"``: shift 0 (with penalty) beats both pi/2 and pi;
    * ``"beats_no_dropout"``: LearnedDropout (shift 0, penalty) beats the no-dropout baseline;
    * ``"below_dropout_02"``: ... but not the 0.2-dropout baseline (True when the 0.2 baseline's
      val loss is lower, as in the README).

    A finding whose runs are missing is None. Differences this small are one seed each: read
    them together with the run-to-run noise the chapter discusses.
    """
    main = _find(rows, kind="learned", penalty="squared", shift_init=0.0)
    no_pen = _find(rows, kind="learned", penalty=None, shift_init=0.0)
    half = _find(rows, kind="learned", penalty="squared", shift_init=math.pi / 2)
    full = _find(rows, kind="learned", penalty="squared", shift_init=math.pi)
    base0 = _find(rows, kind="baseline", dropout=0.0)
    base2 = _find(rows, kind="baseline", dropout=0.2)

    def lower(a, *others):
        if a is None or any(o is None for o in others):
            return None
        return all(a["val_loss"] < o["val_loss"] for o in others)

    return {
        "penalty_helps": lower(main, no_pen),
        "shift0_best": lower(main, half, full),
        "beats_no_dropout": lower(main, base0),
        "below_dropout_02": lower(base2, main),
    }


def mask_history(result, key: str = "ones") -> tuple[list[int], list[float]]:
    """``(steps, values)`` of a mask statistic (``"ones"``, ``"near_zero"``, ``"near_one"``,
    ``"mean"`` or a per-layer key such as ``"layer0.ones"``) over a run's evaluations; empty
    lists for a run without LearnedDropout."""
    r = _as_result(result)
    pairs = [
        (h["step"], h["mask_stats"][key])
        for h in r.history
        if h.get("mask_stats") and key in h["mask_stats"]
    ]
    return [s for s, _ in pairs], [v for _, v in pairs]


def published_rows() -> list[dict]:
    """:data:`PUBLISHED` as :func:`learned_dropout_table` rows (no step or wall time)."""
    rows = []
    for label, v in PUBLISHED.items():
        learned = label.startswith("LearnedDropout")
        shift = {"0": 0.0, "pi/2": math.pi / 2, "pi": math.pi}.get(
            label.removeprefix("LearnedDropout shift ").split(",")[0]
        )
        rows.append(
            {
                "label": label,
                "kind": "learned" if learned else "baseline",
                "penalty": None if not learned or label.endswith("no penalty") else "squared",
                "shift_init": shift if learned else None,
                "dropout": None if learned else float(label.removeprefix("baseline dropout ")),
                "step": 26000,
                "wall_time_s": None,
                **v,
            }
        )
    return rows


def seed_spread(results) -> list[dict]:
    """Mean and spread of the final val loss over seeds, for runs labelled ``"<run>, seed <n>"``
    (experiment ``"learned-dropout-shakespeare-seeds"``): one dict per ``<run>`` with ``label``,
    ``seeds``, ``val_losses``, ``mean``, ``std`` (sample standard deviation, n - 1; None for a
    single seed) and ``range`` (max - min)."""
    groups: dict[str, list[tuple[int, float]]] = {}
    for label, r in _runs(results).items():
        base, sep, seed = label.rpartition(", seed ")
        if not sep or not seed.isdigit():
            raise ValueError(f"run label {label!r} does not end in ', seed <n>'")
        groups.setdefault(base, []).append((int(seed), r.final["val_loss"]))
    out = []
    for base, pairs in groups.items():
        vals = [v for _, v in pairs]
        mean = sum(vals) / len(vals)
        std = (
            math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
            if len(vals) > 1
            else None
        )
        out.append(
            {
                "label": base,
                "seeds": [s for s, _ in pairs],
                "val_losses": vals,
                "mean": mean,
                "std": std,
                "range": max(vals) - min(vals),
            }
        )
    return out


def split_loss(result, split: str = "val", *, batch_size: int = 256, device="auto") -> float:
    """The cross-entropy of a finished run's final model on the WHOLE of a split, not on random
    batches: the split cut into consecutive windows of ``block_size`` tokens (each predicting
    its next tokens, the last partial window dropped), the model in eval mode, the mean over
    every predicted token. Deterministic, and free of the sampling noise of the trainer's
    evaluation (which averages ``eval_iters`` random batches). ``split``: ``"val"``, or
    ``"train"`` (the tokens the run trained on: its first ``train_tokens`` when it had a
    limit). ``device``: where to evaluate (``"auto"``: CUDA when available, else the CPU)."""
    import torch
    import torch.nn.functional as F

    from dropoutlib.train.batches import corpus_tensors

    if split not in ("val", "train"):
        raise ValueError(f"split must be 'val' or 'train', got {split!r}")
    r = _as_result(result)
    _, train_data, val_data = corpus_tensors(r.corpus)
    data = val_data
    if split == "train":
        limit = r.train_config.get("train_tokens")
        data = train_data[:limit] if limit else train_data
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = r.load_model(device)
    block = model.config.block_size
    n = (len(data) - 1) // block
    if n < 1:
        raise ValueError(f"the {split} split has fewer than {block + 1} tokens")
    x = data[: n * block].view(n, block).to(device)
    y = data[1 : n * block + 1].view(n, block).to(device)
    total = 0.0
    with torch.no_grad():
        for i in range(0, n, batch_size):
            logits, _ = model(x[i : i + batch_size])
            total += F.cross_entropy(
                logits.reshape(-1, logits.size(-1)),
                y[i : i + batch_size].reshape(-1),
                reduction="sum",
            ).item()
    return total / (n * block)


_FINDINGS = {
    "penalty_helps": "(a) the penalty lowers the val loss (shift 0 with vs without penalty)",
    "shift0_best": "(b) shift_init 0 beats pi/2 and pi on val loss",
    "beats_no_dropout": "(c1) LearnedDropout (shift 0, penalty) beats the no-dropout baseline",
    "below_dropout_02": "(c2) ... but not the 0.2-dropout baseline",
}


def learned_dropout_report(doc: dict, seeds: dict | None = None, note: str = "") -> str:
    """A markdown page for the JSON that ``python -m dropoutlib experiment
    learned-dropout-shakespeare --output FILE`` writes: our table, the published one, the
    README's findings checked on both, and (``seeds``: the same JSON of
    ``learned-dropout-shakespeare-seeds``) the seed-to-seed spread of the val loss (English).
    ``note``, if given, is printed under the header (e.g. the conditions of the timing)."""
    rows = learned_dropout_table(doc)
    runs = _runs(doc)
    first = next(iter(runs.values()))
    mc, tc = first.model_config, first.train_config
    published = published_rows()
    ours, theirs = learned_dropout_findings(rows), learned_dropout_findings(published)
    wall = sum(r["wall_time_s"] for r in rows)
    lines = [
        f"# Learned Dropout at small scale: `{doc.get('experiment', '?')}`, "
        f"profile `{doc.get('profile', '?')}`",
        "",
        f"Command: `{doc.get('command', '?')}`  ",
        f"Device: {first.device}; torch {first.torch_version}; dropoutlib "
        f"{first.dropoutlib_version}; {doc.get('date', first.date)}; "
        f"training time of all runs {wall / 60:.1f} min.",
        "",
        *([note, ""] if note else []),
        f"babyGPT on tiny Shakespeare (characters): LearnedDropout models {mc['n_embd']} dims, "
        f"{mc['n_head']} heads, {mc['n_layer']} layers, context {mc['block_size']}; baselines "
        f"widened to at least their parameter count. {tc['max_iters']} steps of batch "
        f"{tc['batch_size']}, AdamW lr {tc['learning_rate']:g}, weight decay "
        f"{tc['weight_decay']:g} ({tc.get('weight_decay_rule', 'all')} rule), seed {tc['seed']}. "
        "Losses: last evaluation, eval mode (every dropout off), nats per character; fraction of "
        "ones: rounded mask of the last training batch, mean over layers (— for baselines: "
        "their mask is not learned; in training it keeps 1 − p).",
        "",
        "## Measured",
        "",
        learned_dropout_markdown(rows),
        "## Published (seed 002: GPT-2 BPE tokens of Wikipedia, 15M parameters, 26k steps, A100)",
        "",
        learned_dropout_markdown(published),
        "The published dropout baselines most likely kept attention-probability dropout on during "
        "evaluation (their SDPA call passes `dropout_p` without checking `self.training`), which "
        "raises their val losses; ours evaluate with every dropout off.",
        "",
        "## The README's findings",
        "",
        "| finding | published | measured |",
        "|---|---|---|",
    ]
    yes_no = {True: "holds", False: "does not hold", None: "—"}
    for key, text in _FINDINGS.items():
        lines.append(f"| {text} | {yes_no[theirs[key]]} | {yes_no[ours[key]]} |")
    if seeds is None:
        lines += [
            "",
            "One seed per run (the same for all); the seed-to-seed spread was not measured, so "
            "differences of a few hundredths may be noise.",
        ]
    else:
        lines += [
            "",
            f"## Seed-to-seed spread (`{seeds.get('command', '?')}`)",
            "",
            "| run | seeds | val losses | mean | std (n − 1) | max − min |",
            "|---|---|---|---:|---:|---:|",
        ]
        for g in seed_spread(seeds):
            std = "—" if g["std"] is None else f"{g['std']:.4f}"
            vals = ", ".join(f"{v:.4f}" for v in g["val_losses"])
            lines.append(
                f"| {g['label']} | {', '.join(map(str, g['seeds']))} | {vals} | "
                f"{g['mean']:.4f} | {std} | {g['range']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def loss_summary(results) -> list[dict]:
    """One row per run of ``results`` (``{label: RunResult}``), in order: ``label``;
    ``best_val`` and ``best_step``, the lowest validation loss after step 0 and where it was;
    ``final_val``, ``final_train`` and ``gap`` (their difference) at the last evaluation;
    ``wall_time_s``. Losses are the trainer's (cross-entropy in nats, eval mode)."""
    rows = []
    for label, r in _runs(results).items():
        later = [h for h in r.history if h.get("val_loss") is not None and h["step"] > 0]
        if not later:
            raise ValueError(f"run {label!r} has no evaluation after step 0")
        best = min(later, key=lambda h: h["val_loss"])
        last = later[-1]
        rows.append(
            {
                "label": label,
                "best_val": best["val_loss"],
                "best_step": best["step"],
                "final_val": last["val_loss"],
                "final_train": last["train_loss"],
                "gap": last["val_loss"] - last["train_loss"],
                "wall_time_s": r.wall_time_s,
            }
        )
    return rows


def loss_summary_text(rows: list[dict], *, sort: bool = True) -> str:
    """The rows of :func:`loss_summary` as a fixed-width text table with code-like column
    names (the same text in every edition), lowest best validation loss first when ``sort``."""
    if sort:
        rows = sorted(rows, key=lambda r: r["best_val"])
    width = max([5] + [len(str(r["label"])) for r in rows])
    head = ("best_val", "step", "final_val", "final_train", "gap", "wall_s")
    lines = [f"{'run':<{width}}  " + "  ".join(f"{h:>11}" for h in head)]
    for r in rows:
        cells = (
            f"{r['best_val']:.3f}",
            f"{r['best_step']:d}",
            f"{r['final_val']:.3f}",
            f"{r['final_train']:.3f}",
            f"{r['gap']:.3f}",
            f"{r['wall_time_s']:.1f}",
        )
        lines.append(f"{r['label']:<{width}}  " + "  ".join(f"{c:>11}" for c in cells))
    return "\n".join(lines)


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="python -m dropoutlib.reports",
        description="markdown report of a learned-dropout-shakespeare results JSON",
    )
    parser.add_argument("json", help="the file written by `python -m dropoutlib experiment ...`")
    parser.add_argument("--seeds", help="the JSON of learned-dropout-shakespeare-seeds, if run")
    parser.add_argument("--note", default="", help="a paragraph printed under the header")
    parser.add_argument("--output", help="write the markdown here (default: print it)")
    args = parser.parse_args(argv)
    doc = json.loads(Path(args.json).read_text(encoding="utf-8"))
    seeds = json.loads(Path(args.seeds).read_text(encoding="utf-8")) if args.seeds else None
    text = learned_dropout_report(doc, seeds, args.note)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
